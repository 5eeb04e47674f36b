//! Provisioning a business and buying an offering.

use billing_domain::error::Violations;
use billing_domain::subscription::{
    Business, CouponChoice, EventType, NewSubscription, PaymentStatus, Subscription, create_subscription,
};
use billing_domain::text::{Code, ExternalId};
use billing_domain::{DomainError, Reason};
use billing_storage::Tx;
use chrono::{DateTime, Utc};

use super::changes::{Actor, Changes, default_subscriptions, new_subscription_id, persist};
use super::engine;
use super::invoicing::period_invoice;
use super::{
    Provisioned, Purchase, PurchaseRequest, Subscriptions, bundled_offerings, find_offering, require_payment_method,
};
use crate::error::AppError;
use crate::idempotency::{Outcome, RequestContext};
use crate::providers::Biller;

impl Subscriptions {
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
        let mut violations = Violations::new();
        let business_id = violations.check("business_id", ExternalId::parse(business_id));
        let directory_id = violations.check("directory_id", ExternalId::parse(directory_id));
        violations.check("buyer_id", ExternalId::parse(buyer_id));
        let (Some(business_id), Some(directory_id), true) = (business_id, directory_id, violations.is_empty()) else {
            return Err(violations.into_error().into());
        };
        self.mutate(context, "ProvisionBusiness", encode, async |tx: &Tx, now| {
            self.provision_in(tx, context, business_id, directory_id, buyer_id, now)
                .await
        })
        .await
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
        let business_id = request.check()?;
        let actor = Self::actor(context);
        self.run_billed(context, "CreateSubscription", encode, async |tx: &Tx, now| {
            self.create_in(tx, &actor, &business_id, request, false, now).await
        })
        .await
    }

    /// Runs what an engine provider is owed now, after a request that
    /// changed an engine-billed subscription committed; what fails (and what
    /// a replayed request owes) is run by the job.
    pub(super) async fn sync_engine(&self, changed: Option<&Subscription>) {
        if changed.is_none_or(|subscription| !subscription.provider.is_engine()) {
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
    pub(super) async fn create_in(
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
            Biller::Engine(engine) => {
                let op = engine::create_op(&created.subscription, &offering)?;
                created.subscription.provider = engine.name();
                for child in &mut created.bundled {
                    child.provider = engine.name();
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
}
