//! The policy sections of the configuration: throttling, rate limits, detection, the
//! password policy and lifetimes, each with its defaults.

use serde::Deserialize;

/// A graded delay schedule: `free` failures cost nothing, then each further failure waits the
/// next entry of `delays` (the last one repeating), never more than `cap` seconds.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub free: i32,
    pub delays: Vec<i64>,
    pub cap: i64,
}

impl Schedule {
    /// Seconds to wait after `failures` failures.
    pub fn delay(&self, failures: i32) -> i64 {
        if failures <= self.free || self.delays.is_empty() {
            return 0;
        }
        let i = (failures - self.free - 1) as usize;
        let d = self
            .delays
            .get(i)
            .or(self.delays.last())
            .copied()
            .unwrap_or(0);
        d.min(self.cap)
    }
}

/// Throttling of failed sign-ins, counted in the database so every instance sees the same counts.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Throttling {
    pub enabled: bool,
    /// Failures older than this many seconds are forgotten.
    pub window: i64,
    /// One account from one address: carries most of the weight.
    pub account_ip: Schedule,
    /// One address, any accounts: credential stuffing.
    pub ip: Schedule,
    /// One account, any address: short and capped, so others cannot lock the user out for long.
    pub account: Schedule,
}

impl Default for Throttling {
    fn default() -> Self {
        Throttling {
            enabled: true,
            window: 3600,
            account_ip: Schedule {
                free: 3,
                delays: vec![1, 5, 30, 300],
                cap: 900,
            },
            ip: Schedule {
                free: 20,
                delays: vec![5, 30, 300],
                cap: 900,
            },
            account: Schedule {
                free: 10,
                delays: vec![1, 2, 5, 10, 30],
                cap: 30,
            },
        }
    }
}

/// Request rate limits per client address (GCRA, per instance).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    pub enabled: bool,
    /// Sustained requests per second per address.
    pub per_second: u32,
    /// Requests allowed in a burst.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            enabled: true,
            per_second: 20,
            burst: 100,
        }
    }
}

/// Threat-detection rules (on by default). Each alert is an audit event, a WARN log line, a
/// metric and, when `webhook_url` is set, a signed webhook POST.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Detection {
    pub enabled: bool,
    /// Seconds the counting rules look back.
    pub window: i64,
    /// Failed sign-ins against one account (guessing).
    pub guessing_failures: usize,
    /// Distinct accounts failing from one address (credential stuffing).
    pub stuffing_accounts: usize,
    /// Failed token requests of one client.
    pub token_error_burst: usize,
    /// Alert on a sign-in from an address and device never seen for the user.
    pub new_device: bool,
    /// Alert on a sign-in at an hour far from every earlier one (after `min_history` sign-ins).
    pub unusual_hour: bool,
    pub unusual_hour_margin: u32,
    pub min_history: usize,
    pub webhook_url: Option<String>,
}

impl Default for Detection {
    fn default() -> Self {
        Detection {
            enabled: true,
            window: 600,
            guessing_failures: 5,
            stuffing_accounts: 10,
            token_error_burst: 20,
            new_device: true,
            unusual_hour: true,
            unusual_hour_margin: 3,
            min_history: 10,
            webhook_url: None,
        }
    }
}

/// The password policy (NIST SP 800-63B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    pub min_length: usize,
    /// How many previous passwords may not be reused.
    pub history: i64,
    /// Optional maximum age in days (off by default: NIST advises against forced rotation).
    pub max_age_days: Option<i64>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 12,
            history: 5,
            max_age_days: None,
        }
    }
}

/// Lifetimes in seconds.
#[derive(Debug, Clone)]
pub struct Lifetimes {
    pub access_token: i64,
    pub refresh_token: i64,
    pub id_token: i64,
    pub code: i64,
    pub session_idle: i64,
    pub session_absolute: i64,
    pub auth_request: i64,
    /// Adding a second factor needs the password typed within this many seconds.
    pub reauth: i64,
    /// Factors added within this many seconds are listed on the account page, and a password
    /// change may remove them.
    pub recent_factor: i64,
    /// How long a device cookie lets its browser past the per-account sign-in lock.
    pub device: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            access_token: 600,
            refresh_token: 30 * 24 * 3600,
            id_token: 600,
            code: 60,
            session_idle: 30 * 60,
            session_absolute: 12 * 3600,
            auth_request: 30 * 60,
            reauth: 5 * 60,
            recent_factor: 7 * 24 * 3600,
            device: 30 * 24 * 3600,
        }
    }
}
