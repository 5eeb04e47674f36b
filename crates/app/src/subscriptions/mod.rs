//! Subscription use cases: `purchase` (provisioning and buying), `change`
//! (plan, components, cancel, reactivate), the reads here; `changes` writes
//! what a decision changed, `charged` collects what it billed, `jobs` and
//! `worker` run the lifecycle, `inbound` applies provider webhooks.

mod change;
mod changed_preview;
mod changes;
mod charged;
mod engine;
mod inbound;
mod invoicing;
mod jobs;
mod purchase;
mod worker;

use std::sync::Arc;

use billing_domain::catalog::Offering;
use billing_domain::error::Violations;
use billing_domain::ids::SubscriptionId;
use billing_domain::invoice::Invoice;
use billing_domain::subscription::{
    Business, ChangeTiming, ComponentQuantityDraft, Entitlement, SubscriberStatus, Subscription, SubscriptionState,
    Transition,
};
use billing_domain::text::{Code, ExternalId};
use billing_domain::{Currency, DomainError, Reason};
use billing_storage::{AuditEntry, OfferingKey, Store, SubscriptionFilter, Tx};
pub use changed_preview::{PreviewRequest, Previewed};
use chrono::{DateTime, Utc};
pub use worker::{DEFAULT_LEASE, JobRunner, JobStats};

use self::change::{complete_children, fall_back_to_default_package, rebundle};
use self::changes::Actor;
use self::charged::Billed;
use crate::catalog::{OfferingRef, offering_not_found};
use crate::charging::Charger;
use crate::clock::Clock;
use crate::error::AppError;
use crate::idempotency::{self, Outcome, RequestContext};
use crate::paging::{Page, PageParams, PageRequest};

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

                fn subscription(&self) -> &Subscription {
                    &self.subscription
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

/// A plan change as a client sent it (PreviewInvoice's with no etag).
#[derive(Clone, Debug)]
pub struct PlanChangeRequest {
    pub subscription_id: String,
    pub offering_code: String,
    pub timing: ChangeTiming,
    pub prorate: bool,
    /// Empty: whatever the subscription's version.
    pub etag: String,
}

/// A components update as a client sent it (PreviewInvoice's with no etag).
#[derive(Clone, Debug, Default)]
pub struct ComponentsRequest {
    pub subscription_id: String,
    pub components: Vec<ComponentQuantityDraft>,
    /// Empty: whatever the subscription's version.
    pub etag: String,
}

impl PurchaseRequest {
    /// Checks every field a purchase needs before anything is looked up,
    /// and names every bad one at once; returns the business id.
    pub(crate) fn check(&self) -> Result<ExternalId, DomainError> {
        let mut violations = Violations::new();
        let business_id = violations.check("business_id", ExternalId::parse(&self.business_id));
        violations.check("buyer_id", ExternalId::parse(&self.buyer_id));
        violations.keep(self.offering.parse("offering_code"));
        violations.check(
            "currency_code",
            Currency::from_code(&self.currency_code).map_err(DomainError::from),
        );
        match business_id {
            Some(business_id) if violations.is_empty() => Ok(business_id),
            _ => Err(violations.into_error()),
        }
    }
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
        // Every filter field is optional; the set ones are checked together.
        let mut violations = Violations::new();
        let business_id = violations.check_optional("business_id", &filter.business_id, ExternalId::parse);
        let directory_id = violations.check_optional("directory_id", &filter.directory_id, ExternalId::parse);
        let offering_code = violations.check_optional("offering_code", &filter.offering_code, Code::parse);
        violations.into_result()?;
        let storage_filter = SubscriptionFilter {
            business_id,
            directory_id,
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

    /// Whether the business may use a product: from this replica's memory
    /// when it holds the business, else one read.
    pub async fn check_entitlement(&self, business_id: &str, product_code: &str) -> Result<Entitlement, AppError> {
        let mut violations = Violations::new();
        let business_id = violations.check("business_id", ExternalId::parse(business_id));
        let product_code = violations.check("product_code", Code::parse(product_code));
        let (Some(business_id), Some(product_code)) = (business_id, product_code) else {
            return Err(violations.into_error().into());
        };
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
    let parsed = reference.parse("offering_code")?;
    tx.catalog()
        .get_offering(parsed.as_key())
        .await?
        .ok_or_else(|| parsed.not_found())
}

fn parse_subscription_id(text: &str) -> Result<SubscriptionId, AppError> {
    Ok(SubscriptionId::parse(text).map_err(|error| error.prefixed("subscription_id"))?)
}

pub(crate) fn subscription_not_found(id: &SubscriptionId) -> AppError {
    DomainError::new(Reason::SubscriptionNotFound, format!("no subscription has id {id}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: &DomainError) -> Vec<&str> {
        error
            .violations()
            .iter()
            .map(|violation| violation.field.as_str())
            .collect()
    }

    fn purchase() -> PurchaseRequest {
        PurchaseRequest {
            business_id: "biz-1".into(),
            buyer_id: "owner".into(),
            offering: OfferingRef::Code("pro-monthly".into()),
            currency_code: "USD".into(),
            ..PurchaseRequest::default()
        }
    }

    #[test]
    fn a_purchase_names_every_bad_field_at_once() {
        let empty = PurchaseRequest::default().check().unwrap_err();
        assert_eq!(
            fields(&empty),
            ["business_id", "buyer_id", "offering_code", "currency_code"]
        );
        let bad = PurchaseRequest {
            offering: OfferingRef::Id("off_nope".into()),
            currency_code: "XYZ".into(),
            ..purchase()
        };
        assert_eq!(fields(&bad.check().unwrap_err()), ["offering_id", "currency_code"]);
        let spaced = PurchaseRequest {
            offering: OfferingRef::Code("pro monthly".into()),
            ..purchase()
        };
        assert_eq!(fields(&spaced.check().unwrap_err()), ["offering_code"]);
        assert_eq!(purchase().check().unwrap().as_str(), "biz-1");
    }

    #[test]
    fn a_plan_change_names_both_bad_fields_at_once() {
        let request = PlanChangeRequest {
            subscription_id: "nope".into(),
            offering_code: String::new(),
            timing: ChangeTiming::Default,
            prorate: true,
            etag: String::new(),
        };
        let Err(AppError::Rule(error)) = change::CheckedPlanChange::check(&request) else {
            panic!("a bad plan change passed its check");
        };
        assert_eq!(fields(&error), ["subscription_id", "offering_code"]);
    }
}
