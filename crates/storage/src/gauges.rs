//! Counts the metrics sample: how many subscriptions stand where, and how
//! much queued work waits. Read-only, a few grouped queries on indexed or
//! small tables.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Statement};

use crate::Store;
use crate::error::StorageError;
use crate::inbox::Queue;

/// One sample of the service's state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// `(state, payment_status, count)` for every pair that has rows.
    pub subscriptions: Vec<(String, String, i64)>,
    /// Jobs due and free to claim.
    pub jobs_due: i64,
    /// Jobs a worker holds under a lease that has not run out.
    pub jobs_leased: i64,
    /// Jobs whose last run failed (retried, at most an hour apart).
    pub jobs_failing: i64,
    /// The webhook inbox and the provider outbox.
    pub queues: Vec<QueueGauge>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueGauge {
    /// `webhook_inbox` or `provider_outbox`.
    pub queue: &'static str,
    /// Rows still to be processed (first attempts and retries).
    pub pending: i64,
    /// When the longest-waiting pending row was due.
    pub oldest_due: Option<DateTime<Utc>>,
    /// Rows that failed every attempt and wait for an operator.
    pub dead: i64,
}

impl Store {
    /// Samples [`Gauges`] as of `now`.
    pub async fn gauges(&self, now: DateTime<Utc>) -> Result<Gauges, StorageError> {
        let backend = self.backend;
        let db = &self.db;
        let rows = db
            .query_all_raw(Statement::from_string(
                backend.dialect(),
                "SELECT state, payment_status, COUNT(*) AS n FROM subscriptions GROUP BY state, payment_status",
            ))
            .await?;
        let subscriptions = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<String>("", "state")?,
                    row.try_get::<String>("", "payment_status")?,
                    row.try_get::<i64>("", "n")?,
                ))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let jobs = db
            .query_one_raw(backend.statement(
                "SELECT \
                   CAST(COALESCE(SUM(CASE WHEN due_time <= $1 AND (lease_expires IS NULL OR lease_expires <= $1) \
                     THEN 1 ELSE 0 END), 0) AS BIGINT) AS due, \
                   CAST(COALESCE(SUM(CASE WHEN lease_expires > $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS leased, \
                   CAST(COALESCE(SUM(CASE WHEN last_error <> '' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failing \
                 FROM jobs",
                [now.into()],
            ))
            .await?;
        let (jobs_due, jobs_leased, jobs_failing) = match jobs {
            Some(row) => (
                row.try_get::<i64>("", "due")?,
                row.try_get::<i64>("", "leased")?,
                row.try_get::<i64>("", "failing")?,
            ),
            None => (0, 0, 0),
        };
        let mut queues = Vec::new();
        for queue in [Queue::WebhookInbox, Queue::ProviderOutbox] {
            let row = db
                .query_one_raw(Statement::from_string(
                    backend.dialect(),
                    format!(
                        "SELECT \
                           CAST(COALESCE(SUM(CASE WHEN status = 'PENDING' THEN 1 ELSE 0 END), 0) AS BIGINT) AS n, \
                           MIN(CASE WHEN status = 'PENDING' THEN next_attempt_time END) AS oldest, \
                           CAST(COALESCE(SUM(CASE WHEN status = 'DEAD' THEN 1 ELSE 0 END), 0) AS BIGINT) AS dead \
                         FROM {}",
                        queue.table()
                    ),
                ))
                .await?;
            let (pending, oldest_due, dead) = match row {
                Some(row) => (
                    row.try_get::<i64>("", "n")?,
                    row.try_get::<Option<DateTime<Utc>>>("", "oldest")?,
                    row.try_get::<i64>("", "dead")?,
                ),
                None => (0, None, 0),
            };
            queues.push(QueueGauge {
                queue: queue.table(),
                pending,
                oldest_due,
                dead,
            });
        }
        Ok(Gauges {
            subscriptions,
            jobs_due,
            jobs_leased,
            jobs_failing,
            queues,
        })
    }
}
