use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::throttles;

/// Failed attempts counted under one key (an account, an address, or both).
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = throttles)]
#[diesel(treat_none_as_null = true)]
pub struct Throttle {
    pub key: String,
    pub failures: i32,
    pub first_failure_at: NaiveDateTime,
    pub last_failure_at: NaiveDateTime,
    pub blocked_until: Option<NaiveDateTime>,
}

pub fn find(conn: &mut DbConn, key: &str) -> QueryResult<Option<Throttle>> {
    throttles::table
        .find(key)
        .select(Throttle::as_select())
        .first(conn)
        .optional()
}

/// Writes the row (call inside a transaction).
pub fn put(conn: &mut DbConn, t: &Throttle) -> QueryResult<()> {
    let updated = diesel::update(throttles::table.find(&t.key))
        .set(t)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(throttles::table)
            .values(t)
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete(conn: &mut DbConn, key: &str) -> QueryResult<usize> {
    diesel::delete(throttles::table.find(key)).execute(conn)
}

/// Forgets counters whose last failure is older than `before`.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(throttles::table.filter(throttles::last_failure_at.lt(before))).execute(conn)
}
