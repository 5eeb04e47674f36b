//! Sending: each round fans newly published events out to the endpoints
//! that want them (a cursor per endpoint over the gap-free stream), then
//! claims due deliveries under a lease and sends them, signed.

use billing_storage::{AttemptResult, DeliveryStatus, Endpoint, EventFilter, PublishedEvent, WebhookDelivery};
use chrono::{DateTime, Utc};

use super::{BATCH, RETRY_SCHEDULE, SendResult, WebhookRequest, Webhooks, sign};
use crate::AppError;
use crate::queue::Stopping;

impl Webhooks {
    /// Fans newly published events out, then sends what is due at `now`;
    /// returns (delivered or finally failed, retried).
    pub async fn run_due(&self, now: DateTime<Utc>, stopping: &Stopping<'_>) -> Result<(usize, usize), AppError> {
        self.fan_out(now).await?;
        self.prune(now).await?;
        let (mut ended, mut retried) = (0, 0);
        loop {
            if stopping() {
                return Ok((ended, retried));
            }
            let claimed = self.store.webhooks().claim_deliveries(now, self.lease, BATCH).await?;
            if claimed.is_empty() {
                return Ok((ended, retried));
            }
            // A batch holds at most one delivery per endpoint and
            // subscription (the claim's rule), so its deliveries go out side
            // by side without breaking any order.
            let mut sending = tokio::task::JoinSet::new();
            for delivery in claimed {
                let webhooks = self.clone();
                sending.spawn(async move { webhooks.deliver(&delivery, now).await });
            }
            while let Some(sent) = sending.join_next().await {
                let sent = sent.map_err(|error| AppError::fault(format!("a webhook send panicked: {error}")))?;
                match sent? {
                    DeliveryStatus::Pending => retried += 1,
                    DeliveryStatus::Delivered | DeliveryStatus::Failed => ended += 1,
                }
            }
        }
    }

    async fn fan_out(&self, now: DateTime<Utc>) -> Result<(), AppError> {
        if self.store.webhooks().lowest_cursor().await?.is_none() {
            // No endpoints: nothing to fan out.
            return Ok(());
        }
        self.store.publish_events(1_000).await?;
        let last = self.store.last_published_sequence().await?;
        let mut after = None;
        loop {
            let endpoints = self
                .store
                .webhooks()
                .list_endpoints(None, after.as_deref(), 100)
                .await?;
            let Some(tail) = endpoints.last() else {
                return Ok(());
            };
            after = Some(tail.id.clone());
            for endpoint in endpoints.iter().filter(|endpoint| endpoint.cursor < last) {
                let filter = EventFilter {
                    directory_id: endpoint.directory_id.clone().unwrap_or_default(),
                    types: endpoint.event_types.clone(),
                    ..EventFilter::default()
                };
                let limit = u64::try_from(last - endpoint.cursor).unwrap_or(0);
                let events: Vec<(String, i64, String)> = self
                    .store
                    .list_events(&filter, endpoint.cursor, limit)
                    .await?
                    .into_iter()
                    .filter(|event| event.sequence <= last)
                    .map(|event| (event.id, event.sequence, event.subscription_id))
                    .collect();
                let tx = self.store.begin().await?;
                tx.webhooks().fan_out(endpoint, &events, last, now).await?;
                tx.commit().await?;
            }
        }
    }

    /// One attempt of one claimed delivery; returns where it stands.
    async fn deliver(&self, delivery: &WebhookDelivery, now: DateTime<Utc>) -> Result<DeliveryStatus, AppError> {
        let endpoint = self.store.webhooks().get_endpoint(&delivery.endpoint_id).await?;
        let event = self.store.get_event(&delivery.event_id).await?;
        let sent = match (&endpoint, &event) {
            (Some(endpoint), Some(event)) => self.send(endpoint, event, now).await?,
            _ => Err("its endpoint or event no longer exists".to_owned()),
        };
        let retry = RETRY_SCHEDULE
            .get(usize::try_from(delivery.attempts - 1).unwrap_or(usize::MAX))
            .map(|wait| now + *wait);
        let result = match sent {
            Ok(code) if (200..300).contains(&code) => AttemptResult {
                status: DeliveryStatus::Delivered,
                response_status: Some(i32::from(code)),
                error: None,
                retry_at: None,
                now,
            },
            outcome => {
                let (response_status, error) = match outcome {
                    Ok(code) => (Some(i32::from(code)), format!("the receiver answered {code}")),
                    Err(error) => (None, error),
                };
                AttemptResult {
                    status: if retry.is_some() {
                        DeliveryStatus::Pending
                    } else {
                        DeliveryStatus::Failed
                    },
                    response_status,
                    error: Some(error),
                    retry_at: retry,
                    now,
                }
            }
        };
        match result.status {
            DeliveryStatus::Delivered => {
                tracing::info!(delivery = %delivery.id, event = %delivery.event_id, "webhook delivered");
            }
            DeliveryStatus::Pending => {
                tracing::warn!(delivery = %delivery.id, attempts = delivery.attempts, error = ?result.error, retry_at = ?result.retry_at, "webhook not delivered; will retry");
            }
            DeliveryStatus::Failed => {
                tracing::error!(delivery = %delivery.id, attempts = delivery.attempts, error = ?result.error, "webhook failed for good");
            }
        }
        if !self
            .store
            .webhooks()
            .record_attempt(&delivery.id, delivery.attempts, &result)
            .await?
        {
            tracing::warn!(delivery = %delivery.id, "the delivery's claim was lost meanwhile: its new holder records it");
        }
        Ok(result.status)
    }

    /// Signs and sends one event to one endpoint.
    async fn send(
        &self,
        endpoint: &Endpoint,
        event: &PublishedEvent,
        now: DateTime<Utc>,
    ) -> Result<SendResult, AppError> {
        let mut event = event.clone();
        self.links.apply(&mut event);
        let body = serde_json::to_vec(&serde_json::json!({
            "type": event.event_type,
            "timestamp": event.occur_time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": event.payload,
        }))
        .map_err(|error| AppError::fault(format!("an event does not encode: {error}")))?;
        // The attempt's real time, as receivers check it against their own
        // clocks (the service clock may be a test clock).
        let timestamp = Utc::now().timestamp();
        let mut signatures = vec![sign(&endpoint.secret, &event.id, timestamp, &body)?];
        if let (Some(previous), Some(until)) = (&endpoint.previous_secret, endpoint.previous_secret_expire_time)
            && now < until
        {
            signatures.push(sign(previous, &event.id, timestamp, &body)?);
        }
        let request = WebhookRequest {
            url: endpoint.url.clone(),
            headers: vec![
                ("webhook-id", event.id.clone()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signatures.join(" ")),
            ],
            body,
        };
        Ok(self.sender.send(request).await)
    }

    /// The earliest due delivery at or before `until`; now, when events
    /// were published that an endpoint has not had yet.
    pub async fn next_due_time(&self, until: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, AppError> {
        if let Some(cursor) = self.store.webhooks().lowest_cursor().await? {
            self.store.publish_events(1_000).await?;
            if cursor < self.store.last_published_sequence().await? {
                return Ok(Some(self.clock.now().min(until)));
            }
        }
        Ok(self.store.webhooks().next_delivery_time(until).await?)
    }
}
