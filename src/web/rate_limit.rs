//! Request rate limits per client address (governor's GCRA), answered with 429 and Retry-After.

use actix_governor::{
    GovernorConfig, GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError,
};
use actix_web::dev::ServiceRequest;
use actix_web::{HttpResponse, HttpResponseBuilder};
use governor::NotUntil;
use governor::clock::{Clock, DefaultClock, QuantaInstant};
use governor::middleware::NoOpMiddleware;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::config::RateLimit;
use crate::web::extractors::client_ip;

/// Keys requests by client address (X-Forwarded-For only from trusted proxies). A request
/// without a peer address is keyed as 0.0.0.0 rather than failed: never a 5xx.
#[derive(Clone, Debug)]
pub struct ClientAddress {
    pub trusted: Arc<Vec<IpAddr>>,
}

impl KeyExtractor for ClientAddress {
    type Key = IpAddr;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<IpAddr, Self::KeyExtractionError> {
        Ok(client_ip(req.request(), &self.trusted).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        mut response: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative
            .wait_time_from(DefaultClock::default().now())
            .as_secs()
            .max(1);
        response
            .insert_header(("cache-control", "no-store"))
            .json(serde_json::json!({
                "error": "rate_limited",
                "error_description": format!("too many requests; retry after {wait} seconds"),
            }))
    }
}

pub type Limits = GovernorConfig<ClientAddress, NoOpMiddleware<QuantaInstant>>;

/// The limiter shared by every worker (built even when limits are off; the caller decides
/// whether to apply it). Rates below one request per second per address are raised to one.
pub fn limits(cfg: &RateLimit, trusted: &[IpAddr]) -> Option<Limits> {
    let period_ns = (1_000_000_000u64 / u64::from(cfg.per_second.max(1))).max(1);
    GovernorConfigBuilder::default()
        .nanoseconds_per_request(period_ns)
        .burst_size(cfg.burst.max(1))
        .key_extractor(ClientAddress {
            trusted: Arc::new(trusted.to_vec()),
        })
        .finish()
}

/// A per-client limiter for the token-side endpoints (keyed by the presented `client_id`).
pub type ClientLimiter = governor::DefaultKeyedRateLimiter<String>;

pub fn client_limiter(cfg: &RateLimit) -> ClientLimiter {
    use std::num::NonZeroU32;
    let rate = NonZeroU32::new(cfg.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(cfg.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    governor::RateLimiter::keyed(governor::Quota::per_second(rate).allow_burst(burst))
}

/// The client a token-side request names (Basic user or `client_id` in the body), if any.
pub fn presented_client_id(authorization: Option<&str>, pairs: &[(String, String)]) -> Option<String> {
    use base64::Engine;
    if let Some(encoded) = authorization.and_then(|h| h.strip_prefix("Basic ")) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text.split_once(':').map(|(id, _)| id.chars().take(128).collect());
    }
    pairs
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.chars().take(128).collect())
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
    HttpResponse::TooManyRequests()
        .insert_header(("retry-after", retry_after.to_string()))
        .insert_header(("cache-control", "no-store"))
        .json(serde_json::json!({
            "error": "rate_limited",
            "error_description": format!("too many requests for this client; retry after {retry_after} seconds"),
        }))
}
