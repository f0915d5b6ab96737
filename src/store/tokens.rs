use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::tokens;

pub const ACCESS: &str = "access";
pub const REFRESH: &str = "refresh";

#[derive(Clone, Queryable, Selectable, Insertable)]
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
    /// When a refresh token was rotated.
    pub rotated_at: Option<NaiveDateTime>,
    /// The answer of a refresh token's rotation, sealed under the master key, kept only for the
    /// refresh reuse window. Never logged (`Debug` leaves it out).
    pub successor_sealed: Option<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("token_hash", &self.token_hash)
            .field("kind", &self.kind)
            .field("family_id", &self.family_id)
            .field("client_id", &self.client_id)
            .field("user_id", &self.user_id)
            .field("scope", &self.scope)
            .field("rotated", &self.rotated)
            .field("revoked", &self.revoked)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("rotated_at", &self.rotated_at)
            .field(
                "successor_sealed",
                &self.successor_sealed.as_ref().map(|_| "<sealed>"),
            )
            .finish_non_exhaustive()
    }
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

/// A token's row, locked for the rest of the transaction: on PostgreSQL `SELECT … FOR UPDATE`,
/// so concurrent refreshes of one token queue here and each sees what the one before it
/// committed; on SQLite the immediate transaction already holds the database's write lock.
pub fn find_for_update(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<Token>> {
    match conn {
        DbConn::Pg(pg) => tokens::table
            .find(token_hash)
            .select(Token::as_select())
            .for_update()
            .first(pg)
            .optional(),
        DbConn::Sqlite(_) => find(conn, token_hash),
    }
}

/// The single-use transition of a refresh token: exactly one caller sees 1.
pub fn mark_rotated(conn: &mut DbConn, token_hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        tokens::table
            .filter(tokens::token_hash.eq(token_hash))
            .filter(tokens::rotated.eq(false))
            .filter(tokens::revoked.eq(false)),
    )
    .set((tokens::rotated.eq(true), tokens::rotated_at.eq(Some(now))))
    .execute(conn)
}

/// Keeps the sealed answer of a rotation on the rotated token's row, and erases the ones kept
/// for earlier generations of its family: their successor has now been used.
pub fn keep_successor(
    conn: &mut DbConn,
    token_hash: &str,
    family_id: &str,
    sealed: &str,
) -> QueryResult<usize> {
    diesel::update(
        tokens::table
            .filter(tokens::family_id.eq(family_id))
            .filter(tokens::token_hash.ne(token_hash))
            .filter(tokens::successor_sealed.is_not_null()),
    )
    .set(tokens::successor_sealed.eq(None::<String>))
    .execute(conn)?;
    diesel::update(
        tokens::table
            .filter(tokens::token_hash.eq(token_hash))
            .filter(tokens::rotated.eq(true)),
    )
    .set(tokens::successor_sealed.eq(Some(sealed)))
    .execute(conn)
}

/// Erases the sealed answers of rotations at or before `rotated_before` (their window is over).
pub fn erase_successors(
    conn: &mut DbConn,
    rotated_before: NaiveDateTime,
    limit: i64,
) -> QueryResult<usize> {
    // A kept answer always has `rotated_at` (both are written by the rotation).
    let batch = tokens::table
        .select(tokens::token_hash)
        .filter(tokens::rotated_at.le(rotated_before))
        .filter(tokens::successor_sealed.is_not_null())
        .limit(limit)
        .load::<String>(conn)?;
    diesel::update(tokens::table.filter(tokens::token_hash.eq_any(batch)))
        .set(tokens::successor_sealed.eq(None::<String>))
        .execute(conn)
}

/// Revokes every token of a family and erases any sealed answer it kept.
pub fn revoke_family(conn: &mut DbConn, family_id: &str) -> QueryResult<usize> {
    diesel::update(tokens::table.filter(tokens::family_id.eq(family_id)))
        .set((
            tokens::revoked.eq(true),
            tokens::successor_sealed.eq(None::<String>),
        ))
        .execute(conn)
}

pub fn revoke_for_user(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::update(tokens::table.filter(tokens::user_id.eq(user_id)))
        .set((
            tokens::revoked.eq(true),
            tokens::successor_sealed.eq(None::<String>),
        ))
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
        .set((
            tokens::revoked.eq(true),
            tokens::successor_sealed.eq(None::<String>),
        ))
        .execute(conn)
}

/// Deletes tokens that expired before `before`.
/// Deletes up to `limit` tokens that expired before `before`.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    let batch = tokens::table
        .select(tokens::token_hash)
        .filter(tokens::expires_at.le(before))
        .limit(limit)
        .load::<String>(conn)?;
    diesel::delete(tokens::table.filter(tokens::token_hash.eq_any(batch))).execute(conn)
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
    .set((
        tokens::revoked.eq(true),
        tokens::successor_sealed.eq(None::<String>),
    ))
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
