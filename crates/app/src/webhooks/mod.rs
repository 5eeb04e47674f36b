//! Outgoing webhooks (Standard Webhooks): endpoints that receive the event
//! stream, each event delivered at least once per endpoint, signed, in
//! order per subscription, retried after 15 min, 30 min, 2 h, 12 h and a
//! day on the service clock, then FAILED (and redeliverable on demand).
//!
//! Deliveries run with the jobs: each round fans newly published events
//! out to the endpoints that want them (a cursor per endpoint over the
//! gap-free stream), then claims due deliveries under a lease and sends
//! them.

mod delivery;
mod hosts;
mod signing;

use std::sync::Arc;
use std::time::Duration;

use billing_domain::{DomainError, Reason};
use billing_storage::{DeliveryStatus, Endpoint, EventFilter, PublishedEvent, Store, Tx, WebhookDelivery};
use chrono::{DateTime, Utc};
pub use hosts::AllowedHosts;
pub use signing::{Refused, new_secret, sign, verify};

use crate::AppError;
use crate::clock::Clock;
use crate::events::{EventLinks, Events};
use crate::idempotency::{self, Outcome, RequestContext};
use crate::paging::{Page, PageParams, PageRequest};

/// After the first attempt fails, the waits before each retry; once they
/// are used up the delivery is FAILED.
pub const RETRY_SCHEDULE: [chrono::Duration; 5] = [
    chrono::Duration::minutes(15),
    chrono::Duration::minutes(30),
    chrono::Duration::hours(2),
    chrono::Duration::hours(12),
    chrono::Duration::days(1),
];
/// How long a receiver has to answer.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an old secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: chrono::Duration = chrono::Duration::hours(24);
/// A claimed delivery's lease is at least this: longer than a send can take.
const MIN_LEASE: Duration = Duration::from_secs(20);
/// Deliveries claimed, and sent side by side, per round trip.
const BATCH: u64 = 32;

/// One signed POST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRequest {
    pub url: String,
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What sending did: the receiver's HTTP status, or why nothing answered.
pub type SendResult = Result<u16, String>;

/// Sends webhook requests (HTTP in the server; a fake in tests).
#[async_trait::async_trait]
pub trait WebhookSender: Send + Sync + std::fmt::Debug {
    async fn send(&self, request: WebhookRequest) -> SendResult;
}

/// An endpoint as asked for.
#[derive(Clone, Debug, Default)]
pub struct NewEndpoint {
    pub url: String,
    pub event_types: Vec<String>,
    pub directory_id: Option<String>,
    pub description: String,
}

#[derive(Clone, Debug)]
pub struct Webhooks {
    store: Store,
    clock: Arc<dyn Clock>,
    sender: Arc<dyn WebhookSender>,
    allowed: AllowedHosts,
    /// Finished deliveries and delivered events older than this go.
    retention: chrono::Duration,
    /// When they were last pruned (at most hourly: it scans).
    pruned: Arc<std::sync::Mutex<Option<DateTime<Utc>>>>,
    /// How long a claimed delivery is a worker's (a dead worker's is sent
    /// again after it).
    lease: Duration,
    /// `subscription_url` in the data sent, as `Events` reads it.
    links: EventLinks,
}

/// How often old events and deliveries are pruned.
const PRUNE_EVERY: chrono::Duration = chrono::Duration::hours(1);

fn endpoint_not_found(id: &str) -> AppError {
    DomainError::new(Reason::WebhookEndpointNotFound, format!("no webhook endpoint {id}")).into()
}

impl Webhooks {
    pub fn new(store: Store, clock: Arc<dyn Clock>, sender: Arc<dyn WebhookSender>, allowed: AllowedHosts) -> Self {
        Webhooks {
            store,
            clock,
            sender,
            allowed,
            retention: chrono::Duration::days(30),
            pruned: Arc::default(),
            lease: Duration::from_secs(60),
            links: EventLinks::default(),
        }
    }

    /// The same, linking each subscription event to its subscription on
    /// `public_url`.
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        self.links = EventLinks::new(public_url);
        self
    }

    /// The same, leasing a claimed delivery for `lease`, but at least 20 s
    /// (longer than a send may take).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(MIN_LEASE);
        self
    }

    /// The same, keeping events and finished deliveries `days` days.
    pub fn with_retention_days(mut self, days: u32) -> Self {
        self.retention = chrono::Duration::days(i64::from(days.max(1)));
        self
    }

    /// Prunes what is older than the retention, at most hourly.
    async fn prune(&self, now: DateTime<Utc>) -> Result<(), AppError> {
        let due = {
            let mut pruned = self.pruned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // The first round only starts the count: a process that just
            // started prunes an hour later, not while others set up.
            let due = pruned.is_some_and(|last| now - last >= PRUNE_EVERY);
            if due || pruned.is_none() {
                *pruned = Some(now);
            }
            due
        };
        if due {
            let removed = self.store.webhooks().prune_events(now - self.retention).await?;
            if removed > 0 {
                tracing::info!(removed, "old events and deliveries pruned");
            }
        }
        Ok(())
    }

    /// Registers an endpoint for the events published from now on; returns
    /// it (its secret shown in this answer only; a repeat of the request
    /// answers the same).
    pub async fn create_endpoint(
        &self,
        context: &RequestContext,
        new: NewEndpoint,
        encode: impl FnOnce(&Endpoint) -> Vec<u8>,
    ) -> Result<Outcome<Endpoint>, AppError> {
        let url = self.allowed.check(&new.url);
        let types = Events::check(
            &EventFilter {
                types: new.event_types.clone(),
                ..EventFilter::default()
            },
            0,
        );
        let mut violations = billing_domain::error::Violations::new();
        if let Err(error) = url {
            for violation in error.violations() {
                violations.push(violation.field.clone(), violation.reason, violation.description.clone());
            }
        }
        if let Err(AppError::Rule(error)) = types {
            for violation in error.violations() {
                let field = violation.field.replacen("types", "event_types", 1);
                violations.push(field, violation.reason, violation.description.clone());
            }
        }
        if new.description.chars().count() > 1_000 {
            violations.push("description", Reason::FieldTooLong, "at most 1000 characters");
        }
        violations.into_result()?;
        // Only what is published from now on.
        self.store.publish_events(1_000).await?;
        let cursor = self.store.last_published_sequence().await?;
        let secret = new_secret()?;
        let now = self.clock.now();
        idempotency::run(
            &self.store,
            context,
            "CreateWebhookEndpoint",
            now,
            encode,
            async |tx: &Tx| {
                let endpoint = Endpoint {
                    id: format!("we_{}", uuid::Uuid::now_v7().simple()),
                    url: new.url,
                    event_types: new.event_types,
                    directory_id: new.directory_id.filter(|id| !id.is_empty()),
                    description: new.description,
                    secret,
                    previous_secret: None,
                    previous_secret_expire_time: None,
                    cursor,
                    create_time: now,
                };
                tx.webhooks().insert_endpoint(&endpoint).await?;
                Ok(endpoint)
            },
        )
        .await
    }

    /// The endpoint, if `directory_id` (the caller's, when scoped) may see it.
    pub async fn endpoint(&self, id: &str, directory_id: Option<&str>) -> Result<Endpoint, AppError> {
        self.store
            .webhooks()
            .get_endpoint(id)
            .await?
            .filter(|endpoint| directory_id.is_none_or(|own| endpoint.directory_id.as_deref() == Some(own)))
            .ok_or_else(|| endpoint_not_found(id))
    }

    pub async fn list_endpoints(
        &self,
        directory_id: Option<&str>,
        params: &PageParams,
    ) -> Result<Page<Endpoint>, AppError> {
        let request = PageRequest::parse(params, format!("webhook-endpoints:{directory_id:?}"))?;
        let rows = self
            .store
            .webhooks()
            .list_endpoints(directory_id, request.after.as_deref(), request.fetch_limit())
            .await?;
        Ok(request.page(rows, |endpoint| endpoint.id.as_str()))
    }

    pub async fn delete_endpoint(
        &self,
        context: &RequestContext,
        id: &str,
        directory_id: Option<&str>,
    ) -> Result<Outcome<()>, AppError> {
        self.endpoint(id, directory_id).await?;
        idempotency::run(
            &self.store,
            context,
            "DeleteWebhookEndpoint",
            self.clock.now(),
            |()| Vec::new(),
            async |tx: &Tx| {
                if !tx.webhooks().delete_endpoint(id).await? {
                    return Err(endpoint_not_found(id));
                }
                Ok(())
            },
        )
        .await
    }

    /// A new secret; the old one keeps signing (beside it) for a day.
    pub async fn rotate_secret(
        &self,
        context: &RequestContext,
        id: &str,
        directory_id: Option<&str>,
        encode: impl FnOnce(&Endpoint) -> Vec<u8>,
    ) -> Result<Outcome<Endpoint>, AppError> {
        self.endpoint(id, directory_id).await?;
        let secret = new_secret()?;
        let now = self.clock.now();
        idempotency::run(
            &self.store,
            context,
            "RotateWebhookSecret",
            now,
            encode,
            async |tx: &Tx| {
                tx.webhooks().rotate_secret(id, &secret, now + ROTATION_OVERLAP).await?;
                tx.webhooks()
                    .get_endpoint(id)
                    .await?
                    .ok_or_else(|| endpoint_not_found(id))
            },
        )
        .await
    }

    pub async fn list_deliveries(
        &self,
        endpoint_id: &str,
        directory_id: Option<&str>,
        status: Option<DeliveryStatus>,
        params: &PageParams,
    ) -> Result<Page<WebhookDelivery>, AppError> {
        self.endpoint(endpoint_id, directory_id).await?;
        let request = PageRequest::parse(params, format!("webhook-deliveries:{endpoint_id}:{status:?}"))?;
        let rows = self
            .store
            .webhooks()
            .list_deliveries(endpoint_id, status, request.after.as_deref(), request.fetch_limit())
            .await?;
        Ok(request.page(rows, |delivery| delivery.id.as_str()))
    }

    /// Sends chosen events (by id, or a sequence range `(after, through]`)
    /// to one endpoint again, from now; returns how many.
    pub async fn redeliver(
        &self,
        context: &RequestContext,
        endpoint_id: &str,
        directory_id: Option<&str>,
        event_ids: &[String],
        range: Option<(i64, i64)>,
        encode: impl FnOnce(&u64) -> Vec<u8>,
    ) -> Result<Outcome<u64>, AppError> {
        let endpoint = self.endpoint(endpoint_id, directory_id).await?;
        let mut events = if event_ids.is_empty() {
            Vec::new()
        } else {
            self.store.events_by_id(event_ids).await?
        };
        if let Some((after, through)) = range {
            let filter = EventFilter {
                directory_id: endpoint.directory_id.clone().unwrap_or_default(),
                ..EventFilter::default()
            };
            let limit = u64::try_from(through.saturating_sub(after)).unwrap_or(0).min(10_000);
            events.extend(
                self.store
                    .list_events(&filter, after, limit)
                    .await?
                    .into_iter()
                    .filter(|event| event.sequence <= through),
            );
        }
        if events.is_empty() {
            return Err(DomainError::field(
                "event_ids",
                Reason::FieldInvalid,
                "name published events by id, or a sequence range",
            )
            .into());
        }
        let wanted: Vec<(String, i64, String)> = events
            .into_iter()
            .filter(|event| wants(&endpoint, event))
            .map(|event| (event.id, event.sequence, event.subscription_id))
            .collect();
        let now = self.clock.now();
        idempotency::run(&self.store, context, "RedeliverEvents", now, encode, async |tx: &Tx| {
            Ok(tx.webhooks().redeliver(endpoint_id, &wanted, now).await?)
        })
        .await
    }
}

/// Whether `endpoint` receives `event`.
fn wants(endpoint: &Endpoint, event: &PublishedEvent) -> bool {
    endpoint
        .directory_id
        .as_deref()
        .is_none_or(|directory| directory == event.directory_id)
        && (endpoint.event_types.is_empty() || endpoint.event_types.contains(&event.event_type))
}
