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
    /// Authorization requests one client address (an IPv6 /64) may have waiting for sign-in
    /// or consent at once; beyond it `/authorize` answers 429 until the oldest expires. Shared
    /// by every instance (counted in the database); 0 turns the bound off.
    pub parked_requests_per_address: u32,
    /// Pushed authorization requests (`/par`) one client may have waiting at once; beyond it
    /// 429 until the oldest expires. 0 turns the bound off.
    pub pushed_requests_per_client: u32,
    /// Token-side requests (`/token`, `/revoke`, `/introspect`, `/par`) one client may make per
    /// minute, bursting up to the same number, unless the client has its own budget
    /// (`client add|update --requests-per-minute`). 1 to 120000.
    pub client_requests_per_minute: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            enabled: true,
            per_second: 20,
            burst: 100,
            parked_requests_per_address: 100,
            pushed_requests_per_client: 500,
            client_requests_per_minute: 6000,
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
    /// Seconds after a refresh token's rotation during which presenting it again (same client,
    /// same request) answers with the same successor instead of counting as reuse; 0 turns the
    /// window off. Covers a page that sends one refresh token in several requests at once.
    pub refresh_reuse_window: i64,
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
            refresh_reuse_window: 30,
        }
    }
}

/// The longest any configured duration may be (ten years): far inside chrono's range, so
/// adding or subtracting it from a date can never overflow.
pub const MAX_SECONDS: i64 = 10 * 366 * 24 * 3600;
/// The same bound in days.
pub const MAX_DAYS: i64 = 10 * 366;
/// The longest refresh reuse window: a retry is seconds after the first request, and the
/// successor stays recoverable (sealed) for the whole window.
pub const MAX_REFRESH_REUSE_WINDOW: i64 = 300;

/// The largest per-client budget of token-side requests per minute (2000 a second).
pub const MAX_CLIENT_REQUESTS_PER_MINUTE: u32 = 120_000;

/// `Ok` when `value` lies in `min..=max`, else the message naming the setting.
pub fn bounded(name: &str, value: i64, min: i64, max: i64, unit: &str) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} must be between {min} and {max} {unit}"))
    }
}

impl Lifetimes {
    /// Every lifetime within bounds. The idle timeout is at least a minute because a session's
    /// last-seen time is written at most once a minute: a shorter timeout would never slide.
    pub fn check(&self) -> Result<(), String> {
        for (name, value, min, max) in [
            (
                "PORTCULLIS_ACCESS_TOKEN_LIFETIME",
                self.access_token,
                1,
                MAX_SECONDS,
            ),
            (
                "PORTCULLIS_REFRESH_TOKEN_LIFETIME",
                self.refresh_token,
                1,
                MAX_SECONDS,
            ),
            (
                "PORTCULLIS_ID_TOKEN_LIFETIME",
                self.id_token,
                1,
                MAX_SECONDS,
            ),
            ("PORTCULLIS_CODE_LIFETIME", self.code, 1, 600),
            (
                "PORTCULLIS_SESSION_IDLE_TIMEOUT",
                self.session_idle,
                60,
                MAX_SECONDS,
            ),
            (
                "PORTCULLIS_SESSION_LIFETIME",
                self.session_absolute,
                60,
                MAX_SECONDS,
            ),
            (
                "the authorization request lifetime",
                self.auth_request,
                60,
                MAX_SECONDS,
            ),
            ("PORTCULLIS_REAUTH_WINDOW", self.reauth, 1, MAX_SECONDS),
            (
                "PORTCULLIS_RECENT_FACTOR_WINDOW",
                self.recent_factor,
                1,
                MAX_SECONDS,
            ),
            (
                "PORTCULLIS_DEVICE_COOKIE_LIFETIME",
                self.device,
                1,
                MAX_SECONDS,
            ),
            (
                "PORTCULLIS_REFRESH_REUSE_WINDOW",
                self.refresh_reuse_window,
                0,
                MAX_REFRESH_REUSE_WINDOW,
            ),
        ] {
            bounded(name, value, min, max, "seconds")?;
        }
        Ok(())
    }
}

impl Schedule {
    fn check(&self, name: &str) -> Result<(), String> {
        bounded(
            &format!("{name}.free"),
            i64::from(self.free),
            0,
            1_000_000,
            "failures",
        )?;
        bounded(&format!("{name}.cap"), self.cap, 0, MAX_SECONDS, "seconds")?;
        for d in &self.delays {
            bounded(&format!("{name}.delays"), *d, 0, MAX_SECONDS, "seconds")?;
        }
        Ok(())
    }
}

impl Throttling {
    /// The window and every schedule within bounds.
    pub fn check(&self) -> Result<(), String> {
        bounded("throttle.window", self.window, 1, MAX_SECONDS, "seconds")?;
        self.account_ip.check("throttle.account_ip")?;
        self.ip.check("throttle.ip")?;
        self.account.check("throttle.account")
    }
}
