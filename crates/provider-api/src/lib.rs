//! The boundary between this service and whatever moves money: the built-in
//! ledger (`local`), Stripe, or a partner's billing system.
//!
//! The app calls a [`PaymentProvider`] outside any database transaction, with
//! an idempotency key made once per logical operation (an invoice and its
//! attempt) and reused on every retry, so a provider never charges twice for
//! one attempt; [`PaymentProvider::find_charge`] looks an attempt up by that
//! key when a crash left its outcome unrecorded.

pub mod http;

use std::fmt::Debug;

use async_trait::async_trait;
use billing_domain::Money;
pub use billing_domain::Provider;
pub use billing_domain::payment_method::PaymentMethod;
pub use billing_domain::subscription::Report;
use chrono::{DateTime, Utc};

/// One attempt to collect an amount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRequest {
    /// The same for every retry of this attempt (e.g. `inv_…:attempt:2`).
    pub idempotency_key: String,
    pub business_id: String,
    /// [`PaymentMethod::reference`].
    pub payment_method: String,
    /// Positive.
    pub amount: Money,
    pub description: String,
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money moved; `reference` identifies the charge at the provider.
    Succeeded { reference: String },
    /// The card said no; dunning follows. `code` is the provider's decline
    /// code (`card_declined`, `insufficient_funds`, …).
    Declined { code: String, message: String },
}

/// The few ways a provider call fails (a decline is not a failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// The request is wrong (an unknown token): retrying will not help.
    InvalidRequest,
    /// The provider is down, slow or rate-limiting: retry later.
    Unavailable,
    /// Anything else.
    Internal,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    kind: ProviderErrorKind,
    message: String,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ProviderErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What a provider's webhook (verified and stored by the server) tells this
/// service, in its own terms: the app acts on these and never reads a
/// provider's payload itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InboundEvent {
    /// A gateway's payment settled, or is still processing (`outcome` is
    /// `None`). `charge_key` is the idempotency key of the charge when this
    /// service made it.
    Payment {
        event_type: String,
        charge_key: Option<String>,
        outcome: Option<ChargeOutcome>,
    },
    /// An engine reports a change to a subscription it bills. `reference`
    /// is this service's subscription id, when the subscription is one of
    /// its own; `as_of` is when the provider says the change happened.
    Subscription {
        event_id: String,
        event_type: String,
        reference: Option<String>,
        report: Report,
        as_of: Option<DateTime<Utc>>,
    },
    /// The provider's event of this type is not acted on.
    NotActedOn { event_type: String },
}

/// What the app needs from whoever moves the money.
#[async_trait]
pub trait PaymentProvider: Send + Sync + Debug {
    /// Which provider this is.
    fn name(&self) -> Provider;

    /// Attaches a payment method by its provider token.
    async fn attach_payment_method(&self, business_id: &str, token: &str) -> Result<PaymentMethod, ProviderError>;

    /// Tries to collect `request.amount`. The same idempotency key returns the
    /// first outcome again and never moves money twice.
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError>;

    /// The outcome of an earlier attempt, by its idempotency key, if the
    /// provider saw it.
    async fn find_charge(&self, idempotency_key: &str) -> Result<Option<ChargeOutcome>, ProviderError>;

    /// Reads a webhook body this provider sent; `None` if it is not one of
    /// its events (or the provider sends none).
    fn read_webhook(&self, _body: &[u8]) -> Option<InboundEvent> {
        None
    }
}

/// A subscription to open at a provider that is the billing engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineSubscription {
    /// Our subscription id, kept at the provider as its reference: a repeated
    /// create finds the first instead of making a second.
    pub reference: String,
    /// The business, as the provider's customer reference.
    pub customer_reference: String,
    /// The offering's handle at the provider (`provider_refs`).
    pub product_handle: String,
    pub price_point_handle: Option<String>,
    /// Component handles and quantities.
    pub components: Vec<(String, u32)>,
    pub coupon_code: Option<String>,
}

/// A subscription as the engine reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineState {
    /// The provider's id of the subscription.
    pub provider_id: String,
    /// The provider's own state name (`active`, `past_due`, `canceled`, …).
    pub state: String,
}

/// What a plan change would bill now, in minor units of the subscription's
/// currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanChangePreview {
    /// The new product for the rest of the period.
    pub charge_minor: i64,
    /// What would be charged now.
    pub payment_due_minor: i64,
    /// The subscription's credit spent on it.
    pub credit_applied_minor: i64,
}

/// A provider that runs the billing itself (Maxio): this service creates,
/// changes and cancels subscriptions there and mirrors their state from its
/// webhooks. Every call is safe to repeat.
#[async_trait]
pub trait SubscriptionEngine: Send + Sync + Debug {
    fn name(&self) -> Provider;

    /// Reads a webhook body this provider sent; `None` if it is not one of
    /// its events.
    fn read_webhook(&self, body: &[u8]) -> Option<InboundEvent>;

    /// Creates the subscription, or finds the one an earlier call created
    /// with the same reference.
    async fn create_subscription(&self, subscription: &EngineSubscription) -> Result<EngineState, ProviderError>;

    /// The subscription with our reference, if the provider has it.
    async fn find_subscription(&self, reference: &str) -> Result<Option<EngineState>, ProviderError>;

    /// What moving to `product_handle` now would bill.
    async fn preview_plan_change(
        &self,
        provider_id: &str,
        product_handle: &str,
        price_point_handle: Option<&str>,
    ) -> Result<PlanChangePreview, ProviderError>;

    /// Moves the subscription to another product now, prorated, keeping its
    /// period.
    async fn change_plan(
        &self,
        provider_id: &str,
        product_handle: &str,
        price_point_handle: Option<&str>,
    ) -> Result<EngineState, ProviderError>;

    /// Moves the subscription to another product at its next renewal.
    async fn schedule_plan_change(&self, provider_id: &str, product_handle: &str) -> Result<(), ProviderError>;

    /// Sets a component's quantity, prorated.
    async fn set_component_quantity(
        &self,
        provider_id: &str,
        component_handle: &str,
        quantity: u32,
    ) -> Result<(), ProviderError>;

    /// Cancels now, or at the end of the period.
    async fn cancel(&self, provider_id: &str, at_period_end: bool, reason: &str) -> Result<(), ProviderError>;

    /// Undoes a cancel at the period end that has not happened yet.
    async fn reactivate(&self, provider_id: &str) -> Result<(), ProviderError>;
}
