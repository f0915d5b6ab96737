//! What the detection rules count (`audit::detect`): small rows found by rule, subject and
//! time through one index, so a rule reads at most a few entries whatever the size of the
//! audit trail.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::detection_facts;

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = detection_facts)]
pub struct Fact<'a> {
    /// Which rule counts it.
    pub kind: &'a str,
    /// What it is counted under: an account pseudonym, an address, a user, a client.
    pub subject: &'a str,
    /// A second value some rules compare (the account behind an address's failure, the
    /// address and agent of a sign-in); empty when none.
    pub other: &'a str,
    pub at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, fact: &Fact<'_>) -> QueryResult<()> {
    diesel::insert_into(detection_facts::table)
        .values(fact)
        .execute(conn)
        .map(|_| ())
}

/// How many facts of `kind` for `subject` (and `other`, when given) there are at or after
/// `since`, counting no further than `most`.
pub fn count(
    conn: &mut DbConn,
    kind: &str,
    subject: &str,
    other: Option<&str>,
    since: NaiveDateTime,
    most: i64,
) -> QueryResult<usize> {
    let mut q = detection_facts::table
        .filter(detection_facts::kind.eq(kind))
        .filter(detection_facts::subject.eq(subject))
        .filter(detection_facts::at.ge(since))
        .into_boxed();
    if let Some(o) = other {
        q = q.filter(detection_facts::other.eq(o.to_string()));
    }
    Ok(q.select(detection_facts::id)
        .limit(most)
        .load::<i64>(conn)?
        .len())
}

/// The distinct `other` values of `kind` for `subject` at or after `since`, at most `most`.
pub fn distinct_others(
    conn: &mut DbConn,
    kind: &str,
    subject: &str,
    since: NaiveDateTime,
    most: i64,
) -> QueryResult<Vec<String>> {
    detection_facts::table
        .filter(detection_facts::kind.eq(kind))
        .filter(detection_facts::subject.eq(subject))
        .filter(detection_facts::at.ge(since))
        .select(detection_facts::other)
        .distinct()
        .limit(most)
        .load(conn)
}

/// The newest facts of `kind` for `subject` at or after `since` (`other` and time), at most
/// `most`.
pub fn newest(
    conn: &mut DbConn,
    kind: &str,
    subject: &str,
    since: NaiveDateTime,
    most: i64,
) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    detection_facts::table
        .filter(detection_facts::kind.eq(kind))
        .filter(detection_facts::subject.eq(subject))
        .filter(detection_facts::at.ge(since))
        .order(detection_facts::at.desc())
        .select((detection_facts::other, detection_facts::at))
        .limit(most)
        .load(conn)
}

/// Deletes up to `limit` facts older than `before` (oldest first).
pub fn purge(conn: &mut DbConn, before: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    let ids: Vec<i64> = detection_facts::table
        .filter(detection_facts::at.lt(before))
        .order(detection_facts::at.asc())
        .select(detection_facts::id)
        .limit(limit)
        .load(conn)?;
    diesel::delete(detection_facts::table.filter(detection_facts::id.eq_any(ids))).execute(conn)
}
