//! Receiving provider webhooks: a delivery whose signature the HTTP side
//! verified is stored raw, once per provider event id, and answered; a job
//! applies it (see `JobRunner::process_inbox`).

use std::sync::Arc;

use billing_domain::Provider;
use billing_storage::{NewDelivery, Store};

use crate::AppError;
use crate::clock::Clock;

/// Who sent a webhook: a billing provider, or the platform itself (its
/// `app_subscription.cancel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    Provider(Provider),
    Platform,
}

impl Sender {
    /// The text kept on a stored delivery.
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Provider(provider) => provider.as_str(),
            Sender::Platform => "platform",
        }
    }

    /// Parses the text written by [`Self::as_str`].
    pub fn from_text(text: &str) -> Option<Self> {
        match text {
            "platform" => Some(Sender::Platform),
            other => Provider::from_text(other).map(Sender::Provider),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Inbox {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Inbox {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Inbox { store, clock }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Stores a verified delivery; `false` when its event was stored before
    /// (a redelivery: nothing more to do).
    pub async fn receive(
        &self,
        sender: Sender,
        event_id: &str,
        event_type: &str,
        payload: String,
    ) -> Result<bool, AppError> {
        let delivery = NewDelivery {
            id: None,
            provider: sender.as_str().to_owned(),
            event_id: event_id.to_owned(),
            event_type: event_type.to_owned(),
            payload,
            received_time: self.clock.now(),
        };
        Ok(self.store.inbox().insert(&delivery).await?)
    }
}
