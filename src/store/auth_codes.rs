use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::auth_codes;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_codes)]
pub struct AuthCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    /// JSON of the grant facts (extensions, auth_time, amr, sid, nonce).
    pub grant_data: String,
    /// Family of the tokens this code is exchanged for; revoked when the code is replayed.
    pub family_id: String,
    pub used: bool,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, c: &AuthCode) -> QueryResult<()> {
    diesel::insert_into(auth_codes::table)
        .values(c)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConn, code_hash: &str) -> QueryResult<Option<AuthCode>> {
    auth_codes::table
        .find(code_hash)
        .select(AuthCode::as_select())
        .first(conn)
        .optional()
}

/// The single-use transition: exactly one caller sees 1.
pub fn mark_used(conn: &mut DbConn, code_hash: &str) -> QueryResult<usize> {
    diesel::update(
        auth_codes::table
            .filter(auth_codes::code_hash.eq(code_hash))
            .filter(auth_codes::used.eq(false)),
    )
    .set(auth_codes::used.eq(true))
    .execute(conn)
}

/// Deletes codes that expired before `before` (kept a while so replays are still recognised).
/// Deletes up to `limit` codes that expired before `before`.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    let batch = auth_codes::table
        .select(auth_codes::code_hash)
        .filter(auth_codes::expires_at.le(before))
        .limit(limit)
        .load::<String>(conn)?;
    diesel::delete(auth_codes::table.filter(auth_codes::code_hash.eq_any(batch))).execute(conn)
}

/// Deletes a client's codes not yet exchanged (they would mint tokens under its old settings).
pub fn delete_unused_for_client(conn: &mut DbConn, client_id: &str) -> QueryResult<usize> {
    diesel::delete(
        auth_codes::table
            .filter(auth_codes::client_id.eq(client_id))
            .filter(auth_codes::used.eq(false)),
    )
    .execute(conn)
}
