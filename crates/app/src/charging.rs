//! Collecting invoices: a charge attempt runs outside any database
//! transaction, and its outcome is recorded in one afterwards.
//!
//! An attempt first asks the provider whether this attempt's idempotency key
//! already went through, so a crash between the provider's answer and our
//! commit is repaired without charging twice. A business without a payment
//! method gets a decline (`payment_method_required`), which starts dunning
//! like any other.

use std::sync::Arc;

use billing_domain::Provider;
use billing_domain::dunning::DunningPolicy;
use billing_domain::invoice::Invoice;
use billing_domain::subscription::{
    EventType, Subscription, SubscriptionState, Transition, apply_held_change, charge_failed, charge_succeeded,
    drop_held_change,
};
use billing_provider_api::{ChargeOutcome, ChargeRequest, PaymentProvider};
use billing_storage::{Store, StoredPaymentMethod};
use chrono::{DateTime, Utc};

use crate::AppError;
use crate::billing::provider_error;
use crate::providers::{Biller, Providers};

/// The decline code for a charge with no payment method on file.
pub const NO_PAYMENT_METHOD: &str = "payment_method_required";

#[derive(Clone, Debug)]
pub struct Charger {
    store: Store,
    providers: Providers,
    policy: DunningPolicy,
}

impl Charger {
    pub fn new(store: Store, providers: Providers, policy: DunningPolicy) -> Self {
        Charger {
            store,
            providers,
            policy,
        }
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    pub fn policy(&self) -> &DunningPolicy {
        &self.policy
    }

    /// Whether the invoice's next charge attempt already reached the
    /// provider, and how it ended; charges nothing. Never inside a
    /// transaction.
    pub(crate) async fn look_up(&self, invoice: &Invoice) -> Result<Option<ChargeOutcome>, AppError> {
        let method = self.store.billing().get_payment_method(&invoice.business_id).await?;
        let provider = self.gateway_for(invoice, method.as_ref()).await?;
        provider
            .find_charge(&invoice.attempt_key())
            .await
            .map_err(|error| provider_error(error, "invoice"))
    }

    /// The card's own gateway; without a card, the directory's (it may
    /// still hold an attempt made before the card was detached).
    async fn gateway_for(
        &self,
        invoice: &Invoice,
        method: Option<&StoredPaymentMethod>,
    ) -> Result<Arc<dyn PaymentProvider>, AppError> {
        match method {
            Some(stored) => self.providers.gateway(stored.method.provider),
            None => self.directory_gateway(invoice).await,
        }
    }

    /// Tries the invoice's next charge. Never inside a transaction.
    pub(crate) async fn attempt(&self, invoice: &Invoice) -> Result<ChargeOutcome, AppError> {
        let key = invoice.attempt_key();
        let method = self.store.billing().get_payment_method(&invoice.business_id).await?;
        let provider = self.gateway_for(invoice, method.as_ref()).await?;
        if let Some(earlier) = provider
            .find_charge(&key)
            .await
            .map_err(|error| provider_error(error, "invoice"))?
        {
            tracing::info!(invoice_id = %invoice.id, key, "charge attempt found at the provider; not charging again");
            return Ok(earlier);
        }
        let Some(method) = method else {
            return Ok(ChargeOutcome::Declined {
                code: NO_PAYMENT_METHOD.to_owned(),
                message: "no payment method on file".to_owned(),
            });
        };
        let request = ChargeRequest {
            idempotency_key: key,
            business_id: invoice.business_id.to_string(),
            payment_method: method.method.reference,
            amount: invoice.draft.amount_due,
            description: format!("Invoice {}", invoice.number),
        };
        let outcome = provider
            .charge(&request)
            .await
            .map_err(|error| provider_error(error, "invoice"))?;
        match &outcome {
            ChargeOutcome::Succeeded { .. } => {
                tracing::info!(invoice_id = %invoice.id, amount = %invoice.draft.amount_due, "invoice paid");
            }
            ChargeOutcome::Declined { code, .. } => {
                tracing::info!(invoice_id = %invoice.id, code, "charge declined");
            }
        }
        Ok(outcome)
    }
}

impl Charger {
    async fn directory_gateway(&self, invoice: &Invoice) -> Result<Arc<dyn PaymentProvider>, AppError> {
        let business = self.store.subscriptions().get_business(&invoice.business_id).await?;
        match business.map(|business| self.providers.biller_for(&business.directory_id)) {
            Some(Ok(Biller::Gateway(provider))) => Ok(provider),
            _ => self.providers.gateway(Provider::Local),
        }
    }
}

/// The invoice and subscription after a charge outcome, and the events.
#[derive(Debug)]
pub(crate) struct Settlement {
    pub invoice: Invoice,
    pub subscription: Transition,
    /// `invoice.paid` or `invoice.payment_failed`.
    pub invoice_event: &'static str,
}

/// Decides what an outcome does: a success pays the invoice and recovers a
/// past-due subscription (or completes an incomplete one, or applies the
/// change held for this invoice); a decline starts or advances dunning, and
/// when the retries run out the subscription expires and the invoice is
/// uncollectible. A declined incomplete purchase ends at once and its
/// invoice is void; a declined held change is dropped and its invoice void.
pub(crate) fn settle(
    subscription: &Subscription,
    invoice: &Invoice,
    outcome: &ChargeOutcome,
    policy: &DunningPolicy,
    now: DateTime<Utc>,
) -> Settlement {
    let holds_this = subscription
        .held_change
        .as_ref()
        .is_some_and(|held| held.invoice_id == invoice.id);
    match outcome {
        ChargeOutcome::Succeeded { .. } if holds_this => Settlement {
            invoice: invoice.paid(now),
            subscription: apply_held_change(subscription, &invoice.id, now),
            invoice_event: "invoice.paid",
        },
        // A change charged now and declined: it does not happen.
        ChargeOutcome::Declined { .. } if holds_this => Settlement {
            invoice: invoice.void(),
            subscription: Transition {
                subscription: drop_held_change(subscription, now),
                events: Vec::new(),
            },
            invoice_event: "invoice.payment_failed",
        },
        ChargeOutcome::Succeeded { .. } => Settlement {
            invoice: invoice.paid(now),
            subscription: charge_succeeded(subscription, now),
            invoice_event: "invoice.paid",
        },
        // An incomplete purchase declined: nothing was bought.
        ChargeOutcome::Declined { .. } if subscription.is_incomplete() => Settlement {
            invoice: invoice.void(),
            subscription: charge_failed(subscription, policy, now),
            invoice_event: "invoice.payment_failed",
        },
        ChargeOutcome::Declined { .. } => {
            let transition = charge_failed(subscription, policy, now);
            let retry_at = match transition.subscription.state {
                SubscriptionState::Expired => None,
                _ => transition
                    .subscription
                    .dunning
                    .as_ref()
                    .and_then(|dunning| dunning.next_retry_time),
            };
            Settlement {
                invoice: invoice.payment_failed(retry_at),
                subscription: transition,
                invoice_event: "invoice.payment_failed",
            }
        }
    }
}

/// Whether a settlement ended the subscription.
pub(crate) fn ended(settlement: &Settlement) -> bool {
    settlement.subscription.events.contains(&EventType::Ended)
}
