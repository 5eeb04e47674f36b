//! Background work that keeps failing, for operators to see and retry:
//! subscription jobs that failed and wait for their next try, and webhook
//! deliveries and provider operations that are retrying or dead.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, Value};

use crate::Store;
use crate::error::StorageError;
use crate::inbox::Queue;

/// Where failing work lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WorkKind {
    Job,
    WebhookDelivery,
    ProviderOperation,
}

impl WorkKind {
    /// In listing order.
    pub const ALL: [WorkKind; 3] = [WorkKind::Job, WorkKind::WebhookDelivery, WorkKind::ProviderOperation];

    fn queue(self) -> Option<Queue> {
        match self {
            WorkKind::Job => None,
            WorkKind::WebhookDelivery => Some(Queue::WebhookInbox),
            WorkKind::ProviderOperation => Some(Queue::ProviderOutbox),
        }
    }
}

/// One piece of failing work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailingWork {
    pub kind: WorkKind,
    /// A job's subscription id; a delivery's or operation's row id.
    pub id: String,
    /// The subscription it is about, when known.
    pub subscription_id: Option<String>,
    /// Failed every attempt and waits for an operator.
    pub dead: bool,
    pub attempts: i32,
    pub last_error: String,
    /// When it is tried next; `None` when dead.
    pub next_attempt_time: Option<DateTime<Utc>>,
}

/// Jobs that failed their last run (a successful run reschedules them and
/// clears the error).
const FAILING_JOBS: &str = "last_error <> ''";
/// Queue rows that are dead, or pending after a failure.
const FAILING_ROWS: &str = "(status = 'DEAD' OR (status = 'PENDING' AND last_error IS NOT NULL))";

impl Store {
    /// Up to `limit` failing items of `kind` with an id after `after`, by id.
    pub async fn failing_work(
        &self,
        kind: WorkKind,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<FailingWork>, StorageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let after = after.unwrap_or("");
        let sql = match kind.queue() {
            None => format!(
                "SELECT subscription_id AS id, subscription_id, attempts, due_time AS next_attempt_time, \
                 last_error, 'PENDING' AS status FROM jobs WHERE {FAILING_JOBS} AND subscription_id > $1 \
                 ORDER BY subscription_id LIMIT $2"
            ),
            Some(queue) => format!(
                "SELECT id, {subscription} AS subscription_id, attempts, next_attempt_time, \
                 COALESCE(last_error, '') AS last_error, status FROM {table} \
                 WHERE {FAILING_ROWS} AND id > $1 ORDER BY id LIMIT $2",
                table = queue.table(),
                subscription = subscription_column(queue),
            ),
        };
        let statement = self.backend.statement(sql, [after.into(), limit.into()]);
        let rows = self.db.query_all_raw(statement).await?;
        rows.iter().map(|row| failing_from_row(kind, row)).collect()
    }

    /// Makes failing work due at `now` with its attempts counted from zero,
    /// unless a worker holds it right now. Returns it as it then stands, or
    /// `None` when it is not failing.
    pub async fn retry_work(
        &self,
        kind: WorkKind,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<FailingWork>, StorageError> {
        let backend = self.backend;
        let (update, select) = match kind.queue() {
            None => (
                format!(
                    "UPDATE jobs SET due_time = $1, attempts = 0, lease_owner = NULL, lease_expires = NULL, lease_token = NULL \
                     WHERE subscription_id = $2 AND {FAILING_JOBS} \
                       AND (lease_expires IS NULL OR lease_expires <= $1)"
                ),
                format!(
                    "SELECT subscription_id AS id, subscription_id, attempts, due_time AS next_attempt_time, \
                     last_error, 'PENDING' AS status FROM jobs WHERE subscription_id = $1 AND {FAILING_JOBS}"
                ),
            ),
            Some(queue) => (
                format!(
                    "UPDATE {table} SET status = 'PENDING', attempts = 0, next_attempt_time = $1 \
                     WHERE id = $2 AND {FAILING_ROWS} AND (lease_expires IS NULL OR lease_expires <= $1)",
                    table = queue.table()
                ),
                format!(
                    "SELECT id, {subscription} AS subscription_id, attempts, next_attempt_time, \
                     COALESCE(last_error, '') AS last_error, status FROM {table} WHERE id = $1 AND {FAILING_ROWS}",
                    table = queue.table(),
                    subscription = subscription_column(queue),
                ),
            ),
        };
        let values: [Value; 2] = [now.into(), id.into()];
        self.db.execute_raw(backend.statement(update, values)).await?;
        let row = self.db.query_one_raw(backend.statement(select, [id.into()])).await?;
        row.map(|row| failing_from_row(kind, &row)).transpose()
    }
}

/// The subscription a queue row is about: an operation's `event_id`; a
/// webhook delivery does not say until it is applied.
fn subscription_column(queue: Queue) -> &'static str {
    match queue {
        Queue::ProviderOutbox => "event_id",
        Queue::WebhookInbox => "NULL",
    }
}

fn failing_from_row(kind: WorkKind, row: &QueryResult) -> Result<FailingWork, StorageError> {
    let status: String = row.try_get("", "status")?;
    let dead = status == "DEAD";
    Ok(FailingWork {
        kind,
        id: row.try_get("", "id")?,
        subscription_id: row.try_get("", "subscription_id")?,
        dead,
        attempts: row.try_get("", "attempts")?,
        last_error: row.try_get("", "last_error")?,
        next_attempt_time: if dead {
            None
        } else {
            row.try_get("", "next_attempt_time")?
        },
    })
}
