//! The boundary between this service and whatever moves money: the built-in
//! ledger (`local`), Stripe, or a partner's billing system.
//!
//! The app calls a [`PaymentProvider`] outside any database transaction, with
//! an idempotency key made once per logical operation (an invoice and its
//! attempt) and reused on every retry, so a provider never charges twice for
//! one attempt; [`PaymentProvider::find_charge`] looks an attempt up by that
//! key when a crash left its outcome unrecorded.

use std::fmt::Debug;

use async_trait::async_trait;
use billing_domain::Money;
pub use billing_domain::payment_method::PaymentMethod;

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

/// What the app needs from whoever moves the money.
#[async_trait]
pub trait PaymentProvider: Send + Sync + Debug {
    /// `local`, `stripe`, …
    fn name(&self) -> &'static str;

    /// Attaches a payment method by its provider token.
    async fn attach_payment_method(&self, business_id: &str, token: &str) -> Result<PaymentMethod, ProviderError>;

    /// Tries to collect `request.amount`. The same idempotency key returns the
    /// first outcome again and never moves money twice.
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError>;

    /// The outcome of an earlier attempt, by its idempotency key, if the
    /// provider saw it.
    async fn find_charge(&self, idempotency_key: &str) -> Result<Option<ChargeOutcome>, ProviderError>;
}
