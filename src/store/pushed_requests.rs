use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::pushed_requests;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = pushed_requests)]
pub struct PushedRequest {
    /// SHA-256 of the random part of the request_uri.
    pub id: String,
    pub client_id: String,
    /// The validated authorization parameters as a JSON object.
    pub params: String,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, r: &PushedRequest) -> QueryResult<usize> {
    diesel::insert_into(pushed_requests::table)
        .values(r)
        .execute(conn)
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<PushedRequest>> {
    pushed_requests::table
        .find(id)
        .select(PushedRequest::as_select())
        .first(conn)
        .optional()
}

/// Uses a pushed request up: whoever deletes the row owns it, so it is used at most once, and
/// only by the client that pushed it.
pub fn take(conn: &mut DbConn, id: &str, client_id: &str) -> QueryResult<bool> {
    let deleted = diesel::delete(
        pushed_requests::table
            .filter(pushed_requests::id.eq(id))
            .filter(pushed_requests::client_id.eq(client_id)),
    )
    .execute(conn)?;
    Ok(deleted == 1)
}

/// Deletes up to `limit` expired pushed requests.
pub fn purge(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    let batch = pushed_requests::table
        .select(pushed_requests::id)
        .filter(pushed_requests::expires_at.le(now))
        .limit(limit)
        .load::<String>(conn)?;
    diesel::delete(pushed_requests::table.filter(pushed_requests::id.eq_any(batch))).execute(conn)
}

/// Pushed requests of `client_id` still waiting: how many, and when the first of them expires.
pub fn live_for_client(
    conn: &mut DbConn,
    client_id: &str,
    now: NaiveDateTime,
) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    let of_client = pushed_requests::table
        .filter(pushed_requests::client_id.eq(client_id))
        .filter(pushed_requests::expires_at.gt(now));
    let live: i64 = of_client.count().get_result(conn)?;
    let soonest: Option<NaiveDateTime> = of_client
        .select(diesel::dsl::min(pushed_requests::expires_at))
        .first(conn)?;
    Ok((live, soonest))
}
