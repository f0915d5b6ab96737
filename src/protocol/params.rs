//! Bounds on what an authorization request may carry: one table of string lengths, a ceiling
//! on the number of parameters, and bounded types for numbers (combined only with checked
//! arithmetic), so that no request value can exhaust storage or overflow a computation.

use chrono::{NaiveDateTime, TimeDelta};

/// The longest accepted value of each known parameter, in bytes.
pub const MAX_LEN: &[(&str, usize)] = &[
    ("client_id", 256),
    ("redirect_uri", 2048),
    ("response_type", 64),
    ("response_mode", 32),
    ("scope", 1024),
    ("state", 512),
    ("nonce", 512),
    ("prompt", 64),
    ("display", 32),
    ("max_age", 32),
    ("login_hint", 256),
    ("id_token_hint", 8192),
    ("claims", 4096),
    ("claims_locales", 256),
    ("ui_locales", 256),
    ("acr_values", 256),
    ("code_challenge", 128),
    ("code_challenge_method", 16),
    ("request_uri", 256),
    ("request", 8192),
    ("post_logout_redirect_uri", 2048),
];

/// Any other parameter (extensions we ignore but keep with the parked request).
pub const OTHER_MAX_LEN: usize = 512;
/// The longest parameter name.
pub const NAME_MAX_LEN: usize = 64;
/// The most parameters one request may carry.
pub const MAX_PARAMS: usize = 50;

/// The length limit of a parameter's value.
pub fn max_len(name: &str) -> usize {
    MAX_LEN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, l)| *l)
        .unwrap_or(OTHER_MAX_LEN)
}

/// True when the value of `name` is within its limit.
pub fn fits(name: &str, value: &str) -> bool {
    value.len() <= max_len(name)
}

/// Why a request's parameters are out of bounds, in words for `error_description`.
pub fn out_of_bounds<'a>(
    pairs: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Option<String> {
    let mut count = 0;
    for (name, value) in pairs {
        count += 1;
        if count > MAX_PARAMS {
            return Some(format!("the request has more than {MAX_PARAMS} parameters"));
        }
        if name.len() > NAME_MAX_LEN {
            return Some("a parameter name is too long".into());
        }
        if !fits(name, value) {
            return Some(format!(
                "{name} is longer than {} characters",
                max_len(name)
            ));
        }
    }
    None
}

/// `max_age` (OpenID Connect Core §3.1.2.1): seconds since the last sign-in, at most
/// [`MaxAge::CAP`]. Larger values mean the same as the cap, since no session lives that long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAge(i64);

impl MaxAge {
    /// Ten years.
    pub const CAP: i64 = 10 * 365 * 24 * 3600;

    /// A non-negative decimal integer that fits in 64 bits; `None` for anything else.
    pub fn parse(raw: &str) -> Option<MaxAge> {
        if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let v: i64 = raw.parse().ok()?;
        Some(MaxAge(v.min(Self::CAP)))
    }

    pub fn seconds(self) -> i64 {
        self.0
    }

    /// True when a sign-in at `auth_time` is older than this allows at `now`.
    pub fn exceeded(self, auth_time: NaiveDateTime, now: NaiveDateTime) -> bool {
        TimeDelta::try_seconds(self.0)
            .and_then(|d| auth_time.checked_add_signed(d))
            .is_some_and(|deadline| deadline < now)
    }
}

/// The address a parked request is counted against: the IPv4 address, or the /64 network of
/// an IPv6 address (one subscriber's share); `None` when the address is unknown.
pub fn address_key(ip: Option<&str>) -> Option<String> {
    let ip: std::net::IpAddr = ip?.parse().ok()?;
    Some(match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    })
}

/// `now` plus `seconds`, saturating instead of overflowing (for lifetimes from configuration).
pub fn after(now: NaiveDateTime, seconds: i64) -> NaiveDateTime {
    TimeDelta::try_seconds(seconds)
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(NaiveDateTime::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(s, 0).unwrap().naive_utc()
    }

    #[test]
    fn max_age_accepts_only_non_negative_integers_and_caps_them() {
        assert_eq!(MaxAge::parse("0").map(MaxAge::seconds), Some(0));
        assert_eq!(MaxAge::parse("3600").map(MaxAge::seconds), Some(3600));
        assert_eq!(
            MaxAge::parse("9223372036854775807").map(MaxAge::seconds),
            Some(MaxAge::CAP)
        );
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1e3",
            "9223372036854775808",
            "99999999999999999999999",
            "１",
        ] {
            assert_eq!(MaxAge::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn max_age_arithmetic_never_overflows() {
        let cap = MaxAge::parse("9223372036854775807").unwrap();
        let year = 365 * 24 * 3600;
        assert!(!cap.exceeded(t(2_000_000_000), t(2_000_000_000 + 9 * year)));
        assert!(cap.exceeded(t(0), t(11 * year)));
        assert!(!cap.exceeded(NaiveDateTime::MAX, NaiveDateTime::MAX));
        assert!(!cap.exceeded(NaiveDateTime::MIN, NaiveDateTime::MIN));
        let ten = MaxAge::parse("10").unwrap();
        assert!(!ten.exceeded(t(100), t(110)));
        assert!(ten.exceeded(t(100), t(111)));
        assert_eq!(after(NaiveDateTime::MAX, 60), NaiveDateTime::MAX);
        assert_eq!(after(t(0), i64::MAX), NaiveDateTime::MAX);
        assert_eq!(after(t(0), 60), t(60));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_network() {
        assert_eq!(
            address_key(Some("2001:db8:1:2::5")),
            address_key(Some("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            address_key(Some("2001:db8:1:2::5")),
            address_key(Some("2001:db8:1:3::5"))
        );
        assert_eq!(
            address_key(Some("::ffff:192.0.2.1")).as_deref(),
            Some("192.0.2.1")
        );
        assert_eq!(address_key(Some("192.0.2.1")).as_deref(), Some("192.0.2.1"));
        assert_eq!(address_key(None), None);
        assert_eq!(address_key(Some("garbage")), None);
    }

    #[test]
    fn every_known_parameter_has_a_limit_and_others_share_one() {
        assert_eq!(max_len("state"), 512);
        assert_eq!(max_len("id_token_hint"), 8192);
        assert_eq!(max_len("x-custom"), OTHER_MAX_LEN);
        let pairs = [("x-custom".to_string(), "v".repeat(OTHER_MAX_LEN))];
        assert!(out_of_bounds(pairs.iter().map(|(k, v)| (k, v))).is_none());
        let pairs = [("state".to_string(), "v".repeat(513))];
        assert!(out_of_bounds(pairs.iter().map(|(k, v)| (k, v))).is_some());
        let many: Vec<(String, String)> = (0..=MAX_PARAMS)
            .map(|i| (format!("p{i}"), String::new()))
            .collect();
        assert!(out_of_bounds(many.iter().map(|(k, v)| (k, v))).is_some());
    }
}
