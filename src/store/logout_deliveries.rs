use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::logout_deliveries;

/// A back-channel logout token waiting to be POSTed to a client.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = logout_deliveries)]
pub struct Delivery {
    pub id: String,
    pub client_id: String,
    pub uri: String,
    pub logout_token: String,
    pub attempts: i32,
    pub delivered: bool,
    pub last_error: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, d: &Delivery) -> QueryResult<()> {
    diesel::insert_into(logout_deliveries::table)
        .values(d)
        .execute(conn)
        .map(|_| ())
}

pub fn due(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<Delivery>> {
    logout_deliveries::table
        .filter(logout_deliveries::delivered.eq(false))
        .filter(logout_deliveries::next_attempt_at.le(now))
        .order(logout_deliveries::next_attempt_at.asc())
        .limit(limit)
        .select(Delivery::as_select())
        .load(conn)
}

/// Takes a due delivery for this instance by pushing its next attempt past `lease_until`;
/// the row count says whether this instance won it.
pub fn lease(
    conn: &mut DbConn,
    id: &str,
    seen_next: NaiveDateTime,
    lease_until: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        logout_deliveries::table
            .filter(logout_deliveries::id.eq(id))
            .filter(logout_deliveries::next_attempt_at.eq(seen_next))
            .filter(logout_deliveries::delivered.eq(false)),
    )
    .set(logout_deliveries::next_attempt_at.eq(lease_until))
    .execute(conn)
}

pub fn mark_delivered(conn: &mut DbConn, id: &str, attempts: i32) -> QueryResult<usize> {
    diesel::update(logout_deliveries::table.find(id))
        .set((
            logout_deliveries::delivered.eq(true),
            logout_deliveries::attempts.eq(attempts),
            logout_deliveries::last_error.eq(None::<String>),
        ))
        .execute(conn)
}

pub fn mark_failed(
    conn: &mut DbConn,
    id: &str,
    attempts: i32,
    error: &str,
    next: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(logout_deliveries::table.find(id))
        .set((
            logout_deliveries::attempts.eq(attempts),
            logout_deliveries::last_error.eq(Some(error)),
            logout_deliveries::next_attempt_at.eq(next),
        ))
        .execute(conn)
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Delivery>> {
    logout_deliveries::table
        .find(id)
        .select(Delivery::as_select())
        .first(conn)
        .optional()
}

/// Deletes deliveries made, or given up after `max_attempts`, before `before`.
pub fn purge(
    conn: &mut DbConn,
    before: NaiveDateTime,
    max_attempts: i32,
    limit: i64,
) -> QueryResult<usize> {
    let batch = logout_deliveries::table
        .select(logout_deliveries::id)
        .filter(
            logout_deliveries::created_at.le(before).and(
                logout_deliveries::delivered
                    .eq(true)
                    .or(logout_deliveries::attempts.ge(max_attempts)),
            ),
        )
        .limit(limit)
        .load::<String>(conn)?;
    diesel::delete(logout_deliveries::table.filter(logout_deliveries::id.eq_any(batch)))
        .execute(conn)
}
