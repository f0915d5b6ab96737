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
        deliveries: logout_deliveries::purge(
            conn,
            now - Duration::days(7),
            crate::retry::MAX_ATTEMPTS,
        )?,
        ceremonies: crate::store::mfa::ceremonies_purge(conn, now)?,
        pushed_requests: crate::store::pushed_requests::purge(conn, now)?,
        audit_entries: match config.audit_retention_days {
            Some(days) => crate::audit::prune(conn, now - Duration::days(days))?,
            None => 0,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::sign_in::sessions::{Origin, Proof, sign_in};
    use crate::testkit::{config, db, t0, user};

    #[test]
    fn the_purge_removes_idle_and_expired_sessions_and_keeps_live_ones() {
        let mut c = db();
        let config = config();
        let l = &config.lifetimes;
        let uid = user(&mut c, "alice", t0());
        let open = |c: &mut DbConn, at: NaiveDateTime| {
            let proof = Proof {
                amr: &["pwd"],
                password_at: Some(at),
            };
            sign_in(c, None, &uid, proof, &Origin::default(), at, l)
                .unwrap()
                .session
                .id_hash
        };
        let now = t0() + Duration::seconds(l.session_absolute);
        // Signed in at t0 and used ever since: its absolute lifetime is over.
        let expired = open(&mut c, t0());
        sessions::touch(&mut c, &expired, now - Duration::seconds(10)).unwrap();
        // Signed in recently, not used for longer than the idle timeout.
        let idle = open(&mut c, now - Duration::seconds(l.session_idle + 1));
        // Signed in recently and used a moment ago.
        let live = open(&mut c, now - Duration::seconds(l.session_idle + 1));
        sessions::touch(&mut c, &live, now - Duration::seconds(10)).unwrap();

        let purged = purge(&mut c, &config, now).unwrap();
        assert_eq!(purged.sessions, 2);
        assert!(sessions::find(&mut c, &expired).unwrap().is_none());
        assert!(sessions::find(&mut c, &idle).unwrap().is_none());
        assert!(sessions::find(&mut c, &live).unwrap().is_some());
        assert_eq!(
            purge(&mut c, &config, now).unwrap().sessions,
            0,
            "idempotent"
        );
    }
}
