//! The instances serving the database, by when each was last seen.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::instances;

/// Records that instance `id` is serving at `now`.
pub fn seen(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    macro_rules! upsert {
        ($conn:expr) => {
            diesel::insert_into(instances::table)
                .values((instances::id.eq(id), instances::seen_at.eq(now)))
                .on_conflict(instances::id)
                .do_update()
                .set(instances::seen_at.eq(now))
                .execute($conn)
        };
    }
    match conn {
        DbConn::Pg(pg) => upsert!(pg),
        DbConn::Sqlite(sqlite) => upsert!(sqlite),
    }
    .map(|_| ())
}

/// How many instances were seen at or after `since`.
pub fn live(conn: &mut DbConn, since: NaiveDateTime) -> QueryResult<i64> {
    instances::table
        .filter(instances::seen_at.ge(since))
        .count()
        .get_result(conn)
}

/// Forgets instance `id` (a clean stop).
pub fn forget(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(instances::table.filter(instances::id.eq(id))).execute(conn)
}

/// Forgets every instance not seen since `before`.
pub fn forget_silent(conn: &mut DbConn, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(instances::table.filter(instances::seen_at.lt(before))).execute(conn)
}
