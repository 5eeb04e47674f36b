//! What the consent page shows: the session's order priced now, by the very
//! code that would carry it out, in a transaction that is rolled back.

use billing_domain::catalog::{BillingInterval, Offering};
use billing_domain::checkout::{CheckoutSession, Order};
use billing_domain::invoice::InvoiceDraft;
use billing_domain::payment_method::PaymentMethod;
use billing_domain::{DomainError, Money};
use billing_storage::OfferingKey;
use chrono::{DateTime, Utc};

use super::token::{token_hash, unknown_token};
use super::{Checkout, preview_request};
use crate::AppError;

/// One priced component line on the consent page.
#[derive(Clone, Debug)]
pub struct ComponentLine {
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub amount: Money,
}

/// Everything the consent page shows.
#[derive(Clone, Debug)]
pub struct ConsentPage {
    pub session: CheckoutSession,
    /// Set when the order can no longer go through (the business bought the
    /// family elsewhere, the subscription ended, …): Accept is disabled.
    pub problem: Option<DomainError>,
    /// What is bought or changed to.
    pub offering: Option<Offering>,
    /// For a plan change: the plan it replaces.
    pub current_offering_name: Option<String>,
    pub interval: Option<BillingInterval>,
    /// The plan's price per interval.
    pub plan_price: Option<Money>,
    pub components: Vec<ComponentLine>,
    /// Plan and components per interval.
    pub recurring_total: Option<Money>,
    /// The invoice billed on Accept (PreviewInvoice's); `None` bills nothing.
    pub invoice: Option<InvoiceDraft>,
    pub amount_due_today: Option<Money>,
    pub trial_end_time: Option<DateTime<Utc>>,
    /// When a plan change that waits for the period's end applies.
    pub scheduled_change_time: Option<DateTime<Utc>>,
    pub payment_method: Option<PaymentMethod>,
    /// A paid plan needs a payment method on file before Accept.
    pub needs_payment_method: bool,
    /// The directory's provider is the engine (Maxio): it holds the payment
    /// method and charges.
    pub billed_by_provider: bool,
}

impl ConsentPage {
    pub fn can_accept(&self) -> bool {
        self.problem.is_none() && (self.payment_method.is_some() || !self.needs_payment_method)
    }
}

impl Checkout {
    /// What the consent page shows for `token`: an open session, priced now.
    pub async fn consent_page(&self, token: &str) -> Result<ConsentPage, AppError> {
        let token_hash = token_hash(token)?;
        let now = self.clock.now();
        let session = self
            .store
            .checkout()
            .find_by_token_hash(&token_hash, false)
            .await?
            .ok_or_else(unknown_token)?;
        session.check_open(now)?;
        self.assess(session, now).await
    }

    /// Prices the session's order now, in a transaction that is rolled back.
    pub(super) async fn assess(&self, session: CheckoutSession, now: DateTime<Utc>) -> Result<ConsentPage, AppError> {
        let tx = self.store.begin().await?;
        let payment_method = tx
            .billing()
            .get_payment_method(&session.business_id)
            .await?
            .map(|stored| stored.method);
        let mut page = ConsentPage {
            session,
            problem: None,
            offering: None,
            current_offering_name: None,
            interval: None,
            plan_price: None,
            components: Vec::new(),
            recurring_total: None,
            invoice: None,
            amount_due_today: None,
            trial_end_time: None,
            scheduled_change_time: None,
            payment_method,
            needs_payment_method: false,
            billed_by_provider: false,
        };
        let current_offering_name = match page.session.order.subscription_id() {
            Some(id) => tx
                .subscriptions()
                .get_subscription(id)
                .await?
                .map(|subscription| subscription.display_name),
            None => None,
        };
        let previewed = {
            let savepoint = tx.savepoint().await?;
            self.subscriptions
                .preview_in(&savepoint, &preview_request(&page.session), now)
                .await
        };
        let previewed = match previewed {
            Ok(previewed) => previewed,
            Err(AppError::Rule(problem)) => {
                page.problem = Some(problem);
                return Ok(page);
            }
            Err(other) => return Err(other),
        };
        let after = &previewed.subscription;
        let offering_key = match &page.session.order {
            Order::PlanChange { offering_code, .. } => OfferingKey::Code(offering_code),
            Order::Purchase { .. } | Order::Components { .. } => OfferingKey::Id(&after.offering_id),
        };
        let offering = tx
            .catalog()
            .get_offering(offering_key)
            .await?
            .ok_or_else(|| AppError::fault("the previewed offering vanished"))?;
        drop(tx);
        let mut previewed = previewed;
        // A plan change billed by an engine provider is priced by it, now
        // that no transaction is open.
        if let Order::PlanChange {
            subscription_id,
            offering_code,
        } = &page.session.order
            && let Some(draft) = self
                .subscriptions
                .engine_plan_preview(subscription_id.as_str(), offering_code.as_str())
                .await?
        {
            previewed.invoice = Some(draft);
        }
        let after = &previewed.subscription;
        let currency = after.purchase_price.currency();
        // A plan change prices the target plan; a purchase or components
        // update the subscription's own (grandfathered) price.
        let plan_price = match &page.session.order {
            Order::PlanChange { .. } => offering.prices.price_in(currency).unwrap_or(after.purchase_price),
            Order::Purchase { .. } | Order::Components { .. } => after.purchase_price,
        };
        let mut recurring_total = plan_price;
        for held in &after.components {
            let Some(component) = offering.components.iter().find(|c| c.code == held.component_code) else {
                continue;
            };
            let unit_price = component
                .unit_prices
                .price_in(currency)
                .unwrap_or(Money::zero(currency));
            let amount = unit_price
                .checked_mul(i64::from(held.quantity))
                .map_err(DomainError::from)?;
            recurring_total = recurring_total.checked_add(amount).map_err(DomainError::from)?;
            page.components.push(ComponentLine {
                name: component.display_name.clone(),
                quantity: held.quantity,
                unit_price,
                amount,
            });
        }
        let amount_due_today = previewed
            .invoice
            .as_ref()
            .map_or(Money::zero(currency), |invoice| invoice.amount_due);
        if let Order::PlanChange { .. } = page.session.order {
            // Applied now, the subscription is on the new plan already; a
            // change that waits stays pending until `effective_time`.
            if after.offering_id != offering.id {
                page.scheduled_change_time = previewed.effective_time;
            }
            page.current_offering_name = current_offering_name;
        }
        page.billed_by_provider = after.provider.is_engine();
        page.needs_payment_method =
            !page.billed_by_provider && (!amount_due_today.is_zero() || !recurring_total.is_zero());
        page.trial_end_time = after.trial_end_time.filter(|end| *end > now);
        page.interval = Some(offering.billing_interval);
        page.plan_price = Some(plan_price);
        page.recurring_total = Some(recurring_total);
        page.amount_due_today = Some(amount_due_today);
        page.invoice = previewed.invoice;
        page.offering = Some(offering);
        Ok(page)
    }
}
