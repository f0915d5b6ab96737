//! The audit trail: one hash-chained row per security-relevant event, written in the same
//! transaction as the change it records. Never a password, token, code or secret.

pub mod detect;
#[cfg(test)]
mod tests;

use chrono::{NaiveDateTime, Timelike};
use serde_json::Value;

use crate::context::RequestMeta;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::master::MasterKey;
use crate::keys::secrets::sha256_hex;
use crate::store::audit_log::{self, Entry};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, to whom, through which client.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    pub event: &'a str,
    pub outcome: &'a str,
    pub actor: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub details: Value,
}

impl<'a> Event<'a> {
    pub fn new(event: &'a str, outcome: &'a str) -> Event<'a> {
        Event {
            event,
            outcome,
            details: Value::Object(Default::default()),
            ..Default::default()
        }
    }
    pub fn user(mut self, id: &'a str) -> Self {
        self.user_id = Some(id);
        self
    }
    pub fn client(mut self, id: &'a str) -> Self {
        self.client_id = Some(id);
        self
    }
    pub fn actor(mut self, a: &'a str) -> Self {
        self.actor = Some(a);
        self
    }
    pub fn details(mut self, d: Value) -> Self {
        self.details = d;
        self
    }
}

/// The canonical content an entry's hash covers (everything but the hashes themselves).
fn canonical(e: &Entry) -> String {
    serde_json::json!([
        e.seq,
        e.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        e.event,
        e.actor,
        e.user_id,
        e.client_id,
        e.ip,
        e.user_agent,
        e.request_id,
        e.outcome,
        e.details,
    ])
    .to_string()
}

pub fn entry_hash(prev_hash: &str, e: &Entry) -> String {
    sha256_hex(&format!("{prev_hash}\n{}", canonical(e)))
}

/// Appends an entry (call inside the transaction of the change), so the change and its
/// record commit together.
///
/// On SQLite, where one writer writes at a time anyway, the entry is linked into the chain
/// at once. On PostgreSQL it is written unlinked, numbered below zero from a sequence, so
/// writers on any number of instances never wait for one another; `link` chains it after
/// it commits (every instance runs it every second, and every reader of the whole trail
/// first).
pub fn record(
    conn: &mut DbConn,
    meta: &RequestMeta,
    now: NaiveDateTime,
    ev: Event<'_>,
) -> Result<(), InternalError> {
    // Microseconds: what both backends store exactly, so the hash verifies after a round trip.
    let at = now
        .with_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now);
    let content = audit_log::Content {
        at,
        event: ev.event.to_string(),
        actor: ev.actor.map(str::to_string),
        user_id: ev.user_id.map(str::to_string),
        client_id: ev.client_id.map(str::to_string),
        ip: meta.ip.clone(),
        user_agent: meta
            .user_agent
            .as_deref()
            .map(|u| u.chars().take(256).collect()),
        request_id: meta.request_id.clone(),
        outcome: ev.outcome.to_string(),
        details: ev.details.to_string(),
    };
    if let DbConn::Pg(_) = conn {
        audit_log::insert_unlinked(conn, &content)?;
        return Ok(());
    }
    let (seq, prev_hash) = match audit_log::last(conn)? {
        Some(p) => (p.seq + 1, p.hash),
        None => (1, GENESIS.to_string()),
    };
    audit_log::insert(conn, &linked(content, seq, prev_hash))?;
    Ok(())
}

/// The entry `content` becomes as number `seq` after the entry with hash `prev_hash`.
fn linked(content: audit_log::Content, seq: i64, prev_hash: String) -> Entry {
    let mut e = Entry {
        seq,
        at: content.at,
        event: content.event,
        actor: content.actor,
        user_id: content.user_id,
        client_id: content.client_id,
        ip: content.ip,
        user_agent: content.user_agent,
        request_id: content.request_id,
        outcome: content.outcome,
        details: content.details,
        prev_hash,
        hash: String::new(),
    };
    e.hash = entry_hash(&e.prev_hash, &e);
    e
}

/// Most entries one `link` step chains.
pub const LINK_BATCH: i64 = 1000;

/// Chains the committed unlinked entries (PostgreSQL), oldest first, in steps of
/// `LINK_BATCH`, each step one transaction under the audit lock. With `wait` false it gives
/// way when another instance is linking (it links these too); with `wait` true it waits its
/// turn and returns only when nothing committed is left unlinked (what readers of the whole
/// trail need). On SQLite nothing is ever unlinked. Returns how many it linked.
pub fn link(conn: &mut DbConn, wait: bool) -> Result<usize, InternalError> {
    if !matches!(conn, DbConn::Pg(_)) {
        return Ok(0);
    }
    let mut total = 0;
    loop {
        let linked_now = crate::db::transaction(conn, |c| {
            if wait {
                crate::db::lock(c, crate::db::LOCK_AUDIT)?;
            } else if !crate::db::try_lock(c, crate::db::LOCK_AUDIT)? {
                return Ok::<_, InternalError>(0);
            }
            let pending = audit_log::unlinked(c, LINK_BATCH)?;
            let (mut seq, mut prev_hash) = match audit_log::last(c)? {
                Some(p) => (p.seq, p.hash),
                None => (0, GENESIS.to_string()),
            };
            let n = pending.len();
            for (old, content) in pending {
                seq += 1;
                let e = linked(content, seq, prev_hash);
                audit_log::relink(c, old, &e)?;
                prev_hash = e.hash;
            }
            Ok(n)
        })?;
        total += linked_now;
        if i64::try_from(linked_now).unwrap_or(i64::MAX) < LINK_BATCH {
            return Ok(total);
        }
    }
}

/// Purpose of the key that signs checkpoints.
pub const CHECKPOINT_PURPOSE: &str = "audit-checkpoint";

fn checkpoint_mac(master: &MasterKey, seq: i64, hash: &str, at: NaiveDateTime) -> String {
    use hmac::{Hmac, Mac};
    let key = master.derive(CHECKPOINT_PURPOSE);
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key.as_ref()) else {
        return String::new();
    };
    mac.update(format!("{seq}|{hash}|{}", at.format("%Y-%m-%dT%H:%M:%S%.6f")).as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Re-signs the checkpoints signed with `old` under `new` (master key rotation), in batches.
pub fn resign_checkpoints(
    conn: &mut DbConn,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<usize, InternalError> {
    let mut n = 0;
    let all = audit_log::checkpoints(conn)?;
    for batch in all.chunks(500) {
        crate::db::transaction(conn, |c| {
            for cp in batch.iter().filter(|cp| cp.key_id == old.id) {
                if checkpoint_mac(old, cp.seq, &cp.hash, cp.at) != cp.mac {
                    return Err(InternalError::new(format!(
                        "checkpoint {} does not verify with the previous master key",
                        cp.seq
                    )));
                }
                audit_log::resign_checkpoint(
                    c,
                    cp.seq,
                    &new.id,
                    &checkpoint_mac(new, cp.seq, &cp.hash, cp.at),
                )?;
                n += 1;
            }
            Ok(())
        })?;
    }
    Ok(n)
}

/// Chains what is unlinked (`link`, giving way to another instance unless `wait`), then
/// signs a checkpoint in a transaction of its own.
pub fn link_and_checkpoint(
    conn: &mut DbConn,
    master: &MasterKey,
    now: NaiveDateTime,
    wait: bool,
) -> Result<Option<i64>, InternalError> {
    link(conn, wait)?;
    crate::db::transaction(conn, |c| checkpoint(c, master, now))
}

/// Signs the newest entry, if it is newer than the last checkpoint. With checkpoints taken
/// regularly, deleting the tail of the trail is detected too.
pub fn checkpoint(
    conn: &mut DbConn,
    master: &MasterKey,
    now: NaiveDateTime,
) -> Result<Option<i64>, InternalError> {
    let Some(last) = audit_log::last(conn)? else {
        return Ok(None);
    };
    if audit_log::last_checkpoint(conn)?.is_some_and(|c| c.seq >= last.seq) {
        return Ok(None);
    }
    let at = now
        .with_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now);
    audit_log::insert_checkpoint(
        conn,
        &audit_log::Checkpoint {
            seq: last.seq,
            mac: checkpoint_mac(master, last.seq, &last.hash, at),
            hash: last.hash,
            at,
            key_id: master.id.clone(),
        },
    )?;
    Ok(Some(last.seq))
}

/// Retention: deletes the entries older than `before` up to the newest signed checkpoint
/// taken before it, which stays as the new anchor, so the rest still verifies.
pub fn prune(conn: &mut DbConn, before: NaiveDateTime, limit: i64) -> Result<usize, InternalError> {
    let Some(end) = audit_log::checkpoint_before(conn, before)? else {
        return Ok(0);
    };
    // From checkpoint to checkpoint, about `limit` entries a step, each in its own short
    // transaction: the chain always starts right after a signed checkpoint.
    let mut total = 0;
    loop {
        let deleted = crate::db::transaction(conn, |c| {
            let Some(first) = audit_log::first_seq(c)?.filter(|f| *f <= end.seq) else {
                return Ok::<_, InternalError>(0);
            };
            let to = audit_log::checkpoint_step(c, first, first.saturating_add(limit), end.seq)?;
            Ok(audit_log::delete_through(c, to)?)
        })?;
        if deleted == 0 {
            return Ok(total);
        }
        total += deleted;
    }
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        entries: i64,
    },
    /// The first entry that does not fit: edited, reordered, or after a gap.
    Broken {
        seq: i64,
        reason: String,
    },
}

/// How many entries come after the last checkpoint signed with `master`: the tail that an
/// attacker with database access could still drop without `verify` noticing a gap. Checkpoints
/// are signed every minute and when the server stops cleanly.
pub fn unanchored(conn: &mut DbConn, master: &MasterKey) -> Result<i64, InternalError> {
    let last = audit_log::last(conn)?.map(|e| e.seq).unwrap_or(0);
    let anchored = audit_log::checkpoints(conn)?
        .into_iter()
        .filter(|c| c.key_id == master.id && c.seq <= last)
        .map(|c| c.seq)
        .max()
        .unwrap_or(0);
    Ok(last - anchored)
}

/// An email address with its local part hidden but the first character (`a****@example.com`).
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}@{domain}", mask(local)),
        None => mask(email),
    }
}

/// A name shown with all but its first character hidden (`a****`), for failed sign-ins of
/// accounts that may not exist.
pub fn mask(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => format!("{c}****"),
        None => String::new(),
    }
}

/// Walks the chain from the first entry, and checks every checkpoint signed with `master`.
pub fn verify(conn: &mut DbConn, master: Option<&MasterKey>) -> Result<Verdict, InternalError> {
    link(conn, true)?;
    let checkpoints: std::collections::BTreeMap<i64, audit_log::Checkpoint> = match master {
        Some(_) => audit_log::checkpoints(conn)?
            .into_iter()
            .map(|c| (c.seq, c))
            .collect(),
        None => Default::default(),
    };
    if let Some(m) = master {
        for c in checkpoints.values() {
            if c.key_id == m.id && checkpoint_mac(m, c.seq, &c.hash, c.at) != c.mac {
                return Ok(Verdict::Broken {
                    seq: c.seq,
                    reason: "its signed checkpoint was forged".into(),
                });
            }
        }
    }
    let mut prev_hash = GENESIS.to_string();
    let mut expected_seq = 1i64;
    let mut after = 0i64;
    // After retention pruning the chain starts at a signed checkpoint.
    if let Some(first) = audit_log::page(conn, 0, 1)?.into_iter().next()
        && first.seq > 1
    {
        let anchor = checkpoints.get(&(first.seq - 1));
        match anchor {
            Some(c) if master.is_some_and(|m| m.id == c.key_id) => {
                prev_hash = c.hash.clone();
                expected_seq = first.seq;
                after = first.seq - 1;
            }
            _ => {
                return Ok(Verdict::Broken {
                    seq: first.seq,
                    reason: format!(
                        "entries before {} are missing and no signed checkpoint anchors the rest",
                        first.seq
                    ),
                });
            }
        }
    }
    loop {
        let page = audit_log::page(conn, after, 1000)?;
        if page.is_empty() {
            let last = expected_seq - 1;
            if let Some((seq, _)) = checkpoints.range(last + 1..).next() {
                return Ok(Verdict::Broken {
                    seq: last + 1,
                    reason: format!(
                        "entries {} to {seq} were deleted (a signed checkpoint names entry {seq})",
                        last + 1
                    ),
                });
            }
            return Ok(Verdict::Intact { entries: last });
        }
        for e in page {
            if e.seq != expected_seq {
                return Ok(Verdict::Broken {
                    seq: e.seq,
                    reason: format!("entry {expected_seq} is missing"),
                });
            }
            if e.prev_hash != prev_hash {
                return Ok(Verdict::Broken {
                    seq: e.seq,
                    reason: "its link to the previous entry does not match".into(),
                });
            }
            if entry_hash(&prev_hash, &e) != e.hash {
                return Ok(Verdict::Broken {
                    seq: e.seq,
                    reason: "its content was changed".into(),
                });
            }
            if checkpoints.get(&e.seq).is_some_and(|c| c.hash != e.hash) {
                return Ok(Verdict::Broken {
                    seq: e.seq,
                    reason: "it differs from its signed checkpoint".into(),
                });
            }
            prev_hash = e.hash.clone();
            expected_seq += 1;
            after = e.seq;
        }
    }
}
