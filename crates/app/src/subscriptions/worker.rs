//! The worker side: due jobs claimed with a lease, worked by a pool of
//! workers side by side (each claims its own few and runs them one at a
//! time, extending each lease while it works). What one job does is in
//! `jobs.rs`.

use std::sync::Arc;

use billing_domain::ids::SubscriptionId;
use billing_storage::{DueJob, Store};
use chrono::{DateTime, Duration, Utc};
use tracing::Instrument;

use crate::AppError;
use crate::charging::Charger;
use crate::clock::Clock;
use crate::queue::Stopping;

/// How long a claimed job is a worker's before another may take it, unless
/// set otherwise ([`JobRunner::with_lease`]); the worker extends it when the
/// job starts and every third of it while the job runs, so only a worker
/// that died (or stalled) loses it.
pub const DEFAULT_LEASE: std::time::Duration = std::time::Duration::from_secs(300);
/// Jobs a worker claims per round trip: few, so that the last jobs of a
/// run spread over every worker instead of waiting behind one.
const BATCH: u64 = 4;
/// A failing job is retried after 2, 4, 8 … minutes, then hourly for as long
/// as it fails: never parked, so its subscription's rules keep running.
const RETRY_CAP: Duration = Duration::hours(1);
/// From this many failed attempts on, a failing job is logged as an error
/// and listed as failing work.
pub const FAILING_AFTER: i32 = 8;
/// How long an idempotency key is kept (DESIGN §4: at least 24 h).
pub const KEY_RETENTION: Duration = Duration::hours(24);

/// How long after its `attempts`-th failure a job is retried: doubling from
/// two minutes, at most [`RETRY_CAP`].
pub fn retry_delay(attempts: i32) -> Duration {
    Duration::minutes(1_i64 << attempts.clamp(1, 16)).min(RETRY_CAP)
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobStats {
    pub succeeded: usize,
    pub failed: usize,
}

#[derive(Clone, Debug)]
pub struct JobRunner {
    pub(super) store: Store,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) charger: Charger,
    /// This worker's name in leases.
    pub(super) owner: String,
    /// How long a claim lasts without being extended.
    pub(super) lease: Duration,
    /// Outgoing webhooks, delivered with the jobs when configured.
    webhooks: Option<crate::webhooks::Webhooks>,
    /// How many jobs this runner works at once.
    workers: usize,
}

impl JobRunner {
    /// A runner with a name of its own in leases.
    pub fn new(store: Store, clock: Arc<dyn Clock>, charger: Charger) -> Self {
        JobRunner {
            store,
            clock,
            charger,
            owner: format!("worker-{}", uuid::Uuid::now_v7().simple()),
            lease: Duration::seconds(DEFAULT_LEASE.as_secs() as i64),
            webhooks: None,
            workers: 1,
        }
    }

    /// The same runner working up to `workers` jobs at once (at least one).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// The same runner delivering outgoing webhooks after each round.
    pub fn with_webhooks(mut self, webhooks: crate::webhooks::Webhooks) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    /// The same runner with claims lasting `lease` (at least three seconds:
    /// it is extended every third of it).
    pub fn with_lease(mut self, lease: std::time::Duration) -> Self {
        let lease = lease.max(std::time::Duration::from_secs(3));
        self.lease = Duration::from_std(lease).unwrap_or(self.lease);
        self
    }

    /// How often a running job's lease is extended.
    fn heartbeat(&self) -> std::time::Duration {
        (self.lease / 3).to_std().unwrap_or(std::time::Duration::from_secs(1))
    }

    /// Runs every job due at `now`, including jobs that become due while
    /// running (a renewal whose next period also already ended).
    pub async fn run_due(&self, now: DateTime<Utc>) -> Result<JobStats, AppError> {
        self.run_due_until(now, &|| false).await
    }

    /// [`Self::run_due`], stopping early once `stopping` says so: nothing
    /// more is claimed or started, the job in hand finishes, and jobs claimed
    /// but not started are given back at once, for another worker to take
    /// without waiting for their lease to run out.
    pub async fn run_due_until(&self, now: DateTime<Utc>, stopping: &Stopping<'_>) -> Result<JobStats, AppError> {
        let (applied, failed) = self.process_inbox(now, stopping).await?;
        let engine = self.charger.providers().engine();
        let (synced, unsynced) = super::engine::run_due(&self.store, engine.as_ref(), now, stopping).await?;
        let mut stats = JobStats {
            succeeded: applied + synced,
            failed: failed + unsynced,
        };
        self.run_jobs(now, stopping, &mut stats).await?;
        // Last: the events this round's jobs wrote go out in it. A receiver
        // that does not answer is its problem, retried on its schedule, not
        // a failure of this round.
        if let Some(webhooks) = &self.webhooks {
            let (ended, _retried) = webhooks.run_due(now, stopping).await?;
            stats.succeeded += ended;
        }
        Ok(stats)
    }

    /// Only the outgoing webhooks due at `now` (a commit just wrote
    /// events); returns how many deliveries ended.
    pub async fn deliver_webhooks(&self, now: DateTime<Utc>, stopping: &Stopping<'_>) -> Result<usize, AppError> {
        match &self.webhooks {
            Some(webhooks) => Ok(webhooks.run_due(now, stopping).await?.0),
            None => Ok(0),
        }
    }

    /// The subscription jobs due at `now`, into `stats`, by every worker.
    async fn run_jobs(
        &self,
        now: DateTime<Utc>,
        stopping: &Stopping<'_>,
        stats: &mut JobStats,
    ) -> Result<(), AppError> {
        let workers = (0..self.workers).map(|_| async {
            let mut worked = JobStats::default();
            let result = self.work(now, stopping, &mut worked).await;
            (worked, result)
        });
        let mut first_error = None;
        for (worked, result) in futures_util::future::join_all(workers).await {
            stats.succeeded += worked.succeeded;
            stats.failed += worked.failed;
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// One worker: claims a few due jobs at a time and runs them, until
    /// none is left or `stopping`.
    async fn work(&self, now: DateTime<Utc>, stopping: &Stopping<'_>, stats: &mut JobStats) -> Result<(), AppError> {
        loop {
            if stopping() {
                return Ok(());
            }
            let claimed = self.store.jobs().claim_due(&self.owner, now, self.lease, BATCH).await?;
            if claimed.is_empty() {
                return Ok(());
            }
            let claim_time = std::time::Instant::now();
            let mut claimed = claimed.into_iter();
            while let Some(job) = claimed.next() {
                if stopping() {
                    let unstarted: Vec<SubscriptionId> = std::iter::once(job)
                        .chain(claimed)
                        .map(|job| job.subscription_id)
                        .collect();
                    let released = self.store.jobs().unclaim(&unstarted, &self.owner).await?;
                    tracing::info!(released, "stopping: claimed jobs given back");
                    return Ok(());
                }
                let span = tracing::info_span!(
                    "job",
                    otel.name = "job subscription",
                    job.queue = "jobs",
                    subscription_id = %job.subscription_id,
                    job.attempt = job.attempts,
                );
                // Its lease runs from now, not from the claim, when the
                // jobs before it in the batch took a while (one write less
                // per job when they did not: the claim is still fresh).
                if claim_time.elapsed() >= self.heartbeat()
                    && !self
                        .store
                        .jobs()
                        .extend(&job, self.clock.now().max(now) + self.lease)
                        .await?
                {
                    tracing::info!(subscription_id = %job.subscription_id, "claim lost before the job started: another worker has it");
                    continue;
                }
                match self.run_with_heartbeat(&job, now).instrument(span).await {
                    Ok(()) => stats.succeeded += 1,
                    Err(error) => {
                        stats.failed += 1;
                        self.give_back(&job, now, &error).await?;
                    }
                }
            }
        }
    }

    /// Forgets idempotency keys older than [`KEY_RETENTION`]; returns how many.
    pub async fn forget_old_idempotency_keys(&self, now: DateTime<Utc>) -> Result<u64, AppError> {
        Ok(self.store.idempotency().delete_older_than(now - KEY_RETENTION).await?)
    }

    /// The earliest due time of a waiting job at or before `until`.
    pub async fn next_due_time(&self, until: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, AppError> {
        let job = self.store.jobs().next_due_time(until).await?;
        let delivery = self.store.inbox().next_due_time(until).await?;
        let operation = self.store.provider_outbox().next_due_time(until).await?;
        let webhook = match &self.webhooks {
            Some(webhooks) => webhooks.next_due_time(until).await?,
            None => None,
        };
        Ok(job.into_iter().chain(delivery).chain(operation).chain(webhook).min())
    }

    async fn give_back(&self, job: &DueJob, now: DateTime<Utc>, error: &AppError) -> Result<(), AppError> {
        let retry_at = now + retry_delay(job.attempts);
        if job.attempts >= FAILING_AFTER {
            tracing::error!(subscription_id = %job.subscription_id, attempts = job.attempts, %retry_at, error = %error, "job keeps failing; retrying hourly");
        } else {
            tracing::warn!(subscription_id = %job.subscription_id, attempts = job.attempts, %retry_at, error = %error, "job failed; will retry");
        }
        if !self.store.jobs().release(job, retry_at, &error.to_string()).await? {
            tracing::warn!(subscription_id = %job.subscription_id, "the failed job's claim was lost; its new holder decides");
        }
        Ok(())
    }

    /// [`Self::run`], extending the job's lease every third of it until it
    /// ends. A lease found lost is logged; the job's own writes are then
    /// refused by the fence.
    async fn run_with_heartbeat(&self, job: &DueJob, now: DateTime<Utc>) -> Result<(), AppError> {
        let work = self.run(job);
        tokio::pin!(work);
        let every = self.heartbeat();
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = heartbeat.tick() => {
                    match self.store.jobs().extend(job, self.clock.now().max(now) + self.lease).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(subscription_id = %job.subscription_id, "lease lost while working: another worker took the job"),
                        Err(error) => tracing::warn!(subscription_id = %job.subscription_id, error = %error, "could not extend the job's lease"),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_job_backs_off_to_hourly_and_is_never_parked() {
        let delays: Vec<i64> = (1..=10).map(|attempts| retry_delay(attempts).num_minutes()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60, 60, 60, 60]);
        // However long it fails, the next try is within the hour.
        assert_eq!(retry_delay(i32::MAX), Duration::hours(1));
        assert_eq!(retry_delay(0), Duration::minutes(2));
    }
}
