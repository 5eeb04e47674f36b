//! Receiving provider webhooks: a delivery whose signature the HTTP side
//! verified is stored raw, once per provider event id, and answered; a job
//! applies it (see `JobRunner::process_inbox`).

use std::sync::Arc;

use billing_storage::{NewDelivery, Store};

use crate::AppError;
use crate::clock::Clock;

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
        provider: &str,
        event_id: &str,
        event_type: &str,
        payload: String,
    ) -> Result<bool, AppError> {
        let delivery = NewDelivery {
            id: None,
            provider: provider.to_owned(),
            event_id: event_id.to_owned(),
            event_type: event_type.to_owned(),
            payload,
            received_time: self.clock.now(),
        };
        Ok(self.store.inbox().insert(&delivery).await?)
    }
}
