//! A clock for tests: the system's time, shifted by however far a test moved it.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ports::{Clock, SystemClock};

/// Real time plus an offset that only grows: a test moves it forward with
/// [`TestClock::advance`] instead of sleeping until something expires.
#[derive(Debug, Default)]
pub struct TestClock {
    offset: Mutex<TimeDelta>,
}

impl TestClock {
    /// A clock at the system's time.
    pub fn new() -> Self {
        Self::default()
    }

    /// How far ahead of the system's time the clock is.
    pub fn offset(&self) -> TimeDelta {
        *self.offset.lock().unwrap()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut offset = self.offset.lock().unwrap();
        *offset += TimeDelta::from_std(by).unwrap();
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        SystemClock.now() + *self.offset.lock().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward() {
        let clock = TestClock::new();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now() - before >= TimeDelta::seconds(3600));
    }
}
