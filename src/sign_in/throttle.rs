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
        let window_start = now - Duration::seconds(cfg.window);
        let prev = throttles::find(conn, key)?.filter(|t| t.last_failure_at >= window_start);
        let failures = prev.as_ref().map(|t| t.failures + 1).unwrap_or(1);
        let delay = schedule.delay(failures);
        if judges {
            wait = wait.max(delay);
        }
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
