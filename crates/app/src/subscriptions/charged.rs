//! Requests that may bill: the change and its invoice commit first, the
//! charge runs outside any transaction, and its outcome is recorded with the
//! request's idempotent response in a second transaction.
//!
//! A purchase commits INCOMPLETE (visible, not entitled) and is complete
//! once its charge succeeds. When the charge has no answer (the provider is
//! down, the answer was lost) the request answers with the purchase as
//! committed, INCOMPLETE, and the job retries the charge with the same key.
//! If the process dies between the two, the invoice is still due now and the
//! subscription's job charges it (looking the attempt up at the provider
//! first). Repeating a purchase then answers IDEMPOTENCY_KEY_IN_USE while
//! the first attempt could still be running, and after that the purchase
//! as committed (INCOMPLETE, or settled by then in `GetSubscription`);
//! never a second purchase.

use billing_domain::invoice::Invoice;
use billing_domain::subscription::{CancelTiming, EventType, Subscription, cancel, follow_parent};
use billing_domain::{DomainError, Reason};
use billing_provider_api::ChargeOutcome;
use billing_storage::Tx;
use chrono::{DateTime, Utc};

use super::changes::{Actor, Changes, persist};
use super::{complete_children, fall_back_to_default_package};
use crate::AppError;
use crate::charging::{ended, settle};
use crate::idempotency::{self, Outcome, RequestContext, Start};

/// A result that carries the subscription and the invoice a request made.
pub(crate) trait Billed {
    /// The invoice to collect now, if one is open.
    fn invoice_to_collect(&self) -> Option<&Invoice>;
    /// After the charge: the subscription and invoice as recorded.
    fn settled(&mut self, subscription: Subscription, invoice: Invoice);
    /// The subscription as it was before the change, to restore if the
    /// charge is declined (`None` for a purchase).
    fn before(&self) -> Option<&Subscription>;
    /// The subscription as the change left it.
    fn after(&self) -> &Subscription;
}

/// What a declined charge does to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnDecline {
    /// A purchase that is not paid does not happen: the subscription ends
    /// now, the invoice is void, and the request fails with PAYMENT_DECLINED.
    EndPurchase,
    /// A change charged now (an upgrade, more seats) that is not paid does
    /// not happen: the subscription is restored as it was, the invoice is
    /// void, and the request fails with PAYMENT_DECLINED. If another change
    /// came in between, the change stays and its invoice goes to dunning.
    Revert,
}

impl super::Subscriptions {
    /// Runs `change` idempotently, then collects the invoice it opened.
    pub(crate) async fn run_billed<T: Billed>(
        &self,
        context: &RequestContext,
        operation: &str,
        on_decline: OnDecline,
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
        // A purchase's answer as committed (INCOMPLETE): what a repeat gets
        // should this process die before the charge's outcome is recorded.
        if let (Some(key), OnDecline::EndPurchase) = (&key, on_decline) {
            tx.idempotency().complete_provisionally(key, encode(&value)).await?;
        }
        tx.commit().await?;

        let outcome = match self.charger.attempt(&invoice).await {
            Ok(outcome) => outcome,
            // A purchase whose charge has no answer: committed as
            // INCOMPLETE (not entitled), which is the request's outcome;
            // the job retries the charge with the same key.
            Err(error) if on_decline == OnDecline::EndPurchase => {
                tracing::warn!(invoice_id = %invoice.id, error = %error, "first charge unanswered; the purchase is incomplete");
                if let Some(key) = &key {
                    let tx = self.store.begin().await?;
                    tx.idempotency().complete(key, Some(encode(&value)), None).await?;
                    tx.commit().await?;
                }
                return Ok(Outcome::Done(value));
            }
            Err(error) => return Err(error),
        };
        let actor = Self::actor(context);
        let tx = self.store.begin().await?;
        let subscription = tx
            .subscriptions()
            .get_subscription_for_update(&invoice.subscription_id)
            .await?
            .ok_or_else(|| AppError::from(DomainError::new(Reason::Internal, "the billed subscription vanished")))?;
        let declined = matches!(outcome, ChargeOutcome::Declined { .. });
        // A change can be undone only if nothing else changed the
        // subscription since it committed.
        let revertible = value
            .before()
            .filter(|_| subscription.version == value.after().version)
            .cloned();
        let refusal = if declined && on_decline == OnDecline::EndPurchase {
            Some(
                self.end_purchase(&tx, &subscription, &invoice, &outcome, &actor, now)
                    .await?,
            )
        } else if let (true, OnDecline::Revert, Some(before)) = (declined, on_decline, revertible) {
            Some(
                self.revert_change(&tx, &subscription, before, &invoice, &outcome, operation, &actor, now)
                    .await?,
            )
        } else {
            let settlement = settle(&subscription, &invoice, &outcome, self.charger.policy(), now);
            let mut changes = Changes::default();
            let recorded = settlement.subscription.subscription.clone();
            changes.record_changed(
                settlement.subscription.subscription.clone(),
                &settlement.subscription.events,
            );
            changes.record_invoice_update(settlement.invoice.clone(), settlement.invoice_event);
            if ended(&settlement) {
                for child in tx.subscriptions().children_for_update(&recorded.id).await? {
                    let followed = follow_parent(&child, &recorded, now);
                    changes.record_update(followed.subscription, &followed.events);
                }
            }
            complete_children(&tx, &subscription, &recorded, &mut changes, now).await?;
            changes.record_charge_outcome(&outcome);
            persist(&tx, &changes, &format!("{operation}:charge"), &actor, now).await?;
            value.settled(recorded, settlement.invoice);
            None
        };
        if let Some(key) = &key {
            match &refusal {
                None => tx.idempotency().complete(key, Some(encode(&value)), None).await?,
                Some(error) => {
                    tx.idempotency()
                        .complete(key, None, Some(idempotency::encode_error(error)))
                        .await?
                }
            }
        }
        tx.commit().await?;
        match refusal {
            None => Ok(Outcome::Done(value)),
            Some(error) => Err(error.into()),
        }
    }

    /// A change whose charge was declined: the subscription as it was, its
    /// bundles as they were, the invoice void and its account credit given
    /// back.
    #[allow(clippy::too_many_arguments)]
    async fn revert_change(
        &self,
        tx: &Tx,
        current: &Subscription,
        before: Subscription,
        invoice: &Invoice,
        outcome: &ChargeOutcome,
        operation: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<DomainError, AppError> {
        let ChargeOutcome::Declined { code, message } = outcome else {
            return Err(DomainError::new(Reason::Internal, "a success is not a decline").into());
        };
        let mut restored = before;
        restored.version = current.version + 1;
        restored.update_time = now;
        let mut changes = Changes::default();
        let event = if restored.offering_id == current.offering_id {
            EventType::ComponentsUpdated
        } else {
            super::rebundle(tx, current, &restored, &mut changes, now).await?;
            EventType::PlanChanged
        };
        changes.record_changed(restored, &[event]);
        changes.record_invoice_update(invoice.void(), "invoice.payment_failed");
        changes.record_charge_outcome(outcome);
        if !invoice.draft.credit_applied.is_zero() {
            let balance = tx
                .billing()
                .credit_balance(&invoice.business_id, invoice.draft.currency)
                .await?;
            let given_back = balance
                .checked_add(invoice.draft.credit_applied)
                .map_err(DomainError::from)?;
            tx.billing()
                .set_credit_balance(&invoice.business_id, given_back)
                .await?;
        }
        persist(tx, &changes, &format!("{operation}:reverted"), actor, now).await?;
        Ok(DomainError::new(
            Reason::PaymentDeclined,
            format!("the payment was declined ({code}): {message}; the change was not applied"),
        ))
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
    ) -> Result<DomainError, AppError> {
        let ChargeOutcome::Declined { code, message } = outcome else {
            return Err(DomainError::new(Reason::Internal, "a success is not a decline").into());
        };
        let ended = cancel(subscription, CancelTiming::Immediate, "first payment declined", now)?;
        let parent = ended.subscription.clone();
        let mut changes = Changes::default();
        for child in tx.subscriptions().children_for_update(&parent.id).await? {
            let followed = follow_parent(&child, &parent, now);
            changes.record_update(followed.subscription, &followed.events);
        }
        changes.record_update(ended.subscription, &ended.events);
        changes.record_invoice_update(invoice.void(), "invoice.payment_failed");
        changes.record_charge_outcome(outcome);
        persist(tx, &changes, "CreateSubscription:charge", actor, now).await?;
        fall_back_to_default_package(tx, &parent, actor, now).await?;
        Ok(DomainError::new(
            Reason::PaymentDeclined,
            format!("the first payment was declined ({code}): {message}; nothing was bought"),
        ))
    }
}
