//! The HTTP side of the rate limits (`crate::rate_limit`): the client address a request is
//! counted under, and the 429 answers with Retry-After, never a 5xx when the peer address is
//! missing.

use actix_web::{HttpRequest, HttpResponse};
use governor::clock::{Clock, DefaultClock};
use std::net::{IpAddr, Ipv4Addr};

use crate::config::RateLimit;
use crate::rate_limit::AddressLimiter;
use crate::web::extractors::client_ip;

/// `Some(seconds)` when the request's address is over this instance's share of its limit
/// (1/`instances`). A request without a peer
/// address is counted as 0.0.0.0.
pub fn address_over_limit(
    limiter: &AddressLimiter,
    cfg: &RateLimit,
    req: &HttpRequest,
    trusted: &[IpAddr],
    instances: u32,
) -> Option<u64> {
    if !cfg.enabled {
        return None;
    }
    let ip = client_ip(req, trusted).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match limiter.check_key_n(&ip, crate::rate_limit::address_cost(cfg, instances)) {
        Ok(Ok(())) => None,
        Ok(Err(n)) => Some(
            n.wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1),
        ),
        // Cannot happen (the cost never exceeds the bucket); refuse for a second if it did.
        Err(_) => Some(1),
    }
}

/// The 429 answer for an address over its limit.
pub fn address_too_many(retry_after: u64) -> HttpResponse {
    crate::web::errors::oauth_too_many(
        &format!("too many requests; retry after {retry_after} seconds"),
        i64::try_from(retry_after).unwrap_or(i64::MAX),
    )
}

/// The 429 answer of the token-side endpoints.
pub fn too_many(retry_after: u64) -> HttpResponse {
    crate::web::errors::oauth_too_many(
        &format!("too many requests for this client; retry after {retry_after} seconds"),
        i64::try_from(retry_after).unwrap_or(i64::MAX),
    )
}
