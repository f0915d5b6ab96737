use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::webhook_deliveries;

/// An alert waiting to be POSTed to the configured webhook.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct WebhookDelivery {
    pub id: String,
    pub body: String,
    pub attempts: i32,
    pub delivered: bool,
    pub last_error: Option<String>,
    pub next_attempt_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, d: &WebhookDelivery) -> QueryResult<()> {
    diesel::insert_into(webhook_deliveries::table)
        .values(d)
        .execute(conn)
        .map(|_| ())
}

pub fn due(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<WebhookDelivery>> {
    webhook_deliveries::table
        .filter(webhook_deliveries::delivered.eq(false))
        .filter(webhook_deliveries::next_attempt_at.le(now))
        .order(webhook_deliveries::next_attempt_at.asc())
        .limit(limit)
        .select(WebhookDelivery::as_select())
        .load(conn)
}

pub fn lease(
    conn: &mut DbConn,
    id: &str,
    seen: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq(id))
            .filter(webhook_deliveries::next_attempt_at.eq(seen))
            .filter(webhook_deliveries::delivered.eq(false)),
    )
    .set(webhook_deliveries::next_attempt_at.eq(until))
    .execute(conn)
}

pub fn finish(
    conn: &mut DbConn,
    id: &str,
    attempts: i32,
    delivered: bool,
    error: Option<&str>,
    next: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(webhook_deliveries::table.find(id))
        .set((
            webhook_deliveries::attempts.eq(attempts),
            webhook_deliveries::delivered.eq(delivered),
            webhook_deliveries::last_error.eq(error),
            webhook_deliveries::next_attempt_at.eq(next),
        ))
        .execute(conn)
}
