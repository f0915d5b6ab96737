//! Request rate limits (governor's GCRA, per instance): per client address on every endpoint
//! that does work, and per client at the token-side endpoints. The HTTP side (which address,
//! the 429 answer) is in `web/rate_limit.rs`.

use governor::clock::{Clock, DefaultClock};
use std::net::IpAddr;
use std::num::NonZeroU32;

use crate::config::RateLimit;

pub(crate) fn quota(cfg: &RateLimit) -> governor::Quota {
    let rate = NonZeroU32::new(cfg.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(cfg.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    governor::Quota::per_second(rate).allow_burst(burst)
}

/// Per client address.
pub type AddressLimiter = governor::DefaultKeyedRateLimiter<IpAddr>;

pub fn address_limiter(cfg: &RateLimit) -> AddressLimiter {
    governor::RateLimiter::keyed(quota(cfg))
}

/// A per-client limiter for the token-side endpoints (keyed by the presented `client_id`).
/// It counts in cells: a key's bucket holds `CELLS` and refills them over a minute, and a
/// request of a client whose budget is N per minute costs `CELLS / N` cells, so every client
/// gets its own rate (N a minute) and burst (N at once) from one keyed limiter.
pub type ClientLimiter = governor::DefaultKeyedRateLimiter<String>;

const CELLS: u32 = crate::config::MAX_CLIENT_REQUESTS_PER_MINUTE;

pub fn client_limiter() -> ClientLimiter {
    let cells = NonZeroU32::new(CELLS).unwrap_or(NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_minute(cells).allow_burst(cells))
}

/// The key of the per-client limit: a registered client's id as authentication reads it, or
/// one bucket shared by every request naming no registered client (so made-up ids cannot
/// grow the limiter, nor escape it).
pub fn client_key(known_client_id: Option<String>) -> String {
    known_client_id.unwrap_or_default()
}

/// What one request of a client with a budget of `per_minute` requests costs.
fn cost(per_minute: u32) -> NonZeroU32 {
    NonZeroU32::new(CELLS / per_minute.clamp(1, CELLS)).unwrap_or(NonZeroU32::MIN)
}

/// `Some(seconds)` when `client_id` is over its budget of `per_minute` requests.
pub fn client_over_limit(
    limiter: &ClientLimiter,
    enabled: bool,
    client_id: Option<String>,
    per_minute: u32,
) -> Option<u64> {
    let id = client_id.filter(|_| enabled)?;
    match limiter.check_key_n(&id, cost(per_minute)) {
        Ok(Ok(())) => None,
        Ok(Err(not_until)) => Some(
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1),
        ),
        // Cannot happen (a cost never exceeds the bucket); refuse for a minute if it did.
        Err(_) => Some(60),
    }
}

/// Forgets every key whose bucket has refilled: such a key is indistinguishable from one
/// never seen, so the limiters only hold keys active within one refill period, however many
/// distinct addresses or client ids were presented before.
pub fn prune<K, S, C, MW>(limiter: &governor::RateLimiter<K, S, C, MW>)
where
    K: std::hash::Hash,
    S: governor::state::keyed::ShrinkableKeyedStateStore<K>,
    C: governor::clock::Clock,
    MW: governor::middleware::RateLimitingMiddleware<C::Instant>,
{
    limiter.retain_recent();
    limiter.shrink_to_fit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    #[test]
    fn pruning_forgets_keys_whose_buckets_have_refilled() {
        let cfg = RateLimit {
            per_second: 10,
            burst: 20,
            ..RateLimit::default()
        };
        let clock = FakeRelativeClock::default();
        let limiter = governor::RateLimiter::dashmap_with_clock(quota(&cfg), clock.clone());
        for i in 0..1000 {
            assert!(limiter.check_key(&format!("client-{i}")).is_ok());
        }
        prune(&limiter);
        assert_eq!(limiter.len(), 1000, "buckets still refilling are kept");
        clock.advance(std::time::Duration::from_secs(3));
        assert!(limiter.check_key(&"active".to_string()).is_ok());
        prune(&limiter);
        assert_eq!(limiter.len(), 1, "only the key used since is left");
    }

    #[test]
    fn each_client_gets_its_own_budget_from_one_limiter() {
        let limiter = client_limiter();
        let spend = |id: &str, budget: u32, n: u32| {
            (0..n)
                .filter(|_| {
                    client_over_limit(&limiter, true, Some(id.to_string()), budget).is_none()
                })
                .count()
        };
        assert_eq!(
            spend("small", 10, 15),
            10,
            "a budget of 10 allows 10 at once"
        );
        assert_eq!(
            spend("big", 6000, 6000),
            6000,
            "the default budget allows 6000"
        );
        assert!(client_over_limit(&limiter, false, Some("small".into()), 10).is_none());
    }
}
