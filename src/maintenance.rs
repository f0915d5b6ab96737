//! The periodic purge of what has expired: sessions, parked requests, codes, tokens, the kept
//! answers of refresh rotations whose reuse window ended, throttle counters, finished
//! back-channel deliveries, passkey ceremonies, pushed requests and the facts detection no
//! longer looks at.

use chrono::{Duration, NaiveDateTime};

use crate::config::Config;
use crate::db::{self, DbConn};
use crate::error::InternalError;
use crate::store::{
    auth_codes, auth_requests, job_runs, logout_deliveries, sessions, throttles, tokens,
};

/// The most rows one purge step deletes; each step is its own short transaction, so the
/// purge never holds a lock for long however much has expired.
pub const BATCH: i64 = 500;

/// How often the purge runs, across all instances together.
pub const PERIOD_SECONDS: i64 = 600;

/// Runs the purge when it is due, on the one instance that takes the run (the others skip
/// it until the next period).
pub fn purge_if_due(
    conn: &mut DbConn,
    config: &Config,
    now: NaiveDateTime,
) -> Result<Option<Purged>, InternalError> {
    let next = now + Duration::seconds(PERIOD_SECONDS);
    if !db::transaction(conn, |c| job_runs::take_due(c, "purge", now, next))? {
        return Ok(None);
    }
    purge(conn, config, now).map(Some)
}

/// Repeats one batched delete, each batch in its own transaction, until a batch comes back
/// short; the total.
fn in_batches(
    conn: &mut DbConn,
    mut step: impl FnMut(&mut DbConn, i64) -> diesel::QueryResult<usize>,
) -> Result<usize, InternalError> {
    let mut total = 0;
    loop {
        let n = db::transaction(conn, |c| step(c, BATCH))?;
        total += n;
        if i64::try_from(n).unwrap_or(i64::MAX) < BATCH {
            return Ok(total);
        }
    }
}

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
    pub detection_facts: usize,
}

pub fn purge(
    conn: &mut DbConn,
    config: &Config,
    now: NaiveDateTime,
) -> Result<Purged, InternalError> {
    let idle_before = now - Duration::seconds(config.lifetimes.session_idle);
    let reuse_ended = now - Duration::seconds(config.lifetimes.refresh_reuse_window);
    let throttle_ended = now - Duration::seconds(config.throttle.window);
    Ok(Purged {
        sessions: in_batches(conn, |c, n| sessions::purge(c, now, idle_before, n))?,
        auth_requests: in_batches(conn, |c, n| auth_requests::purge(c, now, n))?,
        // A day of grace: a replayed code is still recognised (and its tokens revoked).
        codes: in_batches(conn, |c, n| {
            auth_codes::purge(c, now - Duration::days(1), n)
        })?,
        tokens: in_batches(conn, |c, n| tokens::purge(c, now, n))?,
        refresh_answers: in_batches(conn, |c, n| tokens::erase_successors(c, reuse_ended, n))?,
        throttles: in_batches(conn, |c, n| throttles::purge(c, throttle_ended, n))?,
        deliveries: in_batches(conn, |c, n| {
            logout_deliveries::purge(c, now - Duration::days(7), crate::retry::MAX_ATTEMPTS, n)
        })?,
        ceremonies: in_batches(conn, |c, n| crate::store::mfa::ceremonies_purge(c, now, n))?,
        pushed_requests: in_batches(conn, |c, n| crate::store::pushed_requests::purge(c, now, n))?,
        detection_facts: in_batches(conn, |c, n| {
            crate::store::detection_facts::purge(
                c,
                now - crate::audit::detect::facts_kept(config),
                n,
            )
        })?,
        audit_entries: match config.audit_retention_days {
            Some(days) => crate::audit::prune(conn, now - Duration::days(days), BATCH)?,
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

    fn token(c: &mut DbConn, expires_at: NaiveDateTime) {
        tokens::insert(
            c,
            &tokens::Token {
                token_hash: crate::keys::secrets::random_id(),
                kind: "access".into(),
                family_id: "f".into(),
                client_id: "app".into(),
                user_id: None,
                scope: "openid".into(),
                grant_data: "{}".into(),
                rotated: false,
                revoked: false,
                created_at: t0(),
                expires_at,
                rotated_at: None,
                successor_sealed: None,
            },
        )
        .unwrap();
    }

    #[test]
    fn the_purge_deletes_expired_tokens_in_batches_until_none_is_left() {
        let mut c = db();
        // Only the tokens table matters here (no client rows behind them).
        diesel::RunQueryDsl::execute(diesel::sql_query("PRAGMA foreign_keys = OFF"), &mut c)
            .unwrap();
        let expired = usize::try_from(BATCH).unwrap() * 2 + 7;
        for _ in 0..expired {
            token(&mut c, t0());
        }
        token(&mut c, t0() + Duration::hours(1));
        let purged = purge(&mut c, &config(), t0() + Duration::seconds(1)).unwrap();
        assert_eq!(purged.tokens, expired);
        use diesel::prelude::*;
        let left: i64 = crate::db::schema::tokens::table
            .count()
            .get_result(&mut c)
            .unwrap();
        assert_eq!(left, 1, "the live token stays");
    }

    #[test]
    fn one_caller_takes_a_due_purge_and_the_next_run_is_a_period_later() {
        let mut c = db();
        let config = config();
        assert!(purge_if_due(&mut c, &config, t0()).unwrap().is_some());
        assert!(
            purge_if_due(&mut c, &config, t0()).unwrap().is_none(),
            "another instance at the same moment skips it"
        );
        let later = t0() + Duration::seconds(PERIOD_SECONDS - 1);
        assert!(purge_if_due(&mut c, &config, later).unwrap().is_none());
        let due = t0() + Duration::seconds(PERIOD_SECONDS);
        assert!(purge_if_due(&mut c, &config, due).unwrap().is_some());
    }

    #[test]
    fn audit_retention_prunes_from_checkpoint_to_checkpoint_and_the_rest_verifies() {
        let mut c = db();
        let master = crate::keys::master::MasterKey::from_bytes([3u8; 32]);
        let meta = crate::context::RequestMeta::default();
        // Ten entries a day for five days, a checkpoint after each day.
        for day in 0..5 {
            let at = t0() + Duration::days(day);
            for _ in 0..10 {
                crate::audit::record(
                    &mut c,
                    &meta,
                    at,
                    crate::audit::Event::new("test", "success"),
                )
                .unwrap();
            }
            crate::audit::checkpoint(&mut c, &master, at).unwrap();
        }
        // Keep the last two days: steps of at most 15 entries reach the checkpoint after day 3.
        let removed = crate::audit::prune(&mut c, t0() + Duration::days(3), 15).unwrap();
        assert_eq!(removed, 30);
        assert_eq!(
            crate::audit::verify(&mut c, Some(&master)).unwrap(),
            crate::audit::Verdict::Intact { entries: 50 }
        );
    }
}
