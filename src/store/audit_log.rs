use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::audit_log;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = audit_log)]
pub struct Entry {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub event: String,
    pub actor: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub outcome: String,
    /// JSON object.
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The newest linked entry (unlinked ones are numbered below zero).
pub fn last(conn: &mut DbConn) -> QueryResult<Option<Entry>> {
    audit_log::table
        .filter(audit_log::seq.gt(0))
        .order(audit_log::seq.desc())
        .select(Entry::as_select())
        .first(conn)
        .optional()
}

/// What an entry says, before it is numbered and linked.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct Content {
    pub at: NaiveDateTime,
    pub event: String,
    pub actor: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub outcome: String,
    pub details: String,
}

/// Inserts an entry unlinked (PostgreSQL): its number is the next value of the pending
/// sequence, negated, and its hashes are empty until `relink`.
pub fn insert_unlinked(conn: &mut DbConn, c: &Content) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(c)
        .execute(conn)
        .map(|_| ())
}

/// The committed unlinked entries, oldest first (numbers closest to zero), at most `limit`,
/// with their pending numbers.
pub fn unlinked(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<(i64, Content)>> {
    audit_log::table
        .filter(audit_log::seq.lt(0))
        .order(audit_log::seq.desc())
        .limit(limit)
        .select((audit_log::seq, Content::as_select()))
        .load(conn)
}

/// Gives the unlinked entry `pending` its place in the chain.
pub fn relink(conn: &mut DbConn, pending: i64, e: &Entry) -> QueryResult<usize> {
    diesel::update(audit_log::table.find(pending))
        .set((
            audit_log::seq.eq(e.seq),
            audit_log::prev_hash.eq(&e.prev_hash),
            audit_log::hash.eq(&e.hash),
        ))
        .execute(conn)
}

pub fn insert(conn: &mut DbConn, e: &Entry) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(e)
        .execute(conn)
        .map(|_| ())
}

/// Entries with `seq > after`, oldest first, at most `limit`.
pub fn page(conn: &mut DbConn, after: i64, limit: i64) -> QueryResult<Vec<Entry>> {
    audit_log::table
        .filter(audit_log::seq.gt(after))
        .order(audit_log::seq.asc())
        .limit(limit)
        .select(Entry::as_select())
        .load(conn)
}

pub fn tail(conn: &mut DbConn, n: i64) -> QueryResult<Vec<Entry>> {
    let mut v: Vec<Entry> = audit_log::table
        .order(audit_log::seq.desc())
        .limit(n)
        .select(Entry::as_select())
        .load(conn)?;
    v.reverse();
    Ok(v)
}

/// Which entries to look at.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub outcome: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// Entries of `event` at or after `since` matching `f`, newest first.
pub fn matching(
    conn: &mut DbConn,
    event: &str,
    since: NaiveDateTime,
    f: &Filter<'_>,
    limit: i64,
) -> QueryResult<Vec<Entry>> {
    let (outcome, user_id, client_id, ip) = (f.outcome, f.user_id, f.client_id, f.ip);
    let mut q = audit_log::table
        .filter(audit_log::event.eq(event))
        .filter(audit_log::at.ge(since))
        .into_boxed();
    if let Some(o) = outcome {
        q = q.filter(audit_log::outcome.eq(o.to_string()));
    }
    if let Some(u) = user_id {
        q = q.filter(audit_log::user_id.eq(u.to_string()));
    }
    if let Some(c) = client_id {
        q = q.filter(audit_log::client_id.eq(c.to_string()));
    }
    if let Some(i) = ip {
        q = q.filter(audit_log::ip.eq(i.to_string()));
    }
    q.order(audit_log::seq.desc())
        .limit(limit)
        .select(Entry::as_select())
        .load(conn)
}

/// A signed statement that entry `seq` had hash `hash` at time `at`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = crate::db::schema::audit_checkpoints)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub at: NaiveDateTime,
    pub key_id: String,
    pub mac: String,
}

pub fn checkpoints(conn: &mut DbConn) -> QueryResult<Vec<Checkpoint>> {
    use crate::db::schema::audit_checkpoints;
    audit_checkpoints::table
        .order(audit_checkpoints::seq.asc())
        .select(Checkpoint::as_select())
        .load(conn)
}

pub fn last_checkpoint(conn: &mut DbConn) -> QueryResult<Option<Checkpoint>> {
    use crate::db::schema::audit_checkpoints;
    audit_checkpoints::table
        .order(audit_checkpoints::seq.desc())
        .select(Checkpoint::as_select())
        .first(conn)
        .optional()
}

pub fn insert_checkpoint(conn: &mut DbConn, c: &Checkpoint) -> QueryResult<()> {
    use crate::db::schema::audit_checkpoints;
    diesel::insert_into(audit_checkpoints::table)
        .values(c)
        .execute(conn)
        .map(|_| ())
}

/// The newest checkpoint taken before `before`.
pub fn checkpoint_before(
    conn: &mut DbConn,
    before: NaiveDateTime,
) -> QueryResult<Option<Checkpoint>> {
    use crate::db::schema::audit_checkpoints;
    audit_checkpoints::table
        .filter(audit_checkpoints::at.lt(before))
        .order(audit_checkpoints::seq.desc())
        .select(Checkpoint::as_select())
        .first(conn)
        .optional()
}

/// Deletes the entries up to `seq` and the checkpoints before it (the one at `seq` stays
/// and anchors what follows).
pub fn delete_through(conn: &mut DbConn, seq: i64) -> QueryResult<usize> {
    use crate::db::schema::audit_checkpoints;
    diesel::delete(audit_checkpoints::table.filter(audit_checkpoints::seq.lt(seq)))
        .execute(conn)?;
    diesel::delete(
        audit_log::table
            .filter(audit_log::seq.gt(0))
            .filter(audit_log::seq.le(seq)),
    )
    .execute(conn)
}

/// The first entry's number, if any.
pub fn first_seq(conn: &mut DbConn) -> QueryResult<Option<i64>> {
    audit_log::table
        .filter(audit_log::seq.gt(0))
        .select(diesel::dsl::min(audit_log::seq))
        .first(conn)
}

/// The checkpoint a pruning step from `first` deletes through: the last one at most `reach`
/// (and at most `end`), or, when none is that close, the next one after `first`.
pub fn checkpoint_step(conn: &mut DbConn, first: i64, reach: i64, end: i64) -> QueryResult<i64> {
    use crate::db::schema::audit_checkpoints;
    let within = audit_checkpoints::table
        .filter(audit_checkpoints::seq.ge(first))
        .filter(audit_checkpoints::seq.le(reach.min(end)));
    if let Some(s) = within
        .select(diesel::dsl::max(audit_checkpoints::seq))
        .first::<Option<i64>>(conn)?
    {
        return Ok(s);
    }
    Ok(audit_checkpoints::table
        .filter(audit_checkpoints::seq.ge(first))
        .filter(audit_checkpoints::seq.le(end))
        .select(diesel::dsl::min(audit_checkpoints::seq))
        .first::<Option<i64>>(conn)?
        .unwrap_or(end))
}

pub fn resign_checkpoint(
    conn: &mut DbConn,
    seq: i64,
    key_id: &str,
    mac: &str,
) -> QueryResult<usize> {
    use crate::db::schema::audit_checkpoints;
    diesel::update(audit_checkpoints::table.find(seq))
        .set((
            audit_checkpoints::key_id.eq(key_id),
            audit_checkpoints::mac.eq(mac),
        ))
        .execute(conn)
}
