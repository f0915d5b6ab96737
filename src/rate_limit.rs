//! Request rate limits (governor's GCRA): per client address on every endpoint that does
//! work, and per client at the token-side endpoints. The HTTP side (which address, the 429
//! answer) is in `web/rate_limit.rs`.
//!
//! The configured limits are the cluster's. Instances count one another through the
//! database (`Share`: a heartbeat row each, every few seconds) and each enforces its share,
//! the limit divided by the number of live instances, in memory: no request waits for the
//! database to be counted. Behind a load balancer that spreads requests evenly, the cluster
//! allows what one instance alone would; when it does not, a client gets less, never more.

use chrono::NaiveDateTime;
use governor::clock::{Clock, DefaultClock};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::config::RateLimit;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::store::instances;

pub(crate) fn quota(cfg: &RateLimit) -> governor::Quota {
    let rate = NonZeroU32::new(cfg.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(cfg.burst.max(1)).unwrap_or(NonZeroU32::MIN);
    governor::Quota::per_second(rate).allow_burst(burst)
}

/// How often an instance says it is serving.
pub const HEARTBEAT_SECONDS: u64 = 5;
/// How long after its last heartbeat an instance still counts as serving.
pub const LIVE_SECONDS: i64 = 15;

/// This instance's place among those serving the database.
#[derive(Debug)]
pub struct Share {
    id: String,
    live: AtomicU32,
}

impl Default for Share {
    fn default() -> Self {
        Share {
            id: crate::keys::secrets::random_id(),
            live: AtomicU32::new(1),
        }
    }
}

impl Share {
    /// How many instances share the limits (at least this one).
    pub fn instances(&self) -> u32 {
        self.live.load(Ordering::Relaxed).max(1)
    }

    /// Says this instance is serving at `now` and counts the instances seen within
    /// `LIVE_SECONDS` (this one included), in one transaction.
    pub fn heartbeat(&self, conn: &mut DbConn, now: NaiveDateTime) -> Result<u32, InternalError> {
        let live = crate::db::transaction(conn, |c| {
            instances::seen(c, &self.id, now)?;
            instances::forget_silent(c, now - chrono::Duration::seconds(LIVE_SECONDS * 20))?;
            instances::live(c, now - chrono::Duration::seconds(LIVE_SECONDS))
        })?;
        let live = u32::try_from(live.max(1)).unwrap_or(u32::MAX);
        self.live.store(live, Ordering::Relaxed);
        Ok(live)
    }

    /// Leaves the count at a clean stop, so the others take over its share at their next
    /// heartbeat.
    pub fn leave(&self, conn: &mut DbConn) -> Result<(), InternalError> {
        crate::db::transaction(conn, |c| instances::forget(c, &self.id))?;
        Ok(())
    }
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

/// What one request of a client with a budget of `per_minute` requests costs on an
/// instance enforcing 1/`instances` of it.
fn cost(per_minute: u32, instances: u32) -> NonZeroU32 {
    let cells = u64::from(CELLS) * u64::from(instances.max(1)) / u64::from(per_minute.max(1));
    NonZeroU32::new(u32::try_from(cells.clamp(1, u64::from(CELLS))).unwrap_or(CELLS))
        .unwrap_or(NonZeroU32::MIN)
}

/// What one request from an address costs on an instance enforcing 1/`instances` of the
/// address limit (a bucket of `burst`); at most the whole bucket.
pub fn address_cost(cfg: &RateLimit, instances: u32) -> NonZeroU32 {
    NonZeroU32::new(instances.clamp(1, cfg.burst.max(1))).unwrap_or(NonZeroU32::MIN)
}

/// `Some(seconds)` when `client_id` is over its budget of `per_minute` requests, of which
/// this instance enforces 1/`instances`.
pub fn client_over_limit(
    limiter: &ClientLimiter,
    enabled: bool,
    client_id: Option<String>,
    per_minute: u32,
    instances: u32,
) -> Option<u64> {
    let id = client_id.filter(|_| enabled)?;
    match limiter.check_key_n(&id, cost(per_minute, instances)) {
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
                    client_over_limit(&limiter, true, Some(id.to_string()), budget, 1).is_none()
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
        assert!(client_over_limit(&limiter, false, Some("small".into()), 10, 1).is_none());
    }

    #[test]
    fn each_of_three_instances_allows_a_third_of_a_clients_budget() {
        let limiter = client_limiter();
        let allowed = (0..30)
            .filter(|_| client_over_limit(&limiter, true, Some("c".into()), 30, 3).is_none())
            .count();
        assert_eq!(allowed, 10);
    }

    #[test]
    fn each_of_three_instances_allows_a_third_of_an_address_burst() {
        let cfg = RateLimit {
            per_second: 10,
            burst: 30,
            ..RateLimit::default()
        };
        let limiter = address_limiter(&cfg);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let allowed = (0..30)
            .filter(|_| {
                limiter
                    .check_key_n(&ip, address_cost(&cfg, 3))
                    .is_ok_and(|r| r.is_ok())
            })
            .count();
        assert_eq!(allowed, 10);
    }

    #[test]
    fn instances_count_one_another_through_the_database() {
        let mut c = crate::testkit::db();
        let (a, b) = (Share::default(), Share::default());
        let now = crate::testkit::t0();
        assert_eq!(a.heartbeat(&mut c, now).unwrap(), 1);
        assert_eq!(b.heartbeat(&mut c, now).unwrap(), 2);
        let later = now + chrono::Duration::seconds(LIVE_SECONDS + 1);
        assert_eq!(
            b.heartbeat(&mut c, later).unwrap(),
            1,
            "a silent instance stops counting"
        );
        a.heartbeat(&mut c, later).unwrap();
        a.leave(&mut c).unwrap();
        assert_eq!(
            b.heartbeat(&mut c, later).unwrap(),
            1,
            "a stopped one leaves at once"
        );
    }
}
