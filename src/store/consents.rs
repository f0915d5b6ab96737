use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::consents;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consents)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    /// Space-separated scopes granted.
    pub scopes: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Space-separated claims granted through the `claims` request parameter.
    pub claims: String,
}

pub fn find(conn: &mut DbConn, user_id: &str, client_id: &str) -> QueryResult<Option<Consent>> {
    consents::table
        .find((user_id, client_id))
        .select(Consent::as_select())
        .first(conn)
        .optional()
}

/// Stores the consent, replacing the user's earlier one for the client in one statement
/// (two approvals at the same moment both succeed; the later one stands).
pub fn put(conn: &mut DbConn, c: &Consent) -> QueryResult<()> {
    macro_rules! upsert {
        ($conn:expr) => {
            diesel::insert_into(consents::table)
                .values(c)
                .on_conflict((consents::user_id, consents::client_id))
                .do_update()
                .set((
                    consents::scopes.eq(&c.scopes),
                    consents::claims.eq(&c.claims),
                    consents::updated_at.eq(c.updated_at),
                ))
                .execute($conn)
        };
    }
    match conn {
        DbConn::Pg(pg) => upsert!(pg),
        DbConn::Sqlite(sqlite) => upsert!(sqlite),
    }
    .map(|_| ())
}

pub fn for_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<Consent>> {
    consents::table
        .filter(consents::user_id.eq(user_id))
        .order(consents::client_id.asc())
        .select(Consent::as_select())
        .load(conn)
}

pub fn delete(conn: &mut DbConn, user_id: &str, client_id: &str) -> QueryResult<usize> {
    diesel::delete(consents::table.find((user_id, client_id))).execute(conn)
}

pub fn for_client(conn: &mut DbConn, client_id: &str) -> QueryResult<Vec<Consent>> {
    consents::table
        .filter(consents::client_id.eq(client_id))
        .order(consents::user_id.asc())
        .select(Consent::as_select())
        .load(conn)
}
