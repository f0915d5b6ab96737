//! Graded delays after failed sign-ins, counted per account, per address and per both, in the
//! database so that every instance sees the same counts. A device that signed in to the
//! account before is judged by its own counter instead of the per-account one (`device.rs`).

use chrono::{Duration, NaiveDateTime};

use crate::audit::detect::account_ref;
use crate::config::{Schedule, Throttling};
use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::master::MasterKey;
use crate::store::throttles::{self, Throttle};

/// The counters one attempt touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub account: String,
    pub ip: String,
    pub account_ip: String,
    /// Set for a device that signed in to the account before: this (account, device) counter,
    /// on the per-(account, address) schedule, judges it instead of the per-account counter.
    pub device: Option<String>,
}

/// Keys for an attempt on `username` from `ip`. Unknown usernames are counted like real ones,
/// so the answers never tell which accounts exist. The account part is the keyed pseudonym
/// the audit trail uses, never what was typed (which may be a password).
pub fn keys(master: &MasterKey, username: &str, ip: Option<&str>) -> Keys {
    let typed: String = username.chars().take(256).collect();
    let account = account_ref(master, &typed);
    let ip = ip.unwrap_or("unknown").to_string();
    Keys {
        account_ip: format!("ai:{account}|{ip}"),
        account: format!("a:{account}"),
        ip: format!("i:{ip}"),
        device: None,
    }
}

impl Keys {
    /// The same attempt from a device that signed in to this account before.
    pub fn with_device(mut self, device_id: &str) -> Keys {
        let account = self.account.trim_start_matches("a:");
        let id: String = device_id.chars().take(64).collect();
        self.device = Some(format!("d:{account}|{id}"));
        self
    }
}

/// The counters that decide whether an attempt may be made, with their schedules.
fn judging<'a>(cfg: &'a Throttling, k: &'a Keys) -> [(&'a str, &'a Schedule); 3] {
    let third = match &k.device {
        Some(d) => (d.as_str(), &cfg.account_ip),
        None => (k.account.as_str(), &cfg.account),
    };
    [
        (k.account_ip.as_str(), &cfg.account_ip),
        (k.ip.as_str(), &cfg.ip),
        third,
    ]
}

/// Every counter a failure adds to (the per-account one even for a known device), and
/// whether it judges this attempt.
fn counting<'a>(cfg: &'a Throttling, k: &'a Keys) -> Vec<(&'a str, &'a Schedule, bool)> {
    let mut all: Vec<_> = judging(cfg, k)
        .into_iter()
        .map(|(key, s)| (key, s, true))
        .collect();
    if k.device.is_some() {
        all.push((k.account.as_str(), &cfg.account, false));
    }
    all
}

/// Seconds until the attempt may be made, if any counter blocks it now.
pub fn blocked(
    conn: &mut DbConn,
    cfg: &Throttling,
    k: &Keys,
    now: NaiveDateTime,
) -> Result<Option<i64>, InternalError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let mut wait = 0i64;
    for (key, _) in judging(cfg, k) {
        if let Some(until) = throttles::find(conn, key)?.and_then(|t| t.blocked_until)
            && until > now
        {
            // Round up so Retry-After never says 0 while still blocked.
            let ms = (until - now).num_milliseconds();
            wait = wait.max((ms + 999) / 1000);
        }
    }
    Ok((wait > 0).then_some(wait))
}

/// Whether an attempt may be made, decided before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Go ahead; the attempt is already counted as a failure on the judging keys, and `wait`
    /// is the delay that count set (what a failure answers with).
    Granted { wait: i64 },
    /// A key blocks it: wait this many seconds.
    Blocked(i64),
}

/// Claims an attempt before its (slow) check: each judging counter is counted up in one
/// statement unless it blocks, and sets its delay at once, so parallel attempts see each
/// other and get no more checks than the same attempts one after another. All keys or none:
/// a blocked key rolls the others back. After the check, `failed_claimed` or
/// `succeeded_claimed` settles the claim.
pub fn claim(
    conn: &mut DbConn,
    cfg: &Throttling,
    k: &Keys,
    now: NaiveDateTime,
) -> Result<Claim, InternalError> {
    if !cfg.enabled {
        return Ok(Claim::Granted { wait: 0 });
    }
    enum Stop {
        Blocked,
        Db(diesel::result::Error),
    }
    impl From<diesel::result::Error> for Stop {
        fn from(e: diesel::result::Error) -> Stop {
            Stop::Db(e)
        }
    }
    let window_start = now - Duration::seconds(cfg.window);
    let claimed = crate::db::transaction(conn, |c| {
        let mut wait = 0i64;
        for (key, schedule) in judging(cfg, k) {
            let failures = throttles::claim(c, key, now, window_start)?.ok_or(Stop::Blocked)?;
            let delay = schedule.delay(failures);
            throttles::block_until(c, key, (delay > 0).then(|| now + Duration::seconds(delay)))?;
            wait = wait.max(delay);
        }
        Ok(wait)
    });
    match claimed {
        Ok(wait) => Ok(Claim::Granted { wait }),
        Err(Stop::Blocked) => Ok(Claim::Blocked(blocked(conn, cfg, k, now)?.unwrap_or(1))),
        Err(Stop::Db(e)) => Err(e.into()),
    }
}

/// A claimed attempt that failed: the judging keys counted it already; the per-account
/// counter of a known device counts it now. How long the next attempt must wait, if at all.
pub fn failed_claimed(
    conn: &mut DbConn,
    cfg: &Throttling,
    k: &Keys,
    wait: i64,
    now: NaiveDateTime,
) -> Result<Option<i64>, InternalError> {
    if !cfg.enabled {
        return Ok(None);
    }
    for (key, schedule, judges) in counting(cfg, k) {
        if !judges {
            count(conn, cfg, key, schedule, now)?;
        }
    }
    Ok((wait > 0).then_some(wait))
}

/// A claimed attempt that was right: the account's counters are cleared (`succeeded`) and the
/// address gets its claimed failure back, with the delay its remaining count calls for.
pub fn succeeded_claimed(
    conn: &mut DbConn,
    cfg: &Throttling,
    k: &Keys,
) -> Result<(), InternalError> {
    succeeded(conn, k)?;
    if cfg.enabled
        && let Some((failures, last)) = throttles::give_back(conn, &k.ip)?
    {
        let delay = cfg.ip.delay(failures);
        throttles::block_until(
            conn,
            &k.ip,
            (delay > 0).then(|| last + Duration::seconds(delay)),
        )?;
    }
    Ok(())
}

/// Counts a failure under one key; the delay it sets.
fn count(
    conn: &mut DbConn,
    cfg: &Throttling,
    key: &str,
    schedule: &Schedule,
    now: NaiveDateTime,
) -> Result<i64, InternalError> {
    let window_start = now - Duration::seconds(cfg.window);
    let prev = throttles::find(conn, key)?.filter(|t| t.last_failure_at >= window_start);
    let failures = prev.as_ref().map(|t| t.failures + 1).unwrap_or(1);
    let delay = schedule.delay(failures);
    throttles::put(
        conn,
        &Throttle {
            key: key.to_string(),
            failures,
            first_failure_at: prev.map(|t| t.first_failure_at).unwrap_or(now),
            last_failure_at: now,
            blocked_until: (delay > 0).then(|| now + Duration::seconds(delay)),
        },
    )?;
    Ok(delay)
}

/// Counts a failure on every key; returns how long the next attempt must wait, if at all.
pub fn failed(
    conn: &mut DbConn,
    cfg: &Throttling,
    k: &Keys,
    now: NaiveDateTime,
) -> Result<Option<i64>, InternalError> {
    if !cfg.enabled {
        return Ok(None);
    }
    let mut wait = 0i64;
    for (key, schedule, judges) in counting(cfg, k) {
        let delay = count(conn, cfg, key, schedule, now)?;
        if judges {
            wait = wait.max(delay);
        }
    }
    Ok((wait > 0).then_some(wait))
}

/// The schedules for second-factor guesses. Only someone who knows the password can make
/// them, so the per-account counter may be as strict as the per-address one without letting
/// strangers lock the user out.
pub fn for_second_factor(cfg: &Throttling) -> Throttling {
    Throttling {
        account: cfg.account_ip.clone(),
        ..cfg.clone()
    }
}

/// A successful sign-in clears the account's own counters (not the address's).
pub fn succeeded(conn: &mut DbConn, k: &Keys) -> Result<(), InternalError> {
    throttles::delete(conn, &k.account_ip)?;
    throttles::delete(conn, &k.account)?;
    if let Some(d) = &k.device {
        throttles::delete(conn, d)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testkit::{db, t0};

    fn keys_for(user: &str, ip: &str) -> Keys {
        keys(&MasterKey::from_bytes([7u8; 32]), user, Some(ip))
    }

    fn count_of(conn: &mut DbConn, key: &str) -> i32 {
        throttles::find(conn, key)
            .unwrap()
            .map_or(0, |t| t.failures)
    }

    #[test]
    fn a_claim_counts_the_attempt_before_it_is_checked_and_the_fourth_sets_the_delay() {
        let (mut c, cfg) = (db(), Throttling::default());
        let k = keys_for("alice", "192.0.2.1");
        for _ in 0..3 {
            assert_eq!(
                claim(&mut c, &cfg, &k, t0()).unwrap(),
                Claim::Granted { wait: 0 }
            );
        }
        assert_eq!(
            claim(&mut c, &cfg, &k, t0()).unwrap(),
            Claim::Granted { wait: 1 },
            "the fourth is checked and its failure waits a second"
        );
        assert_eq!(claim(&mut c, &cfg, &k, t0()).unwrap(), Claim::Blocked(1));
        assert_eq!(
            count_of(&mut c, &k.account_ip),
            4,
            "a blocked attempt is not counted"
        );
    }

    #[test]
    fn a_key_that_blocks_rolls_back_the_claims_on_the_other_keys() {
        let (mut c, cfg) = (db(), Throttling::default());
        let k = keys_for("alice", "192.0.2.1");
        throttles::put(
            &mut c,
            &Throttle {
                key: k.account.clone(),
                failures: 9,
                first_failure_at: t0(),
                last_failure_at: t0(),
                blocked_until: Some(t0() + Duration::seconds(30)),
            },
        )
        .unwrap();
        assert_eq!(claim(&mut c, &cfg, &k, t0()).unwrap(), Claim::Blocked(30));
        assert_eq!(count_of(&mut c, &k.account_ip), 0);
        assert_eq!(count_of(&mut c, &k.ip), 0);
    }

    #[test]
    fn a_right_password_clears_the_account_and_gives_the_address_its_claim_back() {
        let (mut c, cfg) = (db(), Throttling::default());
        let other = keys_for("bob", "192.0.2.1");
        claim(&mut c, &cfg, &other, t0()).unwrap();
        let k = keys_for("alice", "192.0.2.1");
        claim(&mut c, &cfg, &k, t0()).unwrap();
        assert_eq!(count_of(&mut c, &k.ip), 2);
        succeeded_claimed(&mut c, &cfg, &k).unwrap();
        assert_eq!(
            count_of(&mut c, &k.ip),
            1,
            "bob's failure stays on the address"
        );
        assert_eq!(count_of(&mut c, &k.account_ip), 0);
        assert_eq!(count_of(&mut c, &k.account), 0);
    }
}
