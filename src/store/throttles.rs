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

/// Writes the row in one statement (an upsert, so concurrent writers never collide).
pub fn put(conn: &mut DbConn, t: &Throttle) -> QueryResult<()> {
    macro_rules! upsert {
        ($conn:expr) => {
            diesel::insert_into(throttles::table)
                .values(t)
                .on_conflict(throttles::key)
                .do_update()
                .set(t)
                .execute($conn)
        };
    }
    match conn {
        DbConn::Pg(pg) => upsert!(pg),
        DbConn::Sqlite(sqlite) => upsert!(sqlite),
    }
    .map(|_| ())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    failures: i32,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    last_failure_at: NaiveDateTime,
}

/// Counts one more failure under `key` before the attempt is checked, unless the key is
/// blocked at `now`: one statement, so concurrent attempts queue on the row and each sees the
/// count (and block) of the one before. Failures before `window_start` are forgotten. The new
/// count, or `None` when blocked.
pub fn claim(
    conn: &mut DbConn,
    key: &str,
    now: NaiveDateTime,
    window_start: NaiveDateTime,
) -> QueryResult<Option<i32>> {
    use diesel::sql_types::{Text, Timestamp};
    let sql = |p: [&str; 3]| {
        format!(
            "INSERT INTO throttles (key, failures, first_failure_at, last_failure_at, blocked_until) \
             VALUES ({k}, 1, {now}, {now}, NULL) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN throttles.last_failure_at >= {start} THEN throttles.failures + 1 ELSE 1 END, \
               first_failure_at = CASE WHEN throttles.last_failure_at >= {start} THEN throttles.first_failure_at ELSE {now} END, \
               last_failure_at = {now} \
             WHERE throttles.blocked_until IS NULL OR throttles.blocked_until <= {now} \
             RETURNING failures, last_failure_at",
            k = p[0],
            now = p[1],
            start = p[2]
        )
    };
    let query = match conn {
        DbConn::Pg(_) => sql(["$1", "$2", "$3"]),
        DbConn::Sqlite(_) => sql(["?1", "?2", "?3"]),
    };
    let rows: Vec<Count> = diesel::sql_query(query)
        .bind::<Text, _>(key)
        .bind::<Timestamp, _>(now)
        .bind::<Timestamp, _>(window_start)
        .load(conn)?;
    Ok(rows.first().map(|r| r.failures))
}

/// Sets when `key` blocks until (`None`: not blocked).
pub fn block_until(
    conn: &mut DbConn,
    key: &str,
    until: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    diesel::update(throttles::table.find(key))
        .set(throttles::blocked_until.eq(until))
        .execute(conn)
}

/// Takes back one claimed failure (the attempt turned out right): the count left and when the
/// last failure was, if the key still has one.
pub fn give_back(conn: &mut DbConn, key: &str) -> QueryResult<Option<(i32, NaiveDateTime)>> {
    use diesel::sql_types::Text;
    let query = match conn {
        DbConn::Pg(_) => {
            "UPDATE throttles SET failures = failures - 1 WHERE key = $1 AND failures > 0 \
             RETURNING failures, last_failure_at"
        }
        DbConn::Sqlite(_) => {
            "UPDATE throttles SET failures = failures - 1 WHERE key = ?1 AND failures > 0 \
             RETURNING failures, last_failure_at"
        }
    };
    let rows: Vec<Count> = diesel::sql_query(query).bind::<Text, _>(key).load(conn)?;
    Ok(rows.first().map(|r| (r.failures, r.last_failure_at)))
}

pub fn delete(conn: &mut DbConn, key: &str) -> QueryResult<usize> {
    diesel::delete(throttles::table.find(key)).execute(conn)
}

/// Forgets counters whose last failure is older than `before`.
pub fn purge(conn: &mut DbConn, before: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    let batch = throttles::table
        .select(throttles::key)
        .filter(throttles::last_failure_at.lt(before))
        .limit(limit)
        .load::<String>(conn)?;
    diesel::delete(throttles::table.filter(throttles::key.eq_any(batch))).execute(conn)
}
