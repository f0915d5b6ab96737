//! When a periodic job runs next, shared by every instance.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::job_runs;

/// Takes the run of `name` that is due at `now`, moving its next run to `next`: true for the
/// one caller that takes it (a conditional UPDATE, or the first INSERT), false for the rest.
pub fn take_due(
    conn: &mut DbConn,
    name: &str,
    now: NaiveDateTime,
    next: NaiveDateTime,
) -> QueryResult<bool> {
    let moved = diesel::update(
        job_runs::table
            .filter(job_runs::name.eq(name))
            .filter(job_runs::next_run_at.le(now)),
    )
    .set(job_runs::next_run_at.eq(next))
    .execute(conn)?;
    if moved == 1 {
        return Ok(true);
    }
    let row = (job_runs::name.eq(name), job_runs::next_run_at.eq(next));
    let inserted = match conn {
        DbConn::Pg(pg) => diesel::insert_into(job_runs::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConn::Sqlite(sqlite) => diesel::insert_into(job_runs::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(sqlite)?,
    };
    Ok(inserted == 1)
}
