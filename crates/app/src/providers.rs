//! Which provider bills a directory: the built-in ledger, Stripe (a payment
//! gateway for this service's own engine), or Maxio (the partner's engine).

use std::collections::HashMap;
use std::sync::Arc;

use billing_domain::text::ExternalId;
use billing_provider_api::{InboundEvent, PaymentProvider, SubscriptionEngine};

use crate::AppError;

/// How a directory is billed.
#[derive(Clone, Debug)]
pub enum Biller {
    /// This service computes invoices and charges through a gateway.
    Gateway(Arc<dyn PaymentProvider>),
    /// The provider is the engine; this service mirrors it.
    Engine(Arc<dyn SubscriptionEngine>),
}

#[derive(Clone, Debug)]
pub struct Providers {
    default: String,
    by_directory: HashMap<String, String>,
    local: Arc<dyn PaymentProvider>,
    stripe: Option<Arc<dyn PaymentProvider>>,
    maxio: Option<Arc<dyn SubscriptionEngine>>,
}

impl Providers {
    /// Everything billed by `local`.
    pub fn local_only(local: Arc<dyn PaymentProvider>) -> Self {
        Providers {
            default: "local".to_owned(),
            by_directory: HashMap::new(),
            local,
            stripe: None,
            maxio: None,
        }
    }

    pub fn new(
        default: String,
        by_directory: HashMap<String, String>,
        local: Arc<dyn PaymentProvider>,
        stripe: Option<Arc<dyn PaymentProvider>>,
        maxio: Option<Arc<dyn SubscriptionEngine>>,
    ) -> Self {
        Providers {
            default,
            by_directory,
            local,
            stripe,
            maxio,
        }
    }

    /// The provider name that bills `directory_id`.
    pub fn name_for(&self, directory_id: &ExternalId) -> &str {
        self.by_directory.get(directory_id.as_str()).unwrap_or(&self.default)
    }

    pub fn biller_for(&self, directory_id: &ExternalId) -> Result<Biller, AppError> {
        let name = self.name_for(directory_id).to_owned();
        match name.as_str() {
            "maxio" => self
                .maxio
                .clone()
                .map(Biller::Engine)
                .ok_or_else(|| unconfigured(&name)),
            other => self.gateway_named(other).map(Biller::Gateway),
        }
    }

    /// The gateway called `name` (a payment method's provider).
    pub fn gateway_named(&self, name: &str) -> Result<Arc<dyn PaymentProvider>, AppError> {
        match name {
            "local" => Ok(self.local.clone()),
            "stripe" => self.stripe.clone().ok_or_else(|| unconfigured(name)),
            other => Err(unconfigured(other)),
        }
    }

    pub fn engine(&self) -> Option<Arc<dyn SubscriptionEngine>> {
        self.maxio.clone()
    }

    /// A stored webhook body from the provider called `name`, read by that
    /// provider; `None` if it is not one of its events or the provider is
    /// not configured.
    pub fn read_webhook(&self, name: &str, body: &[u8]) -> Option<InboundEvent> {
        if let Some(engine) = self.maxio.as_ref().filter(|engine| engine.name() == name) {
            return engine.read_webhook(body);
        }
        self.gateway_named(name).ok()?.read_webhook(body)
    }
}

fn unconfigured(name: &str) -> AppError {
    AppError::fault(format!("provider {name:?} is not configured (providers.{name}.*)"))
}
