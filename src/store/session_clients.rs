use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::session_clients;

/// A client the browser session signed into (for logout notifications).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = session_clients)]
pub struct SessionClient {
    pub sid: String,
    pub client_id: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
}

/// Remembers the pair once.
pub fn record(conn: &mut DbConn, row: &SessionClient) -> QueryResult<()> {
    let exists = session_clients::table
        .find((&row.sid, &row.client_id))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if !exists {
        diesel::insert_into(session_clients::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn for_session(conn: &mut DbConn, sid: &str) -> QueryResult<Vec<SessionClient>> {
    session_clients::table
        .filter(session_clients::sid.eq(sid))
        .select(SessionClient::as_select())
        .load(conn)
}

pub fn delete_session(conn: &mut DbConn, sid: &str) -> QueryResult<usize> {
    diesel::delete(session_clients::table.filter(session_clients::sid.eq(sid))).execute(conn)
}
