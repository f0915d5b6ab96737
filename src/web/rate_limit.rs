//! Request rate limits (governor's GCRA, per instance): per client address on every endpoint
//! that does work, and per client at the token-side endpoints. Answered with 429 and
//! Retry-After, never with a 5xx when the peer address is missing.

use actix_web::{HttpRequest, HttpResponse};
use governor::clock::{Clock, DefaultClock};
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;

use crate::config::RateLimit;
use crate::web::extractors::client_ip;

fn quota(cfg: &RateLimit) -> governor::Quota {
    let rate = NonZeroU32::new(cfg.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(cfg.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    governor::Quota::per_second(rate).allow_burst(burst)
}

/// Per client address.
pub type AddressLimiter = governor::DefaultKeyedRateLimiter<IpAddr>;

pub fn address_limiter(cfg: &RateLimit) -> AddressLimiter {
    governor::RateLimiter::keyed(quota(cfg))
}

/// `Some(seconds)` when the request's address is over its limit. A request without a peer
/// address is counted as 0.0.0.0.
pub fn address_over_limit(
    limiter: &AddressLimiter,
    cfg: &RateLimit,
    req: &HttpRequest,
    trusted: &[IpAddr],
) -> Option<u64> {
    if !cfg.enabled {
        return None;
    }
    let ip = client_ip(req, trusted).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    limiter.check_key(&ip).err().map(|n| {
        n.wait_time_from(DefaultClock::default().now())
            .as_secs()
            .max(1)
    })
}

/// The 429 answer for an address over its limit.
pub fn address_too_many(retry_after: u64) -> HttpResponse {
    crate::web::errors::oauth_too_many(
        &format!("too many requests; retry after {retry_after} seconds"),
        i64::try_from(retry_after).unwrap_or(i64::MAX),
    )
}

/// A per-client limiter for the token-side endpoints (keyed by the presented `client_id`).
pub type ClientLimiter = governor::DefaultKeyedRateLimiter<String>;

pub fn client_limiter(cfg: &RateLimit) -> ClientLimiter {
    governor::RateLimiter::keyed(quota(cfg))
}

/// The key of the per-client limit: a registered client's id as authentication reads it, or
/// one bucket shared by every request naming no registered client (so made-up ids cannot
/// grow the limiter, nor escape it).
pub fn client_key(known_client_id: Option<String>) -> String {
    known_client_id.unwrap_or_default()
}

/// `Some(seconds)` when `client_id` is over its limit.
pub fn client_over_limit(
    limiter: &ClientLimiter,
    enabled: bool,
    client_id: Option<String>,
) -> Option<u64> {
    let id = client_id.filter(|_| enabled)?;
    match limiter.check_key(&id) {
        Ok(()) => None,
        Err(not_until) => Some(
            not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1),
        ),
    }
}

/// The 429 answer of the token-side endpoints.
pub fn too_many(retry_after: u64) -> HttpResponse {
    crate::web::errors::oauth_too_many(
        &format!("too many requests for this client; retry after {retry_after} seconds"),
        i64::try_from(retry_after).unwrap_or(i64::MAX),
    )
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
}
