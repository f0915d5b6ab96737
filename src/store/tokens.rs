use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::tokens;

pub const ACCESS: &str = "access";
pub const REFRESH: &str = "refresh";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tokens)]
pub struct Token {
    /// Hex SHA-256 of the token; the token itself is never stored.
    pub token_hash: String,
    pub kind: String,
    pub family_id: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub scope: String,
    pub grant_data: String,
    pub rotated: bool,
    pub revoked: bool,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, t: &Token) -> QueryResult<()> {
    diesel::insert_into(tokens::table)
        .values(t)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<Token>> {
    tokens::table
        .find(token_hash)
        .select(Token::as_select())
        .first(conn)
        .optional()
}

/// The single-use transition of a refresh token: exactly one caller sees 1.
pub fn mark_rotated(conn: &mut DbConn, token_hash: &str) -> QueryResult<usize> {
    diesel::update(
        tokens::table
            .filter(tokens::token_hash.eq(token_hash))
            .filter(tokens::rotated.eq(false))
            .filter(tokens::revoked.eq(false)),
    )
    .set(tokens::rotated.eq(true))
    .execute(conn)
}

pub fn revoke_family(conn: &mut DbConn, family_id: &str) -> QueryResult<usize> {
    diesel::update(tokens::table.filter(tokens::family_id.eq(family_id)))
        .set(tokens::revoked.eq(true))
        .execute(conn)
}

pub fn revoke_for_user(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::update(tokens::table.filter(tokens::user_id.eq(user_id)))
        .set(tokens::revoked.eq(true))
        .execute(conn)
}

/// The clients holding live (unrevoked, unexpired) tokens of a user.
pub fn clients_of_user(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    tokens::table
        .filter(tokens::user_id.eq(user_id))
        .filter(tokens::revoked.eq(false))
        .filter(tokens::expires_at.gt(now))
        .select(tokens::client_id)
        .distinct()
        .load(conn)
}

pub fn revoke_one(conn: &mut DbConn, token_hash: &str) -> QueryResult<usize> {
    diesel::update(tokens::table.find(token_hash))
        .set(tokens::revoked.eq(true))
        .execute(conn)
}

/// Deletes tokens that expired before `before`.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(tokens::table.filter(tokens::expires_at.le(before))).execute(conn)
}

pub fn revoke_for_user_client(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
) -> QueryResult<usize> {
    diesel::update(
        tokens::table
            .filter(tokens::user_id.eq(user_id))
            .filter(tokens::client_id.eq(client_id)),
    )
    .set(tokens::revoked.eq(true))
    .execute(conn)
}

/// The unrevoked tokens of a client: `(family_id, scope)`.
pub fn live_scopes_of_client(
    conn: &mut DbConn,
    client_id: &str,
) -> QueryResult<Vec<(String, String)>> {
    tokens::table
        .filter(tokens::client_id.eq(client_id))
        .filter(tokens::revoked.eq(false))
        .select((tokens::family_id, tokens::scope))
        .load(conn)
}
