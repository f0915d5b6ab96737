use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::sessions;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    /// Hex SHA-256 of the cookie value; the cookie value itself is never stored.
    pub id_hash: String,
    /// Public session identifier, used as `sid` in ID tokens.
    pub sid: String,
    pub user_id: Option<String>,
    pub csrf_token: String,
    pub auth_time: Option<NaiveDateTime>,
    /// JSON array of authentication method references.
    pub amr: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// Set between the password and the second factor; `user_id` is then still empty.
    pub pending_user_id: Option<String>,
    /// When the password was last typed for this session (sign-in or re-authentication).
    pub password_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConn, s: &Session) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(s)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConn, id_hash: &str) -> QueryResult<Option<Session>> {
    sessions::table
        .find(id_hash)
        .select(Session::as_select())
        .first(conn)
        .optional()
}

pub fn touch(conn: &mut DbConn, id_hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id_hash))
        .set(sessions::last_seen_at.eq(now))
        .execute(conn)
}

/// Records that the password was just typed again for this session.
pub fn set_password_at(conn: &mut DbConn, id_hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id_hash))
        .set(sessions::password_at.eq(now))
        .execute(conn)
}

pub fn delete(conn: &mut DbConn, id_hash: &str) -> QueryResult<usize> {
    diesel::delete(sessions::table.find(id_hash)).execute(conn)
}

pub fn delete_for_user(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(
        sessions::table.filter(
            sessions::user_id
                .eq(user_id)
                .or(sessions::pending_user_id.eq(user_id)),
        ),
    )
    .execute(conn)
}

/// Deletes sessions past their absolute expiry or idle since before `idle_before`.
pub fn purge(
    conn: &mut DbConn,
    now: NaiveDateTime,
    idle_before: NaiveDateTime,
    limit: i64,
) -> QueryResult<usize> {
    let batch = sessions::table
        .select(sessions::id_hash)
        .filter(
            sessions::expires_at
                .le(now)
                .or(sessions::last_seen_at.le(idle_before)),
        )
        .limit(limit)
        .load::<String>(conn)?;
    diesel::delete(sessions::table.filter(sessions::id_hash.eq_any(batch))).execute(conn)
}

pub fn for_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<Session>> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .order(sessions::last_seen_at.desc())
        .select(Session::as_select())
        .load(conn)
}

/// Deletes one of the user's sessions by its public id.
pub fn delete_by_sid(conn: &mut DbConn, user_id: &str, sid: &str) -> QueryResult<usize> {
    diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::sid.eq(sid)),
    )
    .execute(conn)
}
