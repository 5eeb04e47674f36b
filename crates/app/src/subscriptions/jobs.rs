//! What one due job does for its subscription at the job's time (the pool
//! of workers that claims and leases jobs is `worker.rs`):
//!
//! 1. In one transaction: expiry of a canceled subscription (then the
//!    PACKAGE fallback), or the period end (pending change, next period,
//!    trial end) with its invoice, with bundled children following; or, when
//!    an invoice's charge attempt is due (a renewal's, or a dunning retry),
//!    just that.
//! 2. Outside any transaction: the charge attempt, if one is due.
//! 3. In one transaction: its outcome (paid and recovered, or dunning, or
//!    the end), and the subscription's next job.
//!
//! A crash between the steps leaves the job due again now; the attempt is
//! then looked up at the provider by its idempotency key before anything is
//! charged.

use std::sync::Arc;

use billing_domain::ids::SubscriptionId;
use billing_domain::invoice::Invoice;
use billing_domain::subscription::{
    EventType, SubscriptionState, drop_held_change, expire, follow_parent, incomplete_expired, renew,
};
use billing_provider_api::ChargeOutcome;
use billing_storage::{DueJob, OfferingKey, Store, Tx};
use chrono::{DateTime, Utc};

use super::changes::{Actor, Changes, job_due, persist};
use super::invoicing::{give_back_credit, period_invoice};
use super::worker::JobRunner;
use super::{fall_back_to_default_package, rebundle};
use crate::AppError;
use crate::charging::Charger;
use crate::clock::Clock;
use crate::queue::Lease;

/// What a job has to do after its lifecycle step.
enum Due {
    /// Charge this invoice.
    Charge(Invoice),
    /// Close this invoice of an ended subscription: paid if its charge went
    /// through, void if not.
    Close(Invoice),
}

fn system() -> Actor {
    Actor {
        name: "system".to_owned(),
        request_id: String::new(),
    }
}

impl JobRunner {
    pub(super) async fn run(&self, job: &DueJob) -> Result<(), AppError> {
        let now = self.clock.now().max(job.due_time);
        match self.advance(job, now).await? {
            None => Ok(()),
            Some(Due::Charge(invoice)) => {
                let outcome = self.charger.attempt(&invoice).await?;
                self.record(&invoice, &outcome, now, Lease::Job(job)).await
            }
            // An ended subscription's open invoice: paid if its charge went
            // through after all, void otherwise. Nothing new is charged.
            Some(Due::Close(invoice)) => match self.charger.look_up(&invoice).await? {
                Some(outcome @ ChargeOutcome::Succeeded { .. }) => {
                    self.record(&invoice, &outcome, now, Lease::Job(job)).await
                }
                Some(ChargeOutcome::Declined { .. }) | None => self.void_unpaid(&invoice, job, now).await,
            },
        }
    }

    /// Voids an ended subscription's open invoice whose charge never went
    /// through, and ends its job.
    async fn void_unpaid(&self, invoice: &Invoice, job: &DueJob, now: DateTime<Utc>) -> Result<(), AppError> {
        let tx = self.store.begin().await?;
        if !Lease::Job(job).holds(&tx).await? {
            return Ok(());
        }
        if let Some(current) = tx.billing().get_invoice(&invoice.id).await?
            && current.is_unpaid()
        {
            let mut changes = Changes::default();
            let voided = current.void();
            give_back_credit(&tx, &voided).await?;
            changes.record_invoice_update(voided, "invoice.payment_failed");
            persist(&tx, &mut changes, "job:void", &system(), now).await?;
        }
        tx.jobs().schedule(&invoice.subscription_id, None).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Step 1: the lifecycle work that is due, or the charge that is due.
    async fn advance(&self, job: &DueJob, now: DateTime<Utc>) -> Result<Option<Due>, AppError> {
        let id = &job.subscription_id;
        let tx = self.store.begin().await?;
        if !Lease::Job(job).holds(&tx).await? {
            return Ok(None);
        }
        let Some(subscription) = tx.subscriptions().get_subscription_for_update(id).await? else {
            tx.jobs().schedule(id, None).await?;
            tx.commit().await?;
            return Ok(None);
        };
        if !subscription.is_active()
            && let Some(invoice) = tx.billing().unpaid_invoice(id).await?
        {
            tx.commit().await?;
            return Ok(Some(Due::Close(invoice)));
        }
        if subscription.is_active()
            && subscription
                .incomplete_deadline()
                .is_some_and(|deadline| deadline <= now)
        {
            self.expire_incomplete(&tx, &subscription, now).await?;
            tx.commit().await?;
            tracing::info!(subscription_id = %id, "first charge never succeeded; the purchase expired");
            return Ok(None);
        }
        if let Some(held) = &subscription.held_change
            && held.expire_time <= now
        {
            self.expire_held(&tx, &subscription, now).await?;
            tx.commit().await?;
            tracing::info!(subscription_id = %id, "a change's charge never succeeded; it was dropped");
            return Ok(None);
        }
        if let Some(invoice) = tx.billing().unpaid_invoice(id).await?
            && invoice.next_attempt_time.is_some_and(|due| due <= now)
            && subscription.is_active()
        {
            tx.commit().await?;
            return Ok(Some(Due::Charge(invoice)));
        }
        if subscription.provider.is_engine() && subscription.state == SubscriptionState::Purchased {
            // Its provider renews and bills it; webhooks move it here.
            tx.jobs().schedule(id, None).await?;
            tx.commit().await?;
            return Ok(None);
        }
        let mut changes = Changes::default();
        let (action, mut transition) = match subscription.state {
            SubscriptionState::Canceled => ("job:expire", expire(&subscription, now)),
            SubscriptionState::Purchased => {
                let pending = match &subscription.pending_change {
                    Some(change) => tx.catalog().get_offering(OfferingKey::Id(&change.offering_id)).await?,
                    None => None,
                };
                let renewed = renew(&subscription, pending.as_ref(), now)?;
                if renewed.subscription.offering_id != subscription.offering_id {
                    rebundle(&tx, &subscription, &renewed.subscription, &mut changes, now).await?;
                }
                ("job:renew", renewed)
            }
            SubscriptionState::Expired => (
                "job:none",
                super::Transition {
                    subscription: subscription.clone(),
                    events: Vec::new(),
                },
            ),
        };
        if !transition.changed() {
            // Nothing due yet (the subscription changed since the job was set).
            let due = job_due(&tx, &subscription, now).await?;
            tx.jobs().schedule(&subscription.id, due).await?;
            tx.commit().await?;
            return Ok(None);
        }
        let mut to_charge = None;
        if transition.events.contains(&EventType::Renewed) {
            let offering = tx
                .catalog()
                .get_offering(OfferingKey::Id(&transition.subscription.offering_id))
                .await?;
            if let Some(offering) = offering
                && let Some(invoice) = period_invoice(&tx, &mut transition.subscription, &offering, now).await?
            {
                if invoice.next_attempt_time.is_some() {
                    to_charge = Some(invoice.clone());
                }
                changes.record_new_invoice(invoice);
            }
        }
        let parent = transition.subscription.clone();
        self.follow(&tx, &parent, &mut changes, now).await?;
        changes.record_update(transition.subscription, &transition.events);
        persist(&tx, &mut changes, action, &system(), now).await?;
        let to_charge = changes.issued(to_charge);
        if parent.state == SubscriptionState::Expired {
            fall_back_to_default_package(&tx, &parent, &system(), now).await?;
        }
        if to_charge.is_some() {
            // Due again at once until the charge's outcome is recorded, but
            // still this worker's: releasing the lease here let another
            // worker charge the same invoice while this one was charging it.
            tx.jobs()
                .hold(&parent.id, &self.owner, job, now, now + self.lease)
                .await?;
        }
        tx.commit().await?;
        tracing::info!(subscription_id = %parent.id, action, "job ran");
        Ok(to_charge.map(Due::Charge))
    }

    /// A purchase whose first charge did not succeed within the incomplete
    /// window: it ends (`INCOMPLETE_EXPIRED`) with its bundles, its invoice
    /// is void, and the business gets its default package back.
    async fn expire_incomplete(
        &self,
        tx: &Tx,
        subscription: &billing_domain::subscription::Subscription,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let ended = incomplete_expired(subscription, now);
        let parent = ended.subscription.clone();
        let mut changes = Changes::default();
        if let Some(invoice) = tx.billing().unpaid_invoice(&subscription.id).await? {
            let voided = invoice.void();
            give_back_credit(tx, &voided).await?;
            changes.record_invoice_update(voided, "invoice.payment_failed");
        }
        self.follow(tx, &parent, &mut changes, now).await?;
        changes.record_update(ended.subscription, &ended.events);
        persist(tx, &mut changes, "job:incomplete_expired", &system(), now).await?;
        crate::checkout::settle_pending_sessions(tx, &parent, false, now).await?;
        fall_back_to_default_package(tx, &parent, &system(), now).await
    }

    /// A change charged now whose charge did not succeed within the window:
    /// it is dropped (the plan stays as it is) and its invoice is void.
    async fn expire_held(
        &self,
        tx: &Tx,
        subscription: &billing_domain::subscription::Subscription,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let mut changes = Changes::default();
        if let Some(held) = &subscription.held_change
            && let Some(invoice) = tx.billing().get_invoice(&held.invoice_id).await?
            && invoice.is_unpaid()
        {
            let voided = invoice.void();
            give_back_credit(tx, &voided).await?;
            changes.record_invoice_update(voided, "invoice.payment_failed");
        }
        let dropped = drop_held_change(subscription, now);
        changes.record_changed(dropped.clone(), &[]);
        persist(tx, &mut changes, "job:change_expired", &system(), now).await?;
        crate::checkout::settle_pending_sessions(tx, &dropped, false, now).await
    }

    /// Bundled children follow a changed parent.
    async fn follow(
        &self,
        tx: &Tx,
        parent: &billing_domain::subscription::Subscription,
        changes: &mut Changes,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let already: Vec<SubscriptionId> = changes.updated.iter().map(|child| child.id.clone()).collect();
        for child in tx.subscriptions().children_for_update(&parent.id).await? {
            if already.contains(&child.id) {
                continue;
            }
            let followed = follow_parent(&child, parent, now);
            changes.record_update(followed.subscription, &followed.events);
        }
        Ok(())
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn charger(&self) -> &Charger {
        &self.charger
    }

    /// Step 3: a charge attempt's outcome (also when a provider's webhook
    /// tells it), written only while `lease` holds the work.
    pub(crate) async fn record(
        &self,
        attempted: &Invoice,
        outcome: &ChargeOutcome,
        now: DateTime<Utc>,
        lease: Lease<'_>,
    ) -> Result<(), AppError> {
        let tx = self.store.begin().await?;
        if !lease.holds(&tx).await? {
            return Ok(());
        }
        let Some(subscription) = tx
            .subscriptions()
            .get_subscription_for_update(&attempted.subscription_id)
            .await?
        else {
            return Ok(());
        };
        let current = tx.billing().get_invoice(&attempted.id).await?;
        let Some(invoice) = current.filter(|invoice| invoice.attempt_count == attempted.attempt_count) else {
            // Another worker recorded this attempt already.
            return Ok(());
        };
        let charged = super::charged::Charged {
            subscription: &subscription,
            invoice: &invoice,
            outcome,
        };
        super::charged::record_outcome(&tx, charged, self.charger.policy(), "job:charge", &system(), now).await?;
        tx.commit().await?;
        Ok(())
    }
}
