//! Dunning: what happens after a charge fails.
//!
//! The subscription stays PURCHASED and becomes PAST_DUE; the charge is
//! retried `retry_days` after the first failure (default days 1, 3, 5 and 7);
//! the subscription stays active through `grace_days` (default 7); a retry
//! that succeeds recovers it; when the retries run out it expires (with its
//! bundles, and the PACKAGE fallback). Dunning is per subscription: it never
//! holds up the business's other subscriptions.

use chrono::{DateTime, Duration, Utc};

use crate::error::{DomainError, Reason};

/// The retry schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DunningPolicy {
    /// Days after the first failure on which the charge is retried,
    /// increasing.
    retry_days: Vec<u16>,
    /// Days after the first failure the subscription stays active.
    grace_days: u16,
}

impl Default for DunningPolicy {
    fn default() -> Self {
        DunningPolicy {
            retry_days: vec![1, 3, 5, 7],
            grace_days: 7,
        }
    }
}

impl DunningPolicy {
    /// A policy; retry days must be positive and strictly increasing.
    pub fn new(retry_days: Vec<u16>, grace_days: u16) -> Result<Self, DomainError> {
        let increasing = retry_days.windows(2).all(|pair| pair[0] < pair[1]);
        if retry_days.first().is_some_and(|first| *first == 0) || !increasing {
            return Err(DomainError::new(
                Reason::FieldInvalid,
                "retry days must be positive and strictly increasing, e.g. [1, 3, 5, 7]",
            ));
        }
        Ok(DunningPolicy { retry_days, grace_days })
    }

    pub fn retry_days(&self) -> &[u16] {
        &self.retry_days
    }

    pub fn grace_days(&self) -> u16 {
        self.grace_days
    }

    /// Dunning after the first failed charge at `failed_at`.
    pub fn start(&self, failed_at: DateTime<Utc>) -> Dunning {
        Dunning {
            attempt_count: 1,
            first_failure_time: failed_at,
            next_retry_time: self.retry_time(failed_at, 0),
            grace_end_time: failed_at + Duration::days(i64::from(self.grace_days)),
        }
    }

    /// Dunning after another failed attempt; `None` when no retry is left.
    pub fn after_failed_retry(&self, dunning: &Dunning) -> Option<Dunning> {
        // Attempt n (1-based) is followed by retry number n (0-based: n - 1 + 1).
        let retries_done = usize::try_from(dunning.attempt_count).unwrap_or(usize::MAX);
        let next_retry_time = self.retry_time(dunning.first_failure_time, retries_done)?;
        Some(Dunning {
            attempt_count: dunning.attempt_count + 1,
            next_retry_time: Some(next_retry_time),
            ..dunning.clone()
        })
    }

    fn retry_time(&self, first_failure: DateTime<Utc>, index: usize) -> Option<DateTime<Utc>> {
        self.retry_days
            .get(index)
            .map(|days| first_failure + Duration::days(i64::from(*days)))
    }
}

/// A subscription's unpaid state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dunning {
    /// Charges tried so far, the first failure included.
    pub attempt_count: u32,
    pub first_failure_time: DateTime<Utc>,
    /// When the charge is tried again; `None` when no retry is left.
    pub next_retry_time: Option<DateTime<Utc>>,
    /// Until when the subscription stays active unpaid.
    pub grace_end_time: DateTime<Utc>,
}

impl Dunning {
    pub fn in_grace(&self, now: DateTime<Utc>) -> bool {
        now < self.grace_end_time
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, day, 0, 0, 0).unwrap()
    }

    #[test]
    fn the_default_schedule_retries_on_days_1_3_5_7_and_grace_ends_with_the_last() {
        let policy = DunningPolicy::default();
        let mut dunning = policy.start(at(10));
        assert_eq!(dunning.attempt_count, 1);
        assert_eq!(dunning.grace_end_time, at(17));
        let mut retries = vec![dunning.next_retry_time.unwrap()];
        while let Some(next) = policy.after_failed_retry(&dunning) {
            dunning = next;
            retries.push(dunning.next_retry_time.unwrap());
        }
        assert_eq!(retries, [at(11), at(13), at(15), at(17)]);
        // Four attempts failed (the renewal and the retries of days 1, 3, 5);
        // the retry of day 7 is the fifth and last.
        assert_eq!(dunning.attempt_count, 4);
        assert!(dunning.in_grace(at(16)));
        assert!(!dunning.in_grace(at(17)));
    }

    #[test]
    fn a_policy_must_retry_forward() {
        assert!(DunningPolicy::new(vec![2, 1], 7).is_err());
        assert!(DunningPolicy::new(vec![0, 1], 7).is_err());
        assert!(
            DunningPolicy::new(vec![], 0).is_ok(),
            "no retries: expire at the first failure"
        );
        let none = DunningPolicy::new(vec![], 0).unwrap();
        let dunning = none.start(at(10));
        assert_eq!(dunning.next_retry_time, None);
        assert!(none.after_failed_retry(&dunning).is_none());
    }
}
