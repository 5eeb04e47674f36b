//! Reading the event stream: every change writes its events in its own
//! transaction; they are published in one gap-free sequence in the order
//! they became visible (see `Store::publish_events`), and read from there.
//! A read publishes what has committed first, so a caller sees every event
//! of every change that answered before its call.

use billing_domain::error::Violations;
use billing_domain::{DomainError, Reason};
use billing_storage::{EventFilter, PublishedEvent, Store};

use crate::AppError;
use crate::paging::{Page, PageParams, PageRequest};

/// Every event type there is (DESIGN §2).
pub const EVENT_TYPES: &[&str] = &[
    "subscription.started",
    "subscription.ended",
    "subscription.canceled",
    "subscription.reactivated",
    "subscription.plan_changed",
    "subscription.plan_change_scheduled",
    "subscription.components_updated",
    "subscription.renewed",
    "subscription.past_due",
    "subscription.recovered",
    "invoice.created",
    "invoice.paid",
    "invoice.payment_failed",
    "checkout.completed",
    "checkout.rejected",
];

/// Events published per read.
const PUBLISH_BATCH: u64 = 1_000;

#[derive(Clone, Debug)]
pub struct Events {
    store: Store,
    links: EventLinks,
}

impl Events {
    pub fn new(store: Store) -> Self {
        Events {
            store,
            links: EventLinks::default(),
        }
    }

    /// Links each subscription event to its subscription on `public_url`.
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        self.links = EventLinks::new(public_url);
        self
    }

    /// Checks what a reader asked for: a known type, a sequence not below 0.
    pub fn check(filter: &EventFilter, after_sequence: i64) -> Result<(), AppError> {
        let mut violations = Violations::new();
        if after_sequence < 0 {
            violations.push("after_sequence", Reason::FieldInvalid, "must be 0 or more");
        }
        for (index, event_type) in filter.types.iter().enumerate() {
            if !EVENT_TYPES.contains(&event_type.as_str()) {
                violations.push(
                    format!("types[{index}]"),
                    Reason::FieldInvalid,
                    format!("{event_type:?} is not an event type; one of {}", EVENT_TYPES.join(", ")),
                );
            }
        }
        violations.into_result().map_err(AppError::from)
    }

    /// A page of the events after `after_sequence` that `filter` selects.
    pub async fn list(
        &self,
        filter: &EventFilter,
        after_sequence: i64,
        params: &PageParams,
    ) -> Result<Page<PublishedEvent>, AppError> {
        Self::check(filter, after_sequence)?;
        let request = PageRequest::parse(params, format!("events:{after_sequence}:{filter:?}"))?;
        let after = match &request.after {
            Some(key) => key.parse::<i64>().map_err(|_| {
                AppError::from(DomainError::field(
                    "page_token",
                    Reason::PageTokenInvalid,
                    "is not a token this list issued",
                ))
            })?,
            None => after_sequence,
        };
        let rows = self.next(filter, after, request.fetch_limit()).await?;
        let keyed: Vec<(String, PublishedEvent)> = rows
            .into_iter()
            .map(|event| (event.sequence.to_string(), event))
            .collect();
        let page = request.page(keyed, |(key, _)| key.as_str());
        Ok(Page {
            items: page.items.into_iter().map(|(_, event)| event).collect(),
            next_page_token: page.next_page_token,
        })
    }

    /// Up to `limit` events after `after` that `filter` selects, publishing
    /// what has committed first.
    pub async fn next(&self, filter: &EventFilter, after: i64, limit: u64) -> Result<Vec<PublishedEvent>, AppError> {
        self.store.publish_events(PUBLISH_BATCH).await?;
        let mut events = self.store.list_events(filter, after, limit).await?;
        for event in &mut events {
            self.links.apply(event);
        }
        Ok(events)
    }
}

/// Where an event's subscription can be read over HTTP: `subscription_url`
/// in the data of every event about a subscription, added as events are
/// read and sent (so every event has it, whenever it was written, and it
/// follows `server.public_url`).
#[derive(Clone, Debug, Default)]
pub struct EventLinks {
    /// `server.public_url`; none, no links.
    public_url: Option<String>,
}

impl EventLinks {
    pub fn new(public_url: &str) -> Self {
        EventLinks {
            public_url: Some(public_url.to_owned()),
        }
    }

    /// Adds `subscription_url` to `event`'s data, when it has a subscription
    /// and its data is an object.
    pub fn apply(&self, event: &mut PublishedEvent) {
        let Some(public_url) = &self.public_url else {
            return;
        };
        if event.subscription_id.is_empty() {
            return;
        }
        if let serde_json::Value::Object(data) = &mut event.payload {
            data.insert(
                "subscription_url".to_owned(),
                serde_json::Value::String(subscription_url(public_url, &event.subscription_id)),
            );
        }
    }
}

/// `GET /v1/subscriptions/{id}` on the service's public URL.
pub fn subscription_url(public_url: &str, subscription_id: &str) -> String {
    format!(
        "{}/v1/subscriptions/{subscription_id}",
        public_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(subscription_id: &str, payload: serde_json::Value) -> PublishedEvent {
        PublishedEvent {
            sequence: 1,
            id: "evt_1".into(),
            event_type: "subscription.started".into(),
            business_id: "acme".into(),
            directory_id: "dir".into(),
            subscription_id: subscription_id.into(),
            occur_time: chrono::Utc::now(),
            payload,
        }
    }

    #[test]
    fn subscription_events_link_to_their_subscription() {
        let links = EventLinks::new("https://billing.example.com/");
        let mut started = event("sub_1", serde_json::json!({"id": "sub_1"}));
        links.apply(&mut started);
        assert_eq!(
            started.payload["subscription_url"],
            "https://billing.example.com/v1/subscriptions/sub_1"
        );
        let mut unlinked = event("", serde_json::json!({"id": "cs_1"}));
        links.apply(&mut unlinked);
        assert!(unlinked.payload.get("subscription_url").is_none());
        let mut quiet = event("sub_1", serde_json::json!({"id": "sub_1"}));
        EventLinks::default().apply(&mut quiet);
        assert!(quiet.payload.get("subscription_url").is_none());
    }
}
