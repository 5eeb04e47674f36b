//! Draining a queue table (the webhook inbox, the provider outbox): claim
//! what is due under a lease, handle each row, and end it done, or retry it
//! with backoff (1, 2, 4, … minutes), or leave it dead once its attempts run
//! out or the failure is one retrying cannot help.

use billing_storage::{Delivery, DueJob, InboxStatus, Queue, Store, Tx};
use chrono::{DateTime, Duration, Utc};
use tracing::Instrument;

use crate::AppError;

/// Whether the worker is stopping (shutdown began): checked before each
/// claim and each row.
pub type Stopping<'a> = dyn Fn() -> bool + Send + Sync + 'a;

/// Rows claimed per round trip.
const BATCH: u64 = 32;
/// How long a claimed row is a worker's.
const LEASE: std::time::Duration = std::time::Duration::from_secs(300);

/// What a worker holds while it works: a subscription's job or a queue
/// row. Every transaction it writes first checks, and locks, that it still
/// holds it: a worker whose lease ran out and was taken over writes
/// nothing.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lease<'a> {
    Job(&'a DueJob),
    Row { queue: Queue, id: &'a str, attempts: i32 },
}

impl<'a> Lease<'a> {
    /// The lease of a claimed row of `queue`.
    pub(crate) fn row(queue: Queue, row: &'a Delivery) -> Self {
        Lease::Row {
            queue,
            id: &row.id,
            attempts: row.attempts,
        }
    }

    /// Whether it still holds, inside `tx` (and until `tx` ends).
    pub(crate) async fn holds(&self, tx: &Tx) -> Result<bool, AppError> {
        let held = match self {
            Lease::Job(job) => tx.jobs().fence(job).await?,
            Lease::Row { queue, id, attempts } => tx.queue(*queue).fence(id, *attempts).await?,
        };
        if !held {
            tracing::warn!(lease = ?self, "lease lost: another worker has the work; nothing written");
        }
        Ok(held)
    }
}

/// How handling a row failed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: String,
    /// Retrying cannot help (a refusal, an unreadable row).
    pub permanent: bool,
}

impl Failure {
    pub fn transient(error: impl ToString) -> Self {
        Failure {
            error: error.to_string(),
            permanent: false,
        }
    }
}

/// Handles every row of `queue` due at `now`; returns (ended, failed).
/// Once `stopping` says so, no row is claimed or started any more, and rows
/// claimed but not started are given back.
/// [`LEASE`] on the service clock.
fn lease() -> Duration {
    Duration::from_std(LEASE).unwrap_or(Duration::minutes(5))
}

/// Runs `work`, extending the row's lease every third of [`LEASE`] until it
/// ends, so a slow provider call does not let another worker take the row.
async fn with_heartbeat<T>(
    store: &Store,
    queue: Queue,
    id: &str,
    attempts: i32,
    now: DateTime<Utc>,
    work: impl Future<Output = T>,
) -> T {
    tokio::pin!(work);
    let every = LEASE / 3;
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut beats = 0_i32;
    loop {
        tokio::select! {
            result = &mut work => return result,
            _ = heartbeat.tick() => {
                beats += 1;
                let until = now + lease() * (beats + 1);
                match store.queue(queue).extend(id, attempts, until).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(?queue, row = %id, "lease lost while working: another worker took the row"),
                    Err(error) => tracing::warn!(?queue, row = %id, error = %error, "could not extend the row's lease"),
                }
            }
        }
    }
}

pub(crate) async fn drain<F, Fut>(
    store: &Store,
    queue: Queue,
    max_attempts: i32,
    now: DateTime<Utc>,
    stopping: &Stopping<'_>,
    mut handle: F,
) -> Result<(usize, usize), AppError>
where
    F: FnMut(Delivery) -> Fut,
    Fut: Future<Output = Result<(InboxStatus, String), Failure>>,
{
    let (mut ended, mut failed) = (0, 0);
    loop {
        if stopping() {
            return Ok((ended, failed));
        }
        let claimed = store.queue(queue).claim_due(now, LEASE, BATCH).await?;
        if claimed.is_empty() {
            return Ok((ended, failed));
        }
        let mut claimed = claimed.into_iter();
        while let Some(row) = claimed.next() {
            if stopping() {
                let unstarted: Vec<String> = std::iter::once(row).chain(claimed).map(|row| row.id).collect();
                store.queue(queue).unclaim(&unstarted).await?;
                tracing::info!(?queue, released = unstarted.len(), "stopping: claimed rows given back");
                return Ok((ended, failed));
            }
            let (id, attempts) = (row.id.clone(), row.attempts);
            // Its lease runs from now, not from the claim: the rows before
            // it in the batch may have taken a while.
            if !store.queue(queue).extend(&id, attempts, now + lease()).await? {
                tracing::info!(?queue, row = %id, "claim lost before the row started: another worker has it");
                continue;
            }
            // Each row is a trace of its own, with its database and
            // provider work as children.
            let span = tracing::info_span!("job", otel.name = format!("job {}", queue.table()), job.queue = queue.table(), job.id = %id, job.attempt = attempts);
            let handled = with_heartbeat(store, queue, &id, attempts, now, handle(row)).instrument(span);
            match handled.await {
                Ok((status, note)) => {
                    if store.queue(queue).finish(&id, attempts, status, &note, now).await? {
                        tracing::info!(?queue, row = %id, status = status.as_str(), note, "queue row handled");
                    } else {
                        tracing::warn!(?queue, row = %id, "queue row handled, but its claim was lost meanwhile: its new holder ends it");
                    }
                    ended += 1;
                }
                Err(failure) => {
                    let retry_at = (!failure.permanent && attempts < max_attempts)
                        .then(|| now + Duration::minutes(1_i64 << attempts.clamp(0, 16)));
                    if retry_at.is_some() {
                        tracing::warn!(?queue, row = %id, attempts, error = %failure.error, "queue row failed; will retry");
                    } else {
                        tracing::error!(?queue, row = %id, attempts, error = %failure.error, "queue row failed for good; dead");
                    }
                    if !store.queue(queue).fail(&id, attempts, &failure.error, retry_at).await? {
                        tracing::warn!(?queue, row = %id, "the failed row's claim was lost meanwhile: its new holder decides");
                    }
                    failed += 1;
                }
            }
        }
    }
}
