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
}

impl Events {
    pub fn new(store: Store) -> Self {
        Events { store }
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
        Ok(self.store.list_events(filter, after, limit).await?)
    }
}
