//! Subscription use cases.

mod changed_preview;
mod changes;
mod charged;
mod engine;
mod inbound;
mod invoicing;
mod jobs;
mod worker;

use std::sync::Arc;

use billing_domain::catalog::Offering;
use billing_domain::ids::{OfferingId, SubscriptionId};
use billing_domain::invoice::{Invoice, component_change_lines, plan_change_lines};
use billing_domain::period::utc_date;
use billing_domain::subscription::{
    Business, CancelTiming, ChangeTiming, ComponentQuantityDraft, CouponChoice, Entitlement, EventType,
    NewSubscription, PaymentStatus, SubscriberStatus, Subscription, SubscriptionState, Transition, cancel, change_plan,
    charge_succeeded, create_subscription, follow_parent, hold_change, reactivate, update_components,
};
use billing_domain::text::{Code, ExternalId};
use billing_domain::{DomainError, Reason};
use billing_storage::{AuditEntry, OfferingKey, Store, SubscriptionFilter, Tx};
pub use changed_preview::{PreviewRequest, Previewed};
use chrono::{DateTime, Utc};
pub use worker::{DEFAULT_LEASE, JobRunner, JobStats};

use self::changes::{Actor, Changes, default_subscriptions, new_subscription_id, persist};
use self::charged::Billed;
use self::invoicing::{issue_invoice, period_invoice};
use crate::charging::Charger;
use crate::clock::Clock;
use crate::error::AppError;
use crate::idempotency::{self, Outcome, RequestContext, Start};
use crate::paging::{Page, PageParams, PageRequest};
use crate::providers::Biller;

/// What ProvisionBusiness returns.
#[derive(Clone, Debug)]
pub struct Provisioned {
    pub business: Business,
    pub default_subscriptions: Vec<Subscription>,
}

/// What CreateSubscription returns.
#[derive(Clone, Debug)]
pub struct Purchase {
    pub subscription: Subscription,
    pub bundled_subscriptions: Vec<Subscription>,
    /// The first invoice, if anything was billed.
    pub invoice: Option<Invoice>,
}

/// What ChangePlan returns.
#[derive(Clone, Debug)]
pub struct PlanChanged {
    pub subscription: Subscription,
    pub effective_time: DateTime<Utc>,
    /// The proration invoice, if the change applied now and billed anything.
    pub invoice: Option<Invoice>,
}

/// What UpdateComponents returns.
#[derive(Clone, Debug)]
pub struct ComponentsUpdated {
    pub subscription: Subscription,
    pub invoice: Option<Invoice>,
}

fn open_invoice(invoice: Option<&Invoice>) -> Option<&Invoice> {
    invoice.filter(|invoice| invoice.next_attempt_time.is_some())
}

/// Results that carry the subscription and the invoice a request made.
macro_rules! billed {
    ($($result:ty),+) => {
        $(
            impl Billed for $result {
                fn invoice_to_collect(&self) -> Option<&Invoice> {
                    open_invoice(self.invoice.as_ref())
                }

                fn settled(&mut self, subscription: Subscription, invoice: Invoice) {
                    self.subscription = subscription;
                    self.invoice = Some(invoice);
                }
            }
        )+
    };
}

billed!(Purchase, PlanChanged, ComponentsUpdated);

/// A purchase as a client sent it.
#[derive(Clone, Debug, Default)]
pub struct PurchaseRequest {
    pub business_id: String,
    pub buyer_id: String,
    pub offering: OfferingRef,
    pub currency_code: String,
    pub components: Vec<ComponentQuantityDraft>,
    pub coupon_code: String,
    pub sponsored: bool,
}

/// How a request names an offering.
#[derive(Clone, Debug, Default)]
pub enum OfferingRef {
    Code(String),
    Id(String),
    #[default]
    Missing,
}

/// ListSubscriptions filters as a client sent them.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub business_id: String,
    pub directory_id: String,
    pub states: Vec<SubscriptionState>,
    pub offering_code: String,
    pub active_only: bool,
}

#[derive(Clone, Debug)]
pub struct Subscriptions {
    store: Store,
    clock: Arc<dyn Clock>,
    charger: Charger,
}

impl Subscriptions {
    pub fn new(store: Store, clock: Arc<dyn Clock>, charger: Charger) -> Self {
        Subscriptions { store, clock, charger }
    }

    fn actor(context: &RequestContext) -> Actor {
        Actor {
            name: context.caller.clone(),
            request_id: context.request_id.clone(),
        }
    }

    /// Registers a business in its directory and gives it the directory's
    /// default offerings as free subscriptions. Provisioning again returns
    /// the business as it is.
    pub async fn provision_business(
        &self,
        context: &RequestContext,
        business_id: &str,
        directory_id: &str,
        buyer_id: &str,
        encode: impl FnOnce(&Provisioned) -> Vec<u8>,
    ) -> Result<Outcome<Provisioned>, AppError> {
        let business_id = ExternalId::parse(business_id).map_err(|error| error.prefixed("business_id"))?;
        let directory_id = ExternalId::parse(directory_id).map_err(|error| error.prefixed("directory_id"))?;
        ExternalId::parse(buyer_id).map_err(|error| error.prefixed("buyer_id"))?;
        let now = self.clock.now();
        let (tx, key) = match idempotency::start(&self.store, context, "ProvisionBusiness", now).await? {
            Start::Replay(response) => return Ok(Outcome::Replayed(response)),
            Start::Run(tx, key) => (tx, key),
        };
        let result = self
            .provision_in(&tx, context, business_id, directory_id, buyer_id, now)
            .await;
        idempotency::finish(&self.store, tx, key, result, encode, now).await
    }

    async fn provision_in(
        &self,
        tx: &Tx,
        context: &RequestContext,
        business_id: ExternalId,
        directory_id: ExternalId,
        buyer_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Provisioned, AppError> {
        tx.lock(&format!("business:{business_id}")).await?;
        if let Some(business) = tx.subscriptions().get_business(&business_id).await? {
            if business.directory_id != directory_id {
                return Err(DomainError::new(
                    Reason::BusinessDirectoryMismatch,
                    format!(
                        "business {business_id} was provisioned in directory {}",
                        business.directory_id
                    ),
                )
                .into());
            }
            let defaults = tx
                .subscriptions()
                .business_subscriptions(&business_id)
                .await?
                .into_iter()
                .filter(|held| held.is_active() && held.payment_type == billing_domain::subscription::PaymentType::Free)
                .collect();
            return Ok(Provisioned {
                business,
                default_subscriptions: defaults,
            });
        }
        let business = Business {
            business_id,
            directory_id,
            create_time: now,
        };
        tx.subscriptions().insert_business(&business).await?;
        let mut changes = default_subscriptions(tx, &business, buyer_id, false, now).await?;
        persist(tx, &mut changes, "ProvisionBusiness", &Self::actor(context), now).await?;
        Ok(Provisioned {
            business,
            default_subscriptions: changes.inserted,
        })
    }

    /// Buys an offering for a business, charging its first invoice.
    pub async fn create_subscription(
        &self,
        context: &RequestContext,
        request: &PurchaseRequest,
        encode: impl Fn(&Purchase) -> Vec<u8>,
    ) -> Result<Outcome<Purchase>, AppError> {
        let business_id = ExternalId::parse(&request.business_id).map_err(|error| error.prefixed("business_id"))?;
        let actor = Self::actor(context);
        let outcome = self
            .run_billed(context, "CreateSubscription", encode, async |tx: &Tx, now| {
                self.create_in(tx, &actor, &business_id, request, false, now).await
            })
            .await?;
        self.sync_engine(outcome.done().map(|purchase| &purchase.subscription))
            .await;
        Ok(outcome)
    }

    /// Runs what an engine provider is owed now, after a request that
    /// changed an engine-billed subscription committed; what fails (and what
    /// a replayed request owes) is run by the job.
    async fn sync_engine(&self, changed: Option<&Subscription>) {
        if changed.is_none_or(|subscription| subscription.provider != engine::MAXIO) {
            return;
        }
        let Some(engine) = self.charger.providers().engine() else {
            return;
        };
        if let Err(error) = engine::run_due(&self.store, Some(&engine), self.clock.now(), &|| false).await {
            tracing::warn!(error = %error, "provider operations will be retried by the job");
        }
    }

    /// The purchase, its first invoice, and everything they write, in `tx`.
    /// `preview` skips only the payment-method requirement.
    async fn create_in(
        &self,
        tx: &Tx,
        actor: &Actor,
        business_id: &ExternalId,
        request: &PurchaseRequest,
        preview: bool,
        now: DateTime<Utc>,
    ) -> Result<Purchase, AppError> {
        // One purchase per business at a time: the family rule spans rows.
        tx.lock(&format!("business:{business_id}")).await?;
        let business = tx.subscriptions().get_business(business_id).await?.ok_or_else(|| {
            AppError::from(DomainError::new(
                Reason::BusinessNotProvisioned,
                format!("business {business_id} is not provisioned; call ProvisionBusiness first"),
            ))
        })?;
        let offering = find_offering(tx, &request.offering).await?;
        let available = tx
            .catalog()
            .get_directory_offering(&business.directory_id, &offering.id)
            .await?
            .is_some();
        let coupon_code = request.coupon_code.trim();
        let coupon = if coupon_code.is_empty() {
            None
        } else {
            match Code::parse(coupon_code) {
                Ok(code) => tx.catalog().get_coupon_by_code(&code).await?,
                Err(_) => None,
            }
        };
        let coupon_choice = match (&coupon, coupon_code.is_empty()) {
            (_, true) => CouponChoice::None,
            (Some(coupon), false) => CouponChoice::Found(coupon),
            (None, false) => CouponChoice::Unknown(coupon_code),
        };
        let bundled = bundled_offerings(tx, &offering).await?;
        let history = tx.subscriptions().business_subscriptions(business_id).await?;
        let input = NewSubscription {
            business: &business,
            buyer_id: &request.buyer_id,
            offering: &offering,
            currency_code: &request.currency_code,
            components: &request.components,
            coupon: coupon_choice,
            sponsored: request.sponsored,
            available_in_directory: available,
            family_history: &history,
            bundled_offerings: &bundled,
            now,
        };
        let mut created = create_subscription(&input, new_subscription_id)?;
        if let Some(code) = &created.subscription.coupon_code {
            tx.catalog().record_coupon_redemption(code).await?;
        }
        // A directory billed by an engine provider: the provider bills, this
        // service mirrors; the create is owed to it.
        let engine_op = match self.charger.providers().biller_for(&business.directory_id)? {
            Biller::Engine(_) => {
                let op = engine::create_op(&created.subscription, &offering)?;
                created.subscription.provider = engine::MAXIO.to_owned();
                for child in &mut created.bundled {
                    child.provider = engine::MAXIO.to_owned();
                }
                Some(op)
            }
            Biller::Gateway(_) => None,
        };
        let invoice = if created.subscription.in_trial(now) || engine_op.is_some() {
            None
        } else {
            period_invoice(tx, &mut created.subscription, &offering, now).await?
        };
        if !preview {
            require_payment_method(tx, invoice.as_ref()).await?;
            // Charged after the commit: until it is paid the purchase is
            // visible but entitles to nothing, its bundles neither.
            if invoice
                .as_ref()
                .is_some_and(|invoice| invoice.next_attempt_time.is_some())
            {
                created.subscription.payment_status = PaymentStatus::Incomplete;
                for child in &mut created.bundled {
                    child.payment_status = PaymentStatus::Incomplete;
                }
                // Not started until paid: `subscription.started` comes with
                // the first charge's success, for it and its bundles.
                created.events.retain(|(event, _)| *event != EventType::Started);
            }
        }
        let mut purchase = Purchase {
            subscription: created.subscription.clone(),
            bundled_subscriptions: created.bundled.clone(),
            invoice: invoice.clone(),
        };
        let mut changes = Changes::default();
        changes.record_created(created);
        if let Some(invoice) = invoice {
            changes.record_new_invoice(invoice);
        }
        persist(tx, &mut changes, "CreateSubscription", actor, now).await?;
        purchase.invoice = changes.issued(purchase.invoice);
        if let Some(op) = engine_op {
            engine::enqueue(tx, &purchase.subscription.id, &op, now).await?;
        }
        Ok(purchase)
    }

    pub async fn get_subscription(&self, subscription_id: &str) -> Result<Subscription, AppError> {
        let id = parse_subscription_id(subscription_id)?;
        self.store
            .subscriptions()
            .get_subscription(&id)
            .await?
            .ok_or_else(|| subscription_not_found(&id))
    }

    pub async fn list_subscriptions(
        &self,
        filter: &ListFilter,
        params: &PageParams,
    ) -> Result<Page<Subscription>, AppError> {
        let optional_id = |text: &str, field: &str| -> Result<Option<ExternalId>, AppError> {
            if text.is_empty() {
                return Ok(None);
            }
            Ok(Some(ExternalId::parse(text).map_err(|error| error.prefixed(field))?))
        };
        let offering_code = if filter.offering_code.is_empty() {
            None
        } else {
            Some(Code::parse(&filter.offering_code).map_err(|error| error.prefixed("offering_code"))?)
        };
        let storage_filter = SubscriptionFilter {
            business_id: optional_id(&filter.business_id, "business_id")?,
            directory_id: optional_id(&filter.directory_id, "directory_id")?,
            states: filter.states.clone(),
            offering_code,
            active_only: filter.active_only,
        };
        let states: Vec<&str> = filter.states.iter().map(|state| state.as_str()).collect();
        let scope = format!(
            "subscriptions|{}|{}|{}|{}|{}",
            filter.business_id,
            filter.directory_id,
            states.join(","),
            filter.offering_code,
            filter.active_only
        );
        let request = PageRequest::parse(params, scope)?;
        let rows = self
            .store
            .subscriptions()
            .list_subscriptions(&storage_filter, request.after.as_deref(), request.fetch_limit())
            .await?;
        Ok(request.page(rows, |subscription| subscription.id.as_str()))
    }

    /// Loads and locks a subscription for a change, checking its etag.
    async fn load_for_change(tx: &Tx, id: &SubscriptionId, etag: &str) -> Result<Subscription, AppError> {
        let subscription = tx
            .subscriptions()
            .get_subscription_for_update(id)
            .await?
            .ok_or_else(|| subscription_not_found(id))?;
        if !etag.is_empty() && etag != subscription.etag() {
            return Err(DomainError::new(
                Reason::EtagMismatch,
                format!(
                    "subscription {id} changed since etag {etag:?} was read (it is now {:?}); reload and retry",
                    subscription.etag()
                ),
            )
            .into());
        }
        Ok(subscription)
    }

    /// Runs a change of one subscription idempotently.
    async fn mutate<T>(
        &self,
        context: &RequestContext,
        operation: &str,
        encode: impl FnOnce(&T) -> Vec<u8>,
        change: impl AsyncFnOnce(&Tx, DateTime<Utc>) -> Result<T, AppError>,
    ) -> Result<Outcome<T>, AppError> {
        let now = self.clock.now();
        idempotency::run(&self.store, context, operation, now, encode, async |tx: &Tx| {
            change(tx, now).await
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn change_plan(
        &self,
        context: &RequestContext,
        subscription_id: &str,
        offering_code: &str,
        timing: ChangeTiming,
        prorate: bool,
        etag: &str,
        encode: impl Fn(&PlanChanged) -> Vec<u8>,
    ) -> Result<Outcome<PlanChanged>, AppError> {
        let id = parse_subscription_id(subscription_id)?;
        let code = Code::parse(offering_code).map_err(|error| error.prefixed("offering_code"))?;
        let actor = Self::actor(context);
        let outcome = self
            .run_billed(context, "ChangePlan", encode, async |tx: &Tx, now| {
                self.change_in(tx, &actor, &id, &code, timing, prorate, etag, false, now)
                    .await
            })
            .await?;
        self.sync_engine(outcome.done().map(|changed| &changed.subscription))
            .await;
        Ok(outcome)
    }

    /// A plan change and its proration invoice, in `tx`.
    #[allow(clippy::too_many_arguments)]
    async fn change_in(
        &self,
        tx: &Tx,
        actor: &Actor,
        id: &SubscriptionId,
        code: &Code,
        timing: ChangeTiming,
        prorate: bool,
        etag: &str,
        preview: bool,
        now: DateTime<Utc>,
    ) -> Result<PlanChanged, AppError> {
        let subscription = Self::load_for_change(tx, id, etag).await?;
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
        let change = change_plan(&subscription, &target, timing, available, now)?;
        let mut after = change.subscription;
        let mut invoice = None;
        let engine_billed = subscription.provider == engine::MAXIO;
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
        if switched && prorate && !subscription.in_trial(now) && !engine_billed {
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
        require_payment_method(tx, invoice.as_ref()).await?;
        let mut changes = Changes::default();
        let recorded = Self::hold_or_apply(
            tx,
            &subscription,
            after,
            &change.events,
            invoice.as_ref(),
            &mut changes,
            now,
        )
        .await?;
        let mut result = PlanChanged {
            subscription: recorded,
            effective_time: change.effective_time,
            invoice: invoice.clone(),
        };
        if let Some(invoice) = invoice {
            changes.record_new_invoice(invoice);
        }
        persist(tx, &mut changes, "ChangePlan", actor, now).await?;
        result.invoice = changes.issued(result.invoice);
        Ok(result)
    }

    /// A change that bills now is held until its invoice is paid (the
    /// subscription stays as it is); any other applies now, with its
    /// bundles. Returns the subscription as recorded in `changes`.
    async fn hold_or_apply(
        tx: &Tx,
        before: &Subscription,
        after: Subscription,
        events: &[EventType],
        invoice: Option<&Invoice>,
        changes: &mut Changes,
        now: DateTime<Utc>,
    ) -> Result<Subscription, AppError> {
        if let Some(to_collect) = open_invoice(invoice) {
            let held = hold_change(before, &after, to_collect.id.clone(), now);
            changes.record_changed(held.clone(), &[]);
            return Ok(held);
        }
        if after.offering_id != before.offering_id {
            rebundle(tx, before, &after, changes, now).await?;
        }
        changes.record_update(after.clone(), events);
        Ok(after)
    }

    pub async fn update_components(
        &self,
        context: &RequestContext,
        subscription_id: &str,
        components: &[ComponentQuantityDraft],
        etag: &str,
        encode: impl Fn(&ComponentsUpdated) -> Vec<u8>,
    ) -> Result<Outcome<ComponentsUpdated>, AppError> {
        let id = parse_subscription_id(subscription_id)?;
        let actor = Self::actor(context);
        let outcome = self
            .run_billed(context, "UpdateComponents", encode, async |tx: &Tx, now| {
                self.components_in(tx, &actor, &id, components, etag, false, now).await
            })
            .await?;
        self.sync_engine(outcome.done().map(|updated| &updated.subscription))
            .await;
        Ok(outcome)
    }

    /// A components update and its proration invoice, in `tx`.
    #[allow(clippy::too_many_arguments)]
    async fn components_in(
        &self,
        tx: &Tx,
        actor: &Actor,
        id: &SubscriptionId,
        components: &[ComponentQuantityDraft],
        etag: &str,
        preview: bool,
        now: DateTime<Utc>,
    ) -> Result<ComponentsUpdated, AppError> {
        let subscription = Self::load_for_change(tx, id, etag).await?;
        let offering = tx
            .catalog()
            .get_offering(OfferingKey::Id(&subscription.offering_id))
            .await?
            .ok_or_else(|| offering_not_found(&subscription.offering_code))?;
        let transition = update_components(&subscription, &offering, components, now)?;
        let mut after = transition.subscription;
        let engine_billed = subscription.provider == engine::MAXIO;
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
        require_payment_method(tx, invoice.as_ref()).await?;
        let mut changes = Changes::default();
        let recorded = Self::hold_or_apply(
            tx,
            &subscription,
            after,
            &transition.events,
            invoice.as_ref(),
            &mut changes,
            now,
        )
        .await?;
        let mut result = ComponentsUpdated {
            subscription: recorded,
            invoice: invoice.clone(),
        };
        if let Some(invoice) = invoice {
            changes.record_new_invoice(invoice);
        }
        persist(tx, &mut changes, "UpdateComponents", actor, now).await?;
        result.invoice = changes.issued(result.invoice);
        Ok(result)
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
        let id = parse_subscription_id(subscription_id)?;
        if reason.chars().count() > 500 {
            return Err(DomainError::field("reason", Reason::FieldInvalid, "must be at most 500 characters").into());
        }
        let actor = Self::actor(context);
        let outcome = self
            .mutate(context, "Cancel", encode, async |tx: &Tx, now| {
                let subscription = Self::load_for_change(tx, &id, etag).await?;
                let transition = cancel(&subscription, timing, reason, now)?;
                if subscription.provider == engine::MAXIO && transition.changed() {
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
                if subscription.provider == engine::MAXIO && transition.changed() {
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

    /// Whether the business may use a product: from this replica's memory
    /// when it holds the business, else one read.
    pub async fn check_entitlement(&self, business_id: &str, product_code: &str) -> Result<Entitlement, AppError> {
        let business_id = ExternalId::parse(business_id).map_err(|error| error.prefixed("business_id"))?;
        let product_code = Code::parse(product_code).map_err(|error| error.prefixed("product_code"))?;
        let found = self.store.entitlement(&business_id, &product_code).await?;
        Ok(found.unwrap_or(Entitlement {
            product_code,
            entitled: false,
            subscription_id: None,
            offering_code: None,
            subscriber_status: SubscriberStatus::NotSubscriber,
            in_grace_period: false,
            expiration_time: None,
        }))
    }

    pub async fn list_history(&self, subscription_id: &str, params: &PageParams) -> Result<Page<AuditEntry>, AppError> {
        let id = parse_subscription_id(subscription_id)?;
        let request = PageRequest::parse(params, format!("history|{id}"))?;
        if self.store.subscriptions().get_subscription(&id).await?.is_none() {
            return Err(subscription_not_found(&id));
        }
        let rows = self
            .store
            .subscriptions()
            .list_audit_entries(&id, request.after.as_deref(), request.fetch_limit())
            .await?;
        Ok(request.page(rows, |entry| entry.id.as_str()))
    }
}

/// A paid invoice needs a card on file before anything is bought or changed.
async fn require_payment_method(tx: &Tx, invoice: Option<&Invoice>) -> Result<(), AppError> {
    let Some(invoice) = invoice.filter(|invoice| !invoice.draft.amount_due.is_zero()) else {
        return Ok(());
    };
    if tx.billing().get_payment_method(&invoice.business_id).await?.is_none() {
        return Err(DomainError::new(
            Reason::PaymentMethodRequired,
            format!(
                "{} is due now and business {} has no payment method; attach one with AttachPaymentMethod",
                invoice.draft.amount_due, invoice.business_id
            ),
        )
        .into());
    }
    Ok(())
}

/// After a PACKAGE subscription ended, gives the business its directory's
/// default package if it holds no package any more.
/// A purchase whose first charge succeeded: its bundled children, incomplete
/// with it, are complete too.
async fn complete_children(
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

async fn fall_back_to_default_package(
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
async fn rebundle(
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

async fn bundled_offerings(tx: &Tx, offering: &Offering) -> Result<Vec<Offering>, AppError> {
    let mut bundled = Vec::with_capacity(offering.bundled_offering_codes.len());
    for code in &offering.bundled_offering_codes {
        let child = tx
            .catalog()
            .get_offering(OfferingKey::Code(code))
            .await?
            .ok_or_else(|| offering_not_found(code))?;
        bundled.push(child);
    }
    Ok(bundled)
}

async fn find_offering(tx: &Tx, reference: &OfferingRef) -> Result<Offering, AppError> {
    match reference {
        OfferingRef::Code(text) => {
            let code = Code::parse(text).map_err(|error| error.prefixed("offering_code"))?;
            tx.catalog()
                .get_offering(OfferingKey::Code(&code))
                .await?
                .ok_or_else(|| offering_not_found(&code))
        }
        OfferingRef::Id(text) => {
            let id = OfferingId::parse(text).map_err(|error| error.prefixed("offering_id"))?;
            tx.catalog()
                .get_offering(OfferingKey::Id(&id))
                .await?
                .ok_or_else(|| DomainError::new(Reason::OfferingNotFound, format!("no offering has id {id}")).into())
        }
        OfferingRef::Missing => Err(DomainError::field(
            "offering_code",
            Reason::FieldInvalid,
            "set offering_code or offering_id",
        )
        .into()),
    }
}

fn parse_subscription_id(text: &str) -> Result<SubscriptionId, AppError> {
    Ok(SubscriptionId::parse(text).map_err(|error| error.prefixed("subscription_id"))?)
}

pub(crate) fn subscription_not_found(id: &SubscriptionId) -> AppError {
    DomainError::new(Reason::SubscriptionNotFound, format!("no subscription has id {id}")).into()
}

fn offering_not_found(code: &Code) -> AppError {
    DomainError::new(Reason::OfferingNotFound, format!("no offering has code {code}")).into()
}
