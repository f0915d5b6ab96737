//! The retry schedule of outgoing deliveries (back-channel logout tokens, alert webhooks):
//! exponential backoff and the number of attempts before one is given up.

use chrono::Duration;

/// After this many failed attempts a delivery is given up.
pub const MAX_ATTEMPTS: i32 = 8;

/// The wait before attempt `n + 1`: 2, 4, 8 … seconds, at most an hour.
pub fn backoff(attempts: i32) -> Duration {
    Duration::seconds((1i64 << attempts.clamp(1, 12)).min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::seconds(2));
        assert_eq!(backoff(2), Duration::seconds(4));
        assert_eq!(backoff(5), Duration::seconds(32));
        assert_eq!(backoff(30), Duration::seconds(3600));
    }
}
