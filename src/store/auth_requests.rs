use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::auth_requests;

/// A validated authorization request waiting for sign-in or consent.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_requests)]
pub struct AuthRequest {
    pub id: String,
    pub client_id: String,
    /// JSON object of the request parameters.
    pub params: String,
    /// The session that signed in for this request (satisfies `prompt=login`).
    pub login_sid: Option<String>,
    /// The user approved this request on the consent page (satisfies `prompt=consent`).
    pub consented: bool,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// The address (IPv6: its /64) the request came from; `None` when unknown.
    pub client_ip: Option<String>,
}

pub fn insert(conn: &mut DbConn, r: &AuthRequest) -> QueryResult<()> {
    diesel::insert_into(auth_requests::table)
        .values(r)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<AuthRequest>> {
    auth_requests::table
        .find(id)
        .select(AuthRequest::as_select())
        .first(conn)
        .optional()
}

/// Removes the request; the row count says whether this caller consumed it.
pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(auth_requests::table.find(id)).execute(conn)
}

/// Records that the browser session `sid` signed in for this request.
pub fn set_login_sid(conn: &mut DbConn, id: &str, sid: &str) -> QueryResult<usize> {
    diesel::update(auth_requests::table.find(id))
        .set(auth_requests::login_sid.eq(sid))
        .execute(conn)
}

/// Records that the user approved this request.
pub fn set_consented(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::update(auth_requests::table.find(id))
        .set(auth_requests::consented.eq(true))
        .execute(conn)
}

/// Deletes up to `limit` expired requests.
pub fn purge(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    let batch = auth_requests::table
        .select(auth_requests::id)
        .filter(auth_requests::expires_at.le(now))
        .limit(limit)
        .load::<String>(conn)?;
    diesel::delete(auth_requests::table.filter(auth_requests::id.eq_any(batch))).execute(conn)
}

/// Requests still waiting that came from `client_ip` (`None`: from unknown addresses): how
/// many, and when the first of them expires.
pub fn live_from(
    conn: &mut DbConn,
    client_ip: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    let from = || {
        let q = auth_requests::table
            .filter(auth_requests::expires_at.gt(now))
            .into_boxed();
        match client_ip {
            Some(ip) => q.filter(auth_requests::client_ip.eq(ip.to_string())),
            None => q.filter(auth_requests::client_ip.is_null()),
        }
    };
    let live: i64 = from().count().get_result(conn)?;
    let soonest: Option<NaiveDateTime> = from()
        .select(diesel::dsl::min(auth_requests::expires_at))
        .first(conn)?;
    Ok((live, soonest))
}
