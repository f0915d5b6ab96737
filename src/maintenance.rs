//! The periodic purge of what has expired: sessions, parked requests, codes, tokens, the kept
//! answers of refresh rotations whose reuse window ended, throttle counters, finished
//! back-channel deliveries, passkey ceremonies and pushed requests.

use chrono::{Duration, NaiveDateTime};

use crate::config::Config;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::store::{auth_codes, auth_requests, logout_deliveries, sessions, throttles, tokens};

/// How many rows each purge removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Purged {
    pub sessions: usize,
    pub auth_requests: usize,
    pub codes: usize,
    pub tokens: usize,
    /// Kept (sealed) answers of refresh rotations whose reuse window ended, erased.
    pub refresh_answers: usize,
    pub throttles: usize,
    pub deliveries: usize,
    pub audit_entries: usize,
    pub ceremonies: usize,
    pub pushed_requests: usize,
}

pub fn purge(
    conn: &mut DbConn,
    config: &Config,
    now: NaiveDateTime,
) -> Result<Purged, InternalError> {
    let idle_before = now - Duration::seconds(config.lifetimes.session_idle);
    Ok(Purged {
        sessions: sessions::purge(conn, now, idle_before)?,
        auth_requests: auth_requests::purge(conn, now)?,
        // A day of grace: a replayed code is still recognised (and its tokens revoked).
        codes: auth_codes::purge(conn, now - Duration::days(1))?,
        tokens: tokens::purge(conn, now)?,
        refresh_answers: tokens::erase_successors(
            conn,
            now - Duration::seconds(config.lifetimes.refresh_reuse_window),
        )?,
        throttles: throttles::purge(conn, now - Duration::seconds(config.throttle.window))?,
        deliveries: logout_deliveries::purge(conn, now - Duration::days(7))?,
        ceremonies: crate::store::mfa::ceremonies_purge(conn, now)?,
        pushed_requests: crate::store::pushed_requests::purge(conn, now)?,
        audit_entries: match config.audit_retention_days {
            Some(days) => crate::audit::prune(conn, now - Duration::days(days))?,
            None => 0,
        },
    })
}
