//! The only place that reads the wall clock. Tests use a fixed clock they advance.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use std::sync::{Arc, Mutex};

/// Current time source: the system clock, or a fixed clock shared with tests.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Fixed(Arc<Mutex<DateTime<Utc>>>),
}

impl Clock {
    /// A fixed clock starting at `start`.
    pub fn fixed(start: DateTime<Utc>) -> Clock {
        Clock::Fixed(Arc::new(Mutex::new(start)))
    }

    /// A fixed clock starting at the current wall-clock time (whole seconds).
    #[allow(clippy::disallowed_methods)]
    pub fn fixed_at_now() -> Clock {
        let now = Utc::now();
        let whole = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        Clock::fixed(whole)
    }

    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => match t.lock() {
                Ok(g) => *g,
                Err(p) => *p.into_inner(),
            },
        }
    }

    /// Naive UTC, as stored in the database.
    pub fn naive(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Moves a fixed clock forward; does nothing to the system clock.
    pub fn advance(&self, by: Duration) {
        if let Clock::Fixed(t) = self {
            let mut g = match t.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            *g += by;
        }
    }
}
