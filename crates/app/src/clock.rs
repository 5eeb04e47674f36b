//! The service's notion of "now", injectable so that tests (and the manual
//! clock mode) can move time.
//!
//! Time has microsecond precision, as both databases store it: a timestamp
//! returned by a create is the same one every later read returns.

use std::fmt::Debug;
use std::sync::Mutex;

use chrono::{DateTime, SubsecRound, Utc};

pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall-clock time.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// Time that moves only when told to (`clock.mode = "manual"`).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start.trunc_subsecs(6)),
        }
    }

    /// Moves the clock to `to`; time never goes backwards, so an earlier `to`
    /// is refused and the current time returned as the error.
    pub fn advance_to(&self, to: DateTime<Utc>) -> Result<(), DateTime<Utc>> {
        let to = to.trunc_subsecs(6);
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if to < *now {
            return Err(*now);
        }
        *now = to;
        Ok(())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn manual_time_moves_forward_only() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        let later = start + chrono::Duration::days(31);
        assert_eq!(clock.advance_to(later), Ok(()));
        assert_eq!(clock.now(), later);
        assert_eq!(clock.advance_to(start), Err(later));
        assert_eq!(clock.now(), later);
    }

    #[test]
    fn time_has_storage_precision() {
        let now = SystemClock.now();
        assert_eq!(now.timestamp_subsec_nanos() % 1_000, 0);
        let clock = ManualClock::new(Utc.timestamp_opt(0, 123_456_789).unwrap());
        assert_eq!(clock.now().timestamp_subsec_nanos(), 123_456_000);
    }
}
