use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::password_history;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = password_history)]
pub struct PastPassword {
    pub id: String,
    pub user_id: String,
    pub password_hash: String,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, p: &PastPassword) -> QueryResult<()> {
    diesel::insert_into(password_history::table)
        .values(p)
        .execute(conn)
        .map(|_| ())
}

/// The newest `n` hashes of a user, newest first.
pub fn recent(conn: &mut DbConn, user_id: &str, n: i64) -> QueryResult<Vec<PastPassword>> {
    password_history::table
        .filter(password_history::user_id.eq(user_id))
        .order(password_history::created_at.desc())
        .limit(n)
        .select(PastPassword::as_select())
        .load(conn)
}

/// Keeps only the newest `keep` entries of a user.
pub fn trim(conn: &mut DbConn, user_id: &str, keep: i64) -> QueryResult<usize> {
    let keep_ids: Vec<String> = password_history::table
        .filter(password_history::user_id.eq(user_id))
        .order(password_history::created_at.desc())
        .limit(keep)
        .select(password_history::id)
        .load(conn)?;
    diesel::delete(
        password_history::table
            .filter(password_history::user_id.eq(user_id))
            .filter(password_history::id.ne_all(keep_ids)),
    )
    .execute(conn)
}
