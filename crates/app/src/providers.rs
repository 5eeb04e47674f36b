//! Which provider bills a directory: the built-in ledger, Stripe (a payment
//! gateway for this service's own engine), or Maxio (the partner's engine).

use std::collections::HashMap;
use std::sync::Arc;

use billing_domain::Provider;
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
    default: Provider,
    by_directory: HashMap<String, Provider>,
    local: Arc<dyn PaymentProvider>,
    stripe: Option<Arc<dyn PaymentProvider>>,
    maxio: Option<Arc<dyn SubscriptionEngine>>,
}

impl Providers {
    /// Everything billed by `local`.
    pub fn local_only(local: Arc<dyn PaymentProvider>) -> Self {
        Providers {
            default: Provider::Local,
            by_directory: HashMap::new(),
            local,
            stripe: None,
            maxio: None,
        }
    }

    pub fn new(
        default: Provider,
        by_directory: HashMap<String, Provider>,
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

    /// The provider that bills `directory_id`.
    pub fn for_directory(&self, directory_id: &ExternalId) -> Provider {
        self.by_directory
            .get(directory_id.as_str())
            .copied()
            .unwrap_or(self.default)
    }

    pub fn biller_for(&self, directory_id: &ExternalId) -> Result<Biller, AppError> {
        match self.for_directory(directory_id) {
            Provider::Maxio => self
                .maxio
                .clone()
                .map(Biller::Engine)
                .ok_or_else(|| unconfigured(Provider::Maxio)),
            gateway => self.gateway(gateway).map(Biller::Gateway),
        }
    }

    /// The gateway `provider` (a payment method's provider).
    pub fn gateway(&self, provider: Provider) -> Result<Arc<dyn PaymentProvider>, AppError> {
        match provider {
            Provider::Local => Ok(self.local.clone()),
            Provider::Stripe => self.stripe.clone().ok_or_else(|| unconfigured(provider)),
            Provider::Maxio => Err(AppError::fault(format!(
                "provider {provider} is an engine, not a payment gateway"
            ))),
        }
    }

    pub fn engine(&self) -> Option<Arc<dyn SubscriptionEngine>> {
        self.maxio.clone()
    }

    /// A stored webhook body from `provider`, read by that provider; `None`
    /// if it is not one of its events or the provider is not configured.
    pub fn read_webhook(&self, provider: Provider, body: &[u8]) -> Option<InboundEvent> {
        match provider {
            Provider::Maxio => self.maxio.as_ref()?.read_webhook(body),
            gateway => self.gateway(gateway).ok()?.read_webhook(body),
        }
    }
}

fn unconfigured(provider: Provider) -> AppError {
    AppError::fault(format!(
        "provider {provider:?} is not configured (providers.{provider}.*)",
        provider = provider.as_str()
    ))
}
