//! Outgoing webhooks: endpoints, and one delivery per endpoint and event.
//!
//! Deliveries are claimed like queue rows (a lease; the attempt number is
//! the claim's token) with one rule more: a delivery waits while an earlier
//! event of the same subscription to the same endpoint is still pending, so
//! a receiver gets each subscription's events in order.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};

use crate::Backend;
use crate::error::StorageError;
use crate::rows::RowContext;

/// Where events are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `we_…`.
    pub id: String,
    pub url: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    /// Only this directory's events, when set.
    pub directory_id: Option<String>,
    pub description: String,
    /// `whsec_…`.
    pub secret: String,
    /// The secret before the last rotation, still signing until its expiry.
    pub previous_secret: Option<String>,
    pub previous_secret_expire_time: Option<DateTime<Utc>>,
    /// The last published event fanned out to it.
    pub cursor: i64,
    pub create_time: DateTime<Utc>,
}

billing_domain::text_enum!(
    /// Where a delivery stands.
    DeliveryStatus {
        Pending => "PENDING",
        Delivered => "DELIVERED",
        Failed => "FAILED",
    }
);

/// One event to one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// `whd_…`.
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_sequence: i64,
    pub subscription_id: String,
    pub status: DeliveryStatus,
    /// Including a claimed one.
    pub attempts: i32,
    pub next_attempt_time: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The receiver's last HTTP status, if it answered.
    pub response_status: Option<i32>,
    pub create_time: DateTime<Utc>,
    pub finish_time: Option<DateTime<Utc>>,
}

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptResult {
    pub status: DeliveryStatus,
    pub response_status: Option<i32>,
    pub error: Option<String>,
    /// When to try again (`status` pending).
    pub retry_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

const ENDPOINT_COLUMNS: &str = "id, url, event_types, directory_id, description, secret, previous_secret, \
                                previous_secret_expire_time, cursor, create_time";
const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_sequence, subscription_id, status, attempts, \
                                next_attempt_time, last_error, response_status, create_time, finish_time";

fn endpoint_from(row: &QueryResult) -> Result<Endpoint, StorageError> {
    let id: String = row.try_get("", "id")?;
    let types: serde_json::Value = row.try_get("", "event_types")?;
    let event_types =
        serde_json::from_value(types).map_err(|error| RowContext::new("webhook_endpoints", &id).corrupt(error))?;
    Ok(Endpoint {
        id,
        url: row.try_get("", "url")?,
        event_types,
        directory_id: row.try_get("", "directory_id")?,
        description: row.try_get("", "description")?,
        secret: row.try_get("", "secret")?,
        previous_secret: row.try_get("", "previous_secret")?,
        previous_secret_expire_time: row.try_get("", "previous_secret_expire_time")?,
        cursor: row.try_get("", "cursor")?,
        create_time: row.try_get("", "create_time")?,
    })
}

fn delivery_from(row: &QueryResult) -> Result<WebhookDelivery, StorageError> {
    let id: String = row.try_get("", "id")?;
    let status: String = row.try_get("", "status")?;
    let status = DeliveryStatus::from_text(&status)
        .ok_or_else(|| RowContext::new("webhook_deliveries", &id).corrupt(format!("unknown status {status:?}")))?;
    Ok(WebhookDelivery {
        id,
        endpoint_id: row.try_get("", "endpoint_id")?,
        event_id: row.try_get("", "event_id")?,
        event_sequence: row.try_get("", "event_sequence")?,
        subscription_id: row.try_get("", "subscription_id")?,
        status,
        attempts: row.try_get("", "attempts")?,
        next_attempt_time: row.try_get("", "next_attempt_time")?,
        last_error: row.try_get("", "last_error")?,
        response_status: row.try_get("", "response_status")?,
        create_time: row.try_get("", "create_time")?,
        finish_time: row.try_get("", "finish_time")?,
    })
}

/// Endpoints and deliveries, on a connection or inside a transaction.
pub struct WebhookStore<'a, C> {
    conn: &'a C,
    backend: Backend,
}

impl<'a, C: ConnectionTrait> WebhookStore<'a, C> {
    pub(crate) fn new(conn: &'a C, backend: Backend) -> Self {
        WebhookStore { conn, backend }
    }

    fn statement(&self, sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
        self.backend.statement(sql, values)
    }

    async fn rows(&self, sql: &str, values: impl IntoIterator<Item = Value>) -> Result<Vec<QueryResult>, StorageError> {
        Ok(self.conn.query_all_raw(self.statement(sql, values)).await?)
    }

    async fn execute(&self, sql: &str, values: impl IntoIterator<Item = Value>) -> Result<u64, StorageError> {
        Ok(self
            .conn
            .execute_raw(self.statement(sql, values))
            .await?
            .rows_affected())
    }

    pub async fn insert_endpoint(&self, endpoint: &Endpoint) -> Result<(), StorageError> {
        self.execute(
            &format!(
                "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            [
                endpoint.id.clone().into(),
                endpoint.url.clone().into(),
                serde_json::json!(endpoint.event_types).into(),
                endpoint.directory_id.clone().into(),
                endpoint.description.clone().into(),
                endpoint.secret.clone().into(),
                endpoint.previous_secret.clone().into(),
                endpoint.previous_secret_expire_time.into(),
                endpoint.cursor.into(),
                endpoint.create_time.into(),
            ],
        )
        .await?;
        Ok(())
    }

    pub async fn get_endpoint(&self, id: &str) -> Result<Option<Endpoint>, StorageError> {
        self.rows(
            &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"),
            [id.into()],
        )
        .await?
        .first()
        .map(endpoint_from)
        .transpose()
    }

    /// Endpoints by id after `after`, of one directory when `directory_id`
    /// is set.
    pub async fn list_endpoints(
        &self,
        directory_id: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Endpoint>, StorageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.rows(
            &format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints \
                 WHERE ($1 IS NULL OR directory_id = $1) AND id > $2 ORDER BY id LIMIT $3"
            ),
            [
                directory_id.map(str::to_owned).into(),
                after.unwrap_or("").into(),
                limit.into(),
            ],
        )
        .await?
        .iter()
        .map(endpoint_from)
        .collect()
    }

    /// Deletes an endpoint and its deliveries; `false` if it did not exist.
    pub async fn delete_endpoint(&self, id: &str) -> Result<bool, StorageError> {
        self.execute("DELETE FROM webhook_deliveries WHERE endpoint_id = $1", [id.into()])
            .await?;
        Ok(self
            .execute("DELETE FROM webhook_endpoints WHERE id = $1", [id.into()])
            .await?
            == 1)
    }

    /// A new signing secret; the current one keeps signing until `until`.
    pub async fn rotate_secret(&self, id: &str, secret: &str, until: DateTime<Utc>) -> Result<bool, StorageError> {
        Ok(self
            .execute(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expire_time = $1, \
                 secret = $2 WHERE id = $3",
                [until.into(), secret.into(), id.into()],
            )
            .await?
            == 1)
    }

    /// Adds a delivery per event for `endpoint`, events after its cursor up
    /// to `through`, and moves the cursor there (call it in a transaction).
    /// `events` are `(id, sequence, subscription_id)`.
    pub async fn fan_out(
        &self,
        endpoint: &Endpoint,
        events: &[(String, i64, String)],
        through: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let moved = self
            .execute(
                "UPDATE webhook_endpoints SET cursor = $1 WHERE id = $2 AND cursor = $3",
                [through.into(), endpoint.id.clone().into(), endpoint.cursor.into()],
            )
            .await?;
        if moved == 0 {
            // Another worker fanned this range out already.
            return Ok(());
        }
        for (event_id, sequence, subscription_id) in events {
            self.execute(
                "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_sequence, subscription_id, \
                     status, attempts, next_attempt_time, create_time) \
                     VALUES ($1, $2, $3, $4, $5, 'PENDING', 0, $6, $6) ON CONFLICT (endpoint_id, event_id) DO NOTHING",
                [
                    format!("whd_{}", uuid::Uuid::now_v7().simple()).into(),
                    endpoint.id.clone().into(),
                    event_id.clone().into(),
                    (*sequence).into(),
                    subscription_id.clone().into(),
                    now.into(),
                ],
            )
            .await?;
        }
        Ok(())
    }

    /// Sends the endpoint's deliveries of `event_ids` again from now (new
    /// ones for events it never had); returns how many.
    pub async fn redeliver(
        &self,
        endpoint_id: &str,
        events: &[(String, i64, String)],
        now: DateTime<Utc>,
    ) -> Result<u64, StorageError> {
        let mut count = 0;
        for (event_id, sequence, subscription_id) in events {
            let reset = self
                .execute(
                    "UPDATE webhook_deliveries SET status = 'PENDING', attempts = 0, next_attempt_time = $1, \
                     lease_expires = NULL, finish_time = NULL WHERE endpoint_id = $2 AND event_id = $3",
                    [now.into(), endpoint_id.into(), event_id.clone().into()],
                )
                .await?;
            if reset == 0 {
                self.execute(
                        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_sequence, subscription_id, \
                         status, attempts, next_attempt_time, create_time) VALUES ($1, $2, $3, $4, $5, 'PENDING', 0, $6, $6)",
                        [
                            format!("whd_{}", uuid::Uuid::now_v7().simple()).into(),
                            endpoint_id.into(),
                            event_id.clone().into(),
                            (*sequence).into(),
                            subscription_id.clone().into(),
                            now.into(),
                        ],
                    )
                    .await?;
            }
            count += 1;
        }
        Ok(count)
    }

    /// Leases up to `limit` due deliveries, each the earliest pending one of
    /// its endpoint and subscription, counting an attempt for each.
    pub async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<WebhookDelivery>, StorageError> {
        let lock = self.backend.skip_locked();
        let lease_expires = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(1));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "UPDATE webhook_deliveries SET lease_expires = $1, attempts = attempts + 1 \
             WHERE id IN ( \
               SELECT d.id FROM webhook_deliveries d \
               WHERE d.status = 'PENDING' AND d.next_attempt_time <= $2 \
                 AND (d.lease_expires IS NULL OR d.lease_expires <= $2) \
                 AND NOT EXISTS ( \
                   SELECT 1 FROM webhook_deliveries e \
                   WHERE e.endpoint_id = d.endpoint_id AND e.subscription_id = d.subscription_id \
                     AND e.event_sequence < d.event_sequence AND e.status = 'PENDING') \
               ORDER BY d.event_sequence LIMIT $3 {lock}) \
             RETURNING {DELIVERY_COLUMNS}"
        );
        let mut claimed = self
            .rows(&sql, [lease_expires.into(), now.into(), limit.into()])
            .await?
            .iter()
            .map(delivery_from)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|delivery| delivery.event_sequence);
        Ok(claimed)
    }

    /// Records the attempt `attempts` of a delivery; `false` (nothing
    /// written) when it was claimed again since.
    pub async fn record_attempt(&self, id: &str, attempts: i32, result: &AttemptResult) -> Result<bool, StorageError> {
        let finished = (result.status != DeliveryStatus::Pending).then_some(result.now);
        Ok(self
            .execute(
                "UPDATE webhook_deliveries SET status = $1, response_status = $2, last_error = $3, \
                 next_attempt_time = $4, finish_time = $5, lease_expires = NULL \
                 WHERE id = $6 AND attempts = $7 AND status = 'PENDING'",
                [
                    result.status.as_str().into(),
                    result.response_status.into(),
                    result.error.clone().into(),
                    result.retry_at.into(),
                    finished.into(),
                    id.into(),
                    attempts.into(),
                ],
            )
            .await?
            == 1)
    }

    /// An endpoint's deliveries by id after `after`, of one status if set.
    pub async fn list_deliveries(
        &self,
        endpoint_id: &str,
        status: Option<DeliveryStatus>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<WebhookDelivery>, StorageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.rows(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                 WHERE endpoint_id = $1 AND ($2 IS NULL OR status = $2) AND id > $3 ORDER BY id LIMIT $4"
            ),
            [
                endpoint_id.into(),
                status.map(|status| status.as_str().to_owned()).into(),
                after.unwrap_or("").into(),
                limit.into(),
            ],
        )
        .await?
        .iter()
        .map(delivery_from)
        .collect()
    }

    /// The lowest endpoint cursor: how far every endpoint has been fanned
    /// out to (`None` without endpoints).
    pub async fn lowest_cursor(&self) -> Result<Option<i64>, StorageError> {
        let rows = self
            .rows("SELECT MIN(cursor) AS lowest FROM webhook_endpoints", [])
            .await?;
        Ok(match rows.first() {
            Some(row) => row.try_get::<Option<i64>>("", "lowest")?,
            None => None,
        })
    }

    /// The earliest next attempt, at or before `until`, of a pending
    /// delivery that may go (not waiting behind an earlier one of its
    /// subscription).
    pub async fn next_delivery_time(&self, until: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StorageError> {
        let rows = self
            .rows(
                "SELECT MIN(d.next_attempt_time) AS due FROM webhook_deliveries d \
                 WHERE d.status = 'PENDING' AND d.next_attempt_time <= $1 \
                   AND NOT EXISTS ( \
                     SELECT 1 FROM webhook_deliveries e \
                     WHERE e.endpoint_id = d.endpoint_id AND e.subscription_id = d.subscription_id \
                       AND e.event_sequence < d.event_sequence AND e.status = 'PENDING')",
                [until.into()],
            )
            .await?;
        Ok(match rows.first() {
            Some(row) => row.try_get::<Option<DateTime<Utc>>>("", "due")?,
            None => None,
        })
    }

    /// Deletes finished deliveries and published events older than
    /// `before`; returns how many rows went.
    pub async fn prune_events(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let deliveries = self
            .execute(
                "DELETE FROM webhook_deliveries WHERE status <> 'PENDING' AND create_time < $1",
                [before.into()],
            )
            .await?;
        // An event stays while an endpoint has not fanned it out or still
        // owes it, and the newest stays always (its number is where the
        // next one continues).
        let events = self
            .execute(
                "DELETE FROM outbox_events WHERE published_sequence IS NOT NULL AND occur_time < $1 \
                 AND published_sequence <= COALESCE((SELECT MIN(cursor) FROM webhook_endpoints), published_sequence) \
                 AND published_sequence < (SELECT MAX(published_sequence) FROM outbox_events) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
                   WHERE d.event_id = outbox_events.id AND d.status = 'PENDING')",
                [before.into()],
            )
            .await?;
        Ok(deliveries + events)
    }
}
