//! Moving the manual clock (`clock.mode = "manual"`): every job due up to the
//! new time runs, in due-time order and at its own time, before the call
//! returns. A job may make another due inside the same advance (a year of
//! monthly renewals in one call); it runs too.

use std::sync::Arc;

use billing_domain::{DomainError, Reason};
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

use crate::AppError;
use crate::clock::{Clock, ManualClock};
use crate::subscriptions::{JobRunner, JobStats};

#[derive(Debug)]
pub struct TestClock {
    clock: Arc<ManualClock>,
    runner: JobRunner,
    /// One advance at a time.
    advancing: Mutex<()>,
}

impl TestClock {
    pub fn new(clock: Arc<ManualClock>, runner: JobRunner) -> Self {
        TestClock {
            clock,
            runner,
            advancing: Mutex::new(()),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Moves the clock to `to`, running every job due on the way.
    pub async fn advance_to(&self, to: DateTime<Utc>) -> Result<JobStats, AppError> {
        let _one_at_a_time = self.advancing.lock().await;
        let start = self.clock.now();
        if to < start {
            return Err(DomainError::field(
                "to_time",
                Reason::FieldInvalid,
                format!("must not be before the current time {}", start.to_rfc3339()),
            )
            .into());
        }
        let mut stats = JobStats::default();
        while let Some(due) = self.runner.next_due_time(to).await? {
            let at = due.max(self.clock.now());
            // Cannot fail: `at` is never before the clock.
            let _ = self.clock.advance_to(at);
            let run = self.runner.run_due(at).await?;
            stats.succeeded += run.succeeded;
            stats.failed += run.failed;
        }
        let _ = self.clock.advance_to(to);
        Ok(stats)
    }
}
