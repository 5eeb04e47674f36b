//! Changing a subscription: its plan, its components, canceling and
//! reactivating it, with its bundled children following.

use billing_domain::Reason;
use billing_domain::error::Violations;
use billing_domain::ids::SubscriptionId;
use billing_domain::invoice::{Invoice, component_change_lines, plan_change_lines};
use billing_domain::period::utc_date;
use billing_domain::subscription::{
    CancelTiming, EventType, Subscription, SubscriptionState, Transition, cancel, change_plan, charge_succeeded,
    follow_parent, hold_change, reactivate, update_components,
};
use billing_domain::text::Code;
use billing_storage::{OfferingKey, Tx};
use chrono::{DateTime, Utc};

use super::changes::{Actor, Changes, default_subscriptions, new_subscription_id, persist};
use super::engine;
use super::invoicing::issue_invoice;
use super::{
    ComponentsRequest, ComponentsUpdated, PlanChangeRequest, PlanChanged, Subscriptions, bundled_offerings,
    offering_not_found, open_invoice, parse_subscription_id, require_payment_method,
};
use crate::error::AppError;
use crate::idempotency::{Outcome, RequestContext};

/// A plan or components change as decided, before it is written.
struct DecidedChange<'a> {
    before: &'a Subscription,
    after: Subscription,
    events: &'a [EventType],
    /// What it bills now, if anything.
    invoice: Option<Invoice>,
}

/// A plan change whose subscription id and offering code were checked.
pub(super) struct CheckedPlanChange<'a> {
    id: SubscriptionId,
    code: Code,
    request: &'a PlanChangeRequest,
}

impl<'a> CheckedPlanChange<'a> {
    /// Names every bad field at once.
    pub(super) fn check(request: &'a PlanChangeRequest) -> Result<Self, AppError> {
        let mut violations = Violations::new();
        let id = violations.check("subscription_id", SubscriptionId::parse(&request.subscription_id));
        let code = violations.check("offering_code", Code::parse(&request.offering_code));
        match (id, code) {
            (Some(id), Some(code)) => Ok(CheckedPlanChange { id, code, request }),
            _ => Err(violations.into_error().into()),
        }
    }
}

impl Subscriptions {
    pub async fn change_plan(
        &self,
        context: &RequestContext,
        request: &PlanChangeRequest,
        encode: impl Fn(&PlanChanged) -> Vec<u8>,
    ) -> Result<Outcome<PlanChanged>, AppError> {
        let request = CheckedPlanChange::check(request)?;
        let actor = Self::actor(context);
        self.run_billed(context, "ChangePlan", encode, async |tx: &Tx, now| {
            self.change_in(tx, &actor, &request, false, now).await
        })
        .await
    }

    /// A plan change and its proration invoice, in `tx`.
    pub(super) async fn change_in(
        &self,
        tx: &Tx,
        actor: &Actor,
        request: &CheckedPlanChange<'_>,
        preview: bool,
        now: DateTime<Utc>,
    ) -> Result<PlanChanged, AppError> {
        let CheckedPlanChange { id, code, request } = request;
        let subscription = Self::load_for_change(tx, id, &request.etag).await?;
        let target = tx
            .catalog()
            .get_offering(OfferingKey::Code(code))
            .await?
            .ok_or_else(|| offering_not_found(code))?;
        let available = tx
            .catalog()
            .get_directory_offering(&subscription.directory_id, &target.id)
            .await?
            .is_some();
        let change = change_plan(&subscription, &target, request.timing, available, now)?;
        let mut after = change.subscription;
        let mut invoice = None;
        let engine_billed = subscription.provider.is_engine();
        if engine_billed {
            let (product_handle, price_point_handle) = engine::product_handles(&target)?;
            let op = engine::EngineOp::ChangePlan {
                product_handle,
                price_point_handle,
                delayed: !change.applied_now,
            };
            engine::enqueue(tx, &subscription.id, &op, now).await?;
        }
        let switched = change.applied_now && after.offering_id != subscription.offering_id;
        if switched && request.prorate && !subscription.in_trial(now) && !engine_billed {
            let old_offering = tx
                .catalog()
                .get_offering(OfferingKey::Id(&subscription.offering_id))
                .await?
                .ok_or_else(|| offering_not_found(&subscription.offering_code))?;
            let lines = plan_change_lines(&subscription, &old_offering, &after, &target, utc_date(now))?;
            invoice = issue_invoice(tx, &mut after, lines, false, now).await?;
        }
        if preview {
            return Ok(PlanChanged {
                subscription: after,
                effective_time: change.effective_time,
                invoice,
            });
        }
        let decided = DecidedChange {
            before: &subscription,
            after,
            events: &change.events,
            invoice,
        };
        let (subscription, invoice) = Self::record_decided(tx, decided, "ChangePlan", actor, now).await?;
        Ok(PlanChanged {
            subscription,
            effective_time: change.effective_time,
            invoice,
        })
    }

    /// Writes a decided plan or components change. One that bills now needs
    /// a payment method and is held until its invoice is paid (the
    /// subscription stays as it is); any other applies now, with its bundles.
    /// Returns the subscription as recorded and the invoice as written, with
    /// its number.
    async fn record_decided(
        tx: &Tx,
        decided: DecidedChange<'_>,
        action: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(Subscription, Option<Invoice>), AppError> {
        let DecidedChange {
            before,
            after,
            events,
            invoice,
        } = decided;
        require_payment_method(tx, invoice.as_ref()).await?;
        let mut changes = Changes::default();
        let recorded = match open_invoice(invoice.as_ref()) {
            Some(to_collect) => {
                let held = hold_change(before, &after, to_collect.id.clone(), now);
                changes.record_changed(held.clone(), &[]);
                held
            }
            None => {
                if after.offering_id != before.offering_id {
                    rebundle(tx, before, &after, &mut changes, now).await?;
                }
                changes.record_update(after.clone(), events);
                after
            }
        };
        if let Some(invoice) = invoice.clone() {
            changes.record_new_invoice(invoice);
        }
        persist(tx, &mut changes, action, actor, now).await?;
        Ok((recorded, changes.issued(invoice)))
    }

    pub async fn update_components(
        &self,
        context: &RequestContext,
        request: &ComponentsRequest,
        encode: impl Fn(&ComponentsUpdated) -> Vec<u8>,
    ) -> Result<Outcome<ComponentsUpdated>, AppError> {
        let id = parse_subscription_id(&request.subscription_id)?;
        let actor = Self::actor(context);
        self.run_billed(context, "UpdateComponents", encode, async |tx: &Tx, now| {
            self.components_in(tx, &actor, &id, request, false, now).await
        })
        .await
    }

    /// A components update and its proration invoice, in `tx`.
    pub(super) async fn components_in(
        &self,
        tx: &Tx,
        actor: &Actor,
        id: &SubscriptionId,
        request: &ComponentsRequest,
        preview: bool,
        now: DateTime<Utc>,
    ) -> Result<ComponentsUpdated, AppError> {
        let components = &request.components;
        let subscription = Self::load_for_change(tx, id, &request.etag).await?;
        let offering = tx
            .catalog()
            .get_offering(OfferingKey::Id(&subscription.offering_id))
            .await?
            .ok_or_else(|| offering_not_found(&subscription.offering_code))?;
        let transition = update_components(&subscription, &offering, components, now)?;
        let mut after = transition.subscription;
        let engine_billed = subscription.provider.is_engine();
        if engine_billed {
            for op in engine::component_ops(&subscription.components, &after.components) {
                engine::enqueue(tx, &subscription.id, &op, now).await?;
            }
        }
        let invoice = if subscription.in_trial(now) || engine_billed {
            None
        } else {
            let lines = component_change_lines(
                &subscription,
                &offering,
                &subscription.components,
                &after.components,
                utc_date(now),
            )?;
            issue_invoice(tx, &mut after, lines, false, now).await?
        };
        if preview {
            return Ok(ComponentsUpdated {
                subscription: after,
                invoice,
            });
        }
        let decided = DecidedChange {
            before: &subscription,
            after,
            events: &transition.events,
            invoice,
        };
        let (subscription, invoice) = Self::record_decided(tx, decided, "UpdateComponents", actor, now).await?;
        Ok(ComponentsUpdated { subscription, invoice })
    }

    pub async fn cancel(
        &self,
        context: &RequestContext,
        subscription_id: &str,
        timing: CancelTiming,
        reason: &str,
        etag: &str,
        encode: impl FnOnce(&Subscription) -> Vec<u8>,
    ) -> Result<Outcome<Subscription>, AppError> {
        let mut violations = Violations::new();
        let id = violations.check("subscription_id", SubscriptionId::parse(subscription_id));
        if reason.chars().count() > 500 {
            violations.push("reason", Reason::FieldInvalid, "must be at most 500 characters");
        }
        let (Some(id), true) = (id, violations.is_empty()) else {
            return Err(violations.into_error().into());
        };
        let actor = Self::actor(context);
        let outcome = self
            .mutate(context, "Cancel", encode, async |tx: &Tx, now| {
                let subscription = Self::load_for_change(tx, &id, etag).await?;
                let transition = cancel(&subscription, timing, reason, now)?;
                if subscription.provider.is_engine() && transition.changed() {
                    let op = engine::EngineOp::Cancel {
                        at_period_end: timing == CancelTiming::EndOfPeriod,
                        reason: reason.to_owned(),
                    };
                    engine::enqueue(tx, &subscription.id, &op, now).await?;
                }
                let updated = self.apply_with_children(tx, transition, "Cancel", &actor, now).await?;
                Ok(updated)
            })
            .await?;
        self.sync_engine(outcome.done()).await;
        Ok(outcome)
    }

    pub async fn reactivate(
        &self,
        context: &RequestContext,
        subscription_id: &str,
        etag: &str,
        encode: impl FnOnce(&Subscription) -> Vec<u8>,
    ) -> Result<Outcome<Subscription>, AppError> {
        let id = parse_subscription_id(subscription_id)?;
        let actor = Self::actor(context);
        let outcome = self
            .mutate(context, "Reactivate", encode, async |tx: &Tx, now| {
                let subscription = Self::load_for_change(tx, &id, etag).await?;
                let transition = reactivate(&subscription, now)?;
                if subscription.provider.is_engine() && transition.changed() {
                    engine::enqueue(tx, &subscription.id, &engine::EngineOp::Reactivate, now).await?;
                }
                self.apply_with_children(tx, transition, "Reactivate", &actor, now)
                    .await
            })
            .await?;
        self.sync_engine(outcome.done()).await;
        Ok(outcome)
    }

    /// Persists a parent's transition with its children following it, and
    /// the PACKAGE fallback if it ended.
    async fn apply_with_children(
        &self,
        tx: &Tx,
        transition: Transition,
        action: &str,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Subscription, AppError> {
        let parent = transition.subscription.clone();
        let changed = transition.changed();
        let mut changes = Changes::default();
        if changed {
            for child in tx.subscriptions().children_for_update(&parent.id).await? {
                let followed = follow_parent(&child, &parent, now);
                changes.record_update(followed.subscription, &followed.events);
            }
        }
        changes.record_update(transition.subscription, &transition.events);
        // Ended now: what it still owed is no longer collected. A charge for
        // it may be under way, though, or have gone through unrecorded: its
        // job (due now) asks the provider first, then records it paid or
        // voids it.
        persist(tx, &mut changes, action, actor, now).await?;
        if parent.state == SubscriptionState::Expired && changed {
            fall_back_to_default_package(tx, &parent, actor, now).await?;
        }
        Ok(parent)
    }
}

/// A purchase whose first charge succeeded: its bundled children, incomplete
/// with it, are complete too.
pub(super) async fn complete_children(
    tx: &Tx,
    before: &Subscription,
    after: &Subscription,
    changes: &mut Changes,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if !before.is_incomplete() || after.is_incomplete() || !after.is_active() {
        return Ok(());
    }
    for child in tx.subscriptions().children_for_update(&after.id).await? {
        if child.is_incomplete() {
            let completed = charge_succeeded(&child, now);
            changes.record_changed(completed.subscription, &completed.events);
        }
    }
    Ok(())
}

/// After a PACKAGE subscription ended, gives the business its directory's
/// default package if it holds no package any more.
pub(super) async fn fall_back_to_default_package(
    tx: &Tx,
    ended: &Subscription,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if ended.offering_type != billing_domain::catalog::OfferingType::Package
        || ended.bundled_from_subscription_id.is_some()
    {
        return Ok(());
    }
    let Some(business) = tx.subscriptions().get_business(&ended.business_id).await? else {
        return Ok(());
    };
    let mut changes = default_subscriptions(tx, &business, ended.buyer_id.as_str(), true, now).await?;
    if !changes.inserted.is_empty() {
        tracing::info!(business_id = %business.business_id, ended = %ended.id, "fell back to the default package");
        persist(tx, &mut changes, "DefaultPackageFallback", actor, now).await?;
    }
    Ok(())
}

/// Adds the children the new plan bundles and ends those it no longer does.
pub(super) async fn rebundle(
    tx: &Tx,
    before: &Subscription,
    after: &Subscription,
    changes: &mut Changes,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let new_offering = tx
        .catalog()
        .get_offering(OfferingKey::Id(&after.offering_id))
        .await?
        .ok_or_else(|| offering_not_found(&after.offering_code))?;
    let wanted = bundled_offerings(tx, &new_offering).await?;
    let children = tx.subscriptions().children_for_update(&before.id).await?;
    for child in children.iter().filter(|child| child.is_active()) {
        if !wanted.iter().any(|offering| offering.id == child.offering_id) {
            let ended = billing_domain::subscription::end_bundled(child, now);
            changes.record_update(ended.subscription, &ended.events);
        }
    }
    for offering in &wanted {
        let held = children
            .iter()
            .any(|child| child.is_active() && child.offering_id == offering.id);
        if !held {
            let child = billing_domain::subscription::bundle_child(after, offering, new_subscription_id());
            changes
                .events
                .push((billing_domain::subscription::EventType::Started, child.id.clone()));
            changes.inserted.push(child);
        }
    }
    Ok(())
}
