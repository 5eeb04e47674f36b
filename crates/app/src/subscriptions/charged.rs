//! Requests that may bill: the change and its invoice commit first, the
//! charge runs outside any transaction, and its outcome is recorded with the
//! request's idempotent response in a second transaction.
//!
//! Nothing is in force before it is paid. A purchase commits INCOMPLETE
//! (visible, not entitled) and is complete once its charge succeeds; a plan
//! change or components update charged now is held beside the subscription,
//! which stays on its old plan until the charge succeeds. When the charge
//! has no answer (the provider is down, the answer was lost) the request
//! answers OK with what it committed (INCOMPLETE, or the change held), and
//! the job retries the charge with the same key. If the process dies
//! between the two, the invoice is still due now and the subscription's job
//! charges it (looking the attempt up at the provider first); a repeat of
//! the request answers IDEMPOTENCY_KEY_IN_USE while the first attempt could
//! still be running, and after that what it committed; never a second
//! purchase or change.

use billing_domain::Refusal;
use billing_domain::dunning::DunningPolicy;
use billing_domain::invoice::{Invoice, InvoiceStatus};
use billing_domain::subscription::{CancelTiming, Subscription, cancel, follow_parent};
use billing_provider_api::ChargeOutcome;
use billing_storage::{IdempotencyKey, Tx};
use chrono::{DateTime, Utc};

use super::changes::{Actor, Changes, persist};
use super::invoicing::give_back_credit;
use super::{complete_children, fall_back_to_default_package, rebundle};
use crate::AppError;
use crate::charging::{ended, settle};
use crate::idempotency::{self, Outcome, RequestContext, Start};

/// A result that carries the subscription and the invoice a request made.
pub(crate) trait Billed {
    /// The invoice to collect now, if one is open.
    fn invoice_to_collect(&self) -> Option<&Invoice>;
    /// After the charge: the subscription and invoice as recorded.
    fn settled(&mut self, subscription: Subscription, invoice: Invoice);
    /// The subscription the request bought or changed.
    fn subscription(&self) -> &Subscription;
}

/// What a charge attempt of one invoice of a subscription came to.
pub(crate) struct Charged<'a> {
    pub subscription: &'a Subscription,
    pub invoice: &'a Invoice,
    pub outcome: &'a ChargeOutcome,
}

/// Records a charge's outcome for its subscription in `tx`: the settlement
/// (paid, dunning, the end, a held change applied or dropped), its bundles
/// following, credit of a voided invoice given back, pending checkout
/// sessions ended, and the default package back if it ended. Returns the
/// subscription and invoice as recorded. The one place both a request's
/// charge and the job's (or a webhook's) are recorded.
pub(crate) async fn record_outcome(
    tx: &Tx,
    charged: Charged<'_>,
    policy: &DunningPolicy,
    action: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Subscription, Invoice), AppError> {
    let Charged {
        subscription,
        invoice,
        outcome,
    } = charged;
    let settlement = settle(subscription, invoice, outcome, policy, now);
    let ended_now = ended(&settlement);
    let recorded = settlement.subscription.subscription;
    let mut changes = Changes::default();
    changes.record_changed(recorded.clone(), &settlement.subscription.events);
    if recorded.offering_id != subscription.offering_id {
        rebundle(tx, subscription, &recorded, &mut changes, now).await?;
    }
    if ended_now {
        for child in tx.subscriptions().children_for_update(&recorded.id).await? {
            let followed = follow_parent(&child, &recorded, now);
            changes.record_update(followed.subscription, &followed.events);
        }
    }
    complete_children(tx, subscription, &recorded, &mut changes, now).await?;
    if settlement.invoice.status == InvoiceStatus::Void {
        give_back_credit(tx, &settlement.invoice).await?;
    }
    changes.record_invoice_update(settlement.invoice.clone(), settlement.invoice_event);
    changes.record_charge_outcome(outcome);
    persist(tx, &mut changes, action, actor, now).await?;
    let paid = matches!(outcome, ChargeOutcome::Succeeded { .. });
    crate::checkout::settle_pending_sessions(tx, &recorded, paid, now).await?;
    if ended_now {
        fall_back_to_default_package(tx, &recorded, actor, now).await?;
    }
    Ok((recorded, settlement.invoice))
}

impl super::Subscriptions {
    /// Runs `change` idempotently, collects the invoice it opened, then
    /// runs what an engine provider is owed for the subscription it changed.
    pub(crate) async fn run_billed<T: Billed>(
        &self,
        context: &RequestContext,
        operation: &str,
        encode: impl Fn(&T) -> Vec<u8>,
        change: impl AsyncFnOnce(&Tx, DateTime<Utc>) -> Result<T, AppError>,
    ) -> Result<Outcome<T>, AppError> {
        let outcome = self.run_and_collect(context, operation, encode, change).await?;
        self.sync_engine(outcome.done().map(Billed::subscription)).await;
        Ok(outcome)
    }

    async fn run_and_collect<T: Billed>(
        &self,
        context: &RequestContext,
        operation: &str,
        encode: impl Fn(&T) -> Vec<u8>,
        change: impl AsyncFnOnce(&Tx, DateTime<Utc>) -> Result<T, AppError>,
    ) -> Result<Outcome<T>, AppError> {
        let now = self.clock.now();
        let (tx, key) = match idempotency::start(&self.store, context, operation, now).await? {
            Start::Replay(response) => return Ok(Outcome::Replayed(response)),
            Start::Run(tx, key) => (tx, key),
        };
        let result = change(&tx, now).await;
        let to_collect = match &result {
            Ok(value) => value.invoice_to_collect().cloned(),
            Err(_) => None,
        };
        let Some(invoice) = to_collect else {
            return idempotency::finish(&self.store, tx, key, result, encode, now).await;
        };
        let mut value = result?;
        // Due now, should the outcome never be recorded.
        tx.jobs().schedule(&invoice.subscription_id, Some(now)).await?;
        // The answer as committed (INCOMPLETE, or the change held): what a
        // repeat gets should this process die before the charge's outcome
        // is recorded.
        if let Some(key) = &key {
            tx.idempotency().complete_provisionally(key, encode(&value)).await?;
        }
        tx.commit().await?;

        let outcome = match self.charger.attempt(&invoice).await {
            Ok(outcome) => outcome,
            // No answer: what was committed is the request's outcome; the
            // job retries the charge with the same key.
            Err(error) => {
                tracing::warn!(invoice_id = %invoice.id, error = %error, "charge unanswered; the request's change waits for its payment");
                if let Some(key) = &key {
                    let tx = self.store.begin().await?;
                    tx.idempotency().complete(key, Some(encode(&value)), None).await?;
                    tx.commit().await?;
                }
                return Ok(Outcome::Done(value));
            }
        };
        let actor = Self::actor(context);
        let tx = self.store.begin().await?;
        let subscription = tx
            .subscriptions()
            .get_subscription_for_update(&invoice.subscription_id)
            .await?
            .ok_or_else(|| AppError::fault("the billed subscription vanished"))?;
        let current = tx.billing().get_invoice(&invoice.id).await?;
        if current.is_none_or(|current| current.attempt_count != invoice.attempt_count) {
            // The job recorded this attempt already (it found the charge at
            // the provider): its outcome is the request's.
            let recorded = tx.billing().get_invoice(&invoice.id).await?;
            value.settled(subscription, recorded.unwrap_or(invoice));
            return self.finish_billed(tx, key.as_ref(), Ok(value), &encode).await;
        }
        let holds_this = subscription
            .held_change
            .as_ref()
            .is_some_and(|held| held.invoice_id == invoice.id);
        let result = match &outcome {
            ChargeOutcome::Declined { code, message } if subscription.is_incomplete() && !holds_this => {
                self.end_purchase(&tx, &subscription, &invoice, &outcome, &actor, now)
                    .await?;
                Err(Refusal::declined(code, message, "nothing was bought"))
            }
            _ => {
                let charged = Charged {
                    subscription: &subscription,
                    invoice: &invoice,
                    outcome: &outcome,
                };
                let (recorded, invoice) = record_outcome(
                    &tx,
                    charged,
                    self.charger.policy(),
                    &format!("{operation}:charge"),
                    &actor,
                    now,
                )
                .await?;
                match &outcome {
                    ChargeOutcome::Declined { code, message } if holds_this => {
                        Err(Refusal::declined(code, message, "the change was not applied"))
                    }
                    _ => {
                        value.settled(recorded, invoice);
                        Ok(value)
                    }
                }
            }
        };
        self.finish_billed(tx, key.as_ref(), result, &encode).await
    }

    /// Stores the request's outcome under its key and commits `tx`.
    async fn finish_billed<T>(
        &self,
        tx: Tx,
        key: Option<&IdempotencyKey>,
        result: Result<T, Refusal>,
        encode: &impl Fn(&T) -> Vec<u8>,
    ) -> Result<Outcome<T>, AppError> {
        if let Some(key) = key {
            match &result {
                Ok(value) => tx.idempotency().complete(key, Some(encode(value)), None).await?,
                Err(error) => {
                    tx.idempotency()
                        .complete(key, None, Some(idempotency::encode_error(&error.clone().into())))
                        .await?
                }
            }
        }
        tx.commit().await?;
        Ok(Outcome::Done(result?))
    }

    /// A purchase whose first charge was declined: it ends now with its
    /// bundles, its invoice is void, and the business gets its default
    /// package back if the purchase had replaced it.
    async fn end_purchase(
        &self,
        tx: &Tx,
        subscription: &Subscription,
        invoice: &Invoice,
        outcome: &ChargeOutcome,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let ended = cancel(subscription, CancelTiming::Immediate, "first payment declined", now)?;
        let parent = ended.subscription.clone();
        let mut changes = Changes::default();
        for child in tx.subscriptions().children_for_update(&parent.id).await? {
            let followed = follow_parent(&child, &parent, now);
            changes.record_update(followed.subscription, &followed.events);
        }
        changes.record_update(ended.subscription, &ended.events);
        let voided = invoice.void();
        give_back_credit(tx, &voided).await?;
        changes.record_invoice_update(voided, "invoice.payment_failed");
        changes.record_charge_outcome(outcome);
        persist(tx, &mut changes, "CreateSubscription:charge", actor, now).await?;
        fall_back_to_default_package(tx, &parent, actor, now).await
    }
}
