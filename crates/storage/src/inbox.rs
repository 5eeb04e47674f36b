//! Queue tables: the inbound webhook inbox (verified deliveries kept raw,
//! deduplicated by provider event id) and the provider outbox, both claimed
//! by workers under a lease, retried, and ended done or dead.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use crate::Backend;
use crate::error::StorageError;

billing_domain::text_enum!(
    /// Where a delivery stands.
    InboxStatus {
        /// Stored, not yet processed (or to be retried).
        Pending => "PENDING",
        /// Its effect was applied.
        Processed => "PROCESSED",
        /// Nothing to do: a duplicate effect, a stale event, a type not acted on.
        Ignored => "IGNORED",
        /// Processing failed every attempt; kept for people to look at.
        Dead => "DEAD",
    }
);

/// A delivery (or operation) to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    /// The row's id; `None`: `{provider}:{event_id}` (a delivery).
    pub id: Option<String>,
    pub provider: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub received_time: DateTime<Utc>,
}

impl NewDelivery {
    fn id(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.provider, self.event_id))
    }
}

/// A delivery claimed for processing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub provider: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub received_time: DateTime<Utc>,
    /// Including this one.
    pub attempts: i32,
}

/// A delivery as stored, for tests and operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDelivery {
    pub id: String,
    pub status: String,
    pub attempts: i32,
    pub outcome: Option<String>,
    pub last_error: Option<String>,
}

/// The queue tables, which share their columns and their handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Verified provider webhooks, keyed by provider and event id.
    WebhookInbox,
    /// Operations owed to a provider that is the billing engine; `event_id`
    /// is the subscription and `event_type` the operation.
    ProviderOutbox,
}

impl Queue {
    /// The table it lives in: `webhook_inbox`, `provider_outbox`.
    pub fn table(self) -> &'static str {
        match self {
            Queue::WebhookInbox => "webhook_inbox",
            Queue::ProviderOutbox => "provider_outbox",
        }
    }
}

/// One queue table (see [`Queue`]).
pub struct InboxStore<'a, C> {
    conn: &'a C,
    backend: Backend,
    table: &'static str,
}

impl<'a, C: ConnectionTrait> InboxStore<'a, C> {
    pub(crate) fn new(conn: &'a C, backend: Backend, queue: Queue) -> Self {
        InboxStore {
            conn,
            backend,
            table: queue.table(),
        }
    }

    /// Stores a delivery unless its event is there already; `true` if new.
    pub async fn insert(&self, delivery: &NewDelivery) -> Result<bool, StorageError> {
        let statement = self.backend.statement(
            format!(
                "INSERT INTO {} (id, provider, event_id, event_type, payload, received_time, status, \
                 attempts, next_attempt_time) VALUES ($1, $2, $3, $4, $5, $6, 'PENDING', 0, $6) \
                 ON CONFLICT (id) DO NOTHING",
                self.table
            ),
            [
                delivery.id().into(),
                delivery.provider.clone().into(),
                delivery.event_id.clone().into(),
                delivery.event_type.clone().into(),
                delivery.payload.clone().into(),
                delivery.received_time.into(),
            ],
        );
        Ok(self.conn.execute_raw(statement).await?.rows_affected() == 1)
    }

    /// Leases up to `limit` pending deliveries due at `now`, oldest first,
    /// counting an attempt for each.
    pub async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<Delivery>, StorageError> {
        let lock = self.backend.skip_locked();
        let lease_expires = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
        let sql = format!(
            "UPDATE {table} SET lease_expires = $1, attempts = attempts + 1 \
             WHERE id IN ( \
               SELECT id FROM {table} \
               WHERE status = 'PENDING' AND next_attempt_time <= $2 \
                 AND (lease_expires IS NULL OR lease_expires <= $2) \
               ORDER BY received_time, id LIMIT $3 {lock}) \
             RETURNING id, provider, event_id, event_type, payload, received_time, attempts",
            table = self.table
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = self
            .backend
            .statement(sql, [lease_expires.into(), now.into(), limit.into()]);
        let mut claimed = self
            .conn
            .query_all_raw(statement)
            .await?
            .into_iter()
            .map(|row| {
                Ok(Delivery {
                    id: row.try_get("", "id")?,
                    provider: row.try_get("", "provider")?,
                    event_id: row.try_get("", "event_id")?,
                    event_type: row.try_get("", "event_type")?,
                    payload: row.try_get("", "payload")?,
                    received_time: row.try_get("", "received_time")?,
                    attempts: row.try_get("", "attempts")?,
                })
            })
            .collect::<Result<Vec<Delivery>, sea_orm::DbErr>>()?;
        claimed.sort_by(|a, b| (a.received_time, &a.id).cmp(&(b.received_time, &b.id)));
        Ok(claimed)
    }

    /// Ends the delivery claimed with `attempts`: processed or ignored, with
    /// what happened; `false` (nothing written) when it was claimed again
    /// since or has ended.
    pub async fn finish(
        &self,
        id: &str,
        attempts: i32,
        status: InboxStatus,
        outcome: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let statement = self.backend.statement(
            format!(
                "UPDATE {} SET status = $1, outcome = $2, processed_time = $3, lease_expires = NULL, \
                 next_attempt_time = NULL WHERE id = $4 AND attempts = $5 AND status = 'PENDING'",
                self.table
            ),
            [
                status.as_str().into(),
                outcome.into(),
                now.into(),
                id.into(),
                attempts.into(),
            ],
        );
        Ok(self.conn.execute_raw(statement).await?.rows_affected() == 1)
    }

    /// Inside the transaction that writes for the row claimed with
    /// `attempts`: whether that claim still holds it, locking the row until
    /// the transaction ends (so no one can take it over before the commit).
    pub async fn fence(&self, id: &str, attempts: i32) -> Result<bool, StorageError> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE",
            Backend::Sqlite => "",
        };
        let statement = self.backend.statement(
            format!(
                "SELECT 1 AS held FROM {} WHERE id = $1 AND attempts = $2 AND status = 'PENDING' {lock}",
                self.table
            ),
            [id.into(), attempts.into()],
        );
        Ok(self.conn.query_one_raw(statement).await?.is_some())
    }

    /// Extends the lease of the row claimed with `attempts` to
    /// `lease_until`; `false` when it was claimed again since (its lease
    /// ran out) or has ended.
    pub async fn extend(&self, id: &str, attempts: i32, lease_until: DateTime<Utc>) -> Result<bool, StorageError> {
        let statement = self.backend.statement(
            format!(
                "UPDATE {} SET lease_expires = $1 WHERE id = $2 AND attempts = $3 AND status = 'PENDING'",
                self.table
            ),
            [lease_until.into(), id.into(), attempts.into()],
        );
        Ok(self.conn.execute_raw(statement).await?.rows_affected() == 1)
    }

    /// Gives back rows claimed but never started (a worker that is
    /// stopping): free to claim at once, their claim not counted as an
    /// attempt.
    pub async fn unclaim(&self, ids: &[String]) -> Result<(), StorageError> {
        for id in ids {
            let statement = self.backend.statement(
                format!(
                    "UPDATE {} SET lease_expires = NULL, attempts = attempts - 1 WHERE id = $1 AND status = 'PENDING'",
                    self.table
                ),
                [id.as_str().into()],
            );
            self.conn.execute_raw(statement).await?;
        }
        Ok(())
    }

    /// The failed attempt `attempts`: retried at `retry_at`, or dead when
    /// `None`; `false` (nothing written) when the row was claimed again
    /// since or has ended.
    pub async fn fail(
        &self,
        id: &str,
        attempts: i32,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StorageError> {
        let status = if retry_at.is_some() {
            InboxStatus::Pending
        } else {
            InboxStatus::Dead
        };
        let statement = self.backend.statement(
            format!(
                "UPDATE {} SET status = $1, last_error = $2, next_attempt_time = $3, lease_expires = NULL \
                 WHERE id = $4 AND attempts = $5 AND status = 'PENDING'",
                self.table
            ),
            [
                status.as_str().into(),
                error.into(),
                retry_at.into(),
                id.into(),
                attempts.into(),
            ],
        );
        Ok(self.conn.execute_raw(statement).await?.rows_affected() == 1)
    }

    /// The earliest time a pending delivery is due, at or before `until`.
    pub async fn next_due_time(&self, until: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StorageError> {
        let statement = self.backend.statement(
            format!(
                "SELECT next_attempt_time AS due FROM {} \
                 WHERE status = 'PENDING' AND next_attempt_time <= $1 ORDER BY next_attempt_time LIMIT 1",
                self.table
            ),
            [until.into()],
        );
        let row = self.conn.query_one_raw(statement).await?;
        Ok(match row {
            Some(row) => Some(row.try_get::<DateTime<Utc>>("", "due")?),
            None => None,
        })
    }

    /// Every delivery of a provider, oldest first.
    pub async fn deliveries(&self, provider: &str) -> Result<Vec<StoredDelivery>, StorageError> {
        let statement = self.backend.statement(
            format!(
                "SELECT id, status, attempts, outcome, last_error FROM {} WHERE provider = $1 \
                 ORDER BY received_time, id",
                self.table
            ),
            [provider.into()],
        );
        let rows = self.conn.query_all_raw(statement).await?;
        rows.into_iter()
            .map(|row| {
                Ok(StoredDelivery {
                    id: row.try_get("", "id")?,
                    status: row.try_get("", "status")?,
                    attempts: row.try_get("", "attempts")?,
                    outcome: row.try_get("", "outcome")?,
                    last_error: row.try_get("", "last_error")?,
                })
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()
            .map_err(StorageError::from)
    }
}
