//! Changes charged now wait for their payment (Stripe's "pending if
//! incomplete"): an upgrade or a seat increase that bills a proration is
//! held beside the subscription, which stays on its old plan (and the
//! entitlements of that plan) until the invoice is paid. Paid → the held
//! plan applies; declined, or unpaid after [`super::INCOMPLETE_WINDOW`] →
//! it is dropped and the old plan simply stays. While a change is held no
//! other plan change or components update is accepted.

use chrono::{DateTime, Utc};

use super::{ComponentQuantity, EventType, PaymentType, Subscription, Transition};
use crate::catalog::{BillingInterval, OfferingType};
use crate::error::{DomainError, Reason};
use crate::ids::{InvoiceId, OfferingId};
use crate::money::Money;
use crate::period::Period;
use crate::text::Code;

/// What a subscription is on: every field a plan change or a components
/// update sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub offering_id: OfferingId,
    pub offering_code: Code,
    pub offering_type: OfferingType,
    pub display_name: String,
    pub billing_interval: BillingInterval,
    pub purchase_price: Money,
    pub payment_type: PaymentType,
    pub components: Vec<ComponentQuantity>,
    pub current_period: Period,
}

/// A change charged now, waiting for its invoice to be paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldChange {
    /// The invoice whose payment applies it.
    pub invoice_id: InvoiceId,
    /// When it is dropped if its invoice is still unpaid.
    pub expire_time: DateTime<Utc>,
    /// The period it was priced against: if the subscription has renewed
    /// since, the held plan applies to the period it is in.
    pub priced_period: Period,
    /// The plan once paid.
    pub plan: Plan,
}

impl Subscription {
    /// The plan it is on now.
    pub fn plan(&self) -> Plan {
        Plan {
            offering_id: self.offering_id.clone(),
            offering_code: self.offering_code.clone(),
            offering_type: self.offering_type,
            display_name: self.display_name.clone(),
            billing_interval: self.billing_interval,
            purchase_price: self.purchase_price,
            payment_type: self.payment_type,
            components: self.components.clone(),
            current_period: self.current_period,
        }
    }

    /// Whether a change charged now waits for its payment.
    pub fn awaits_change_payment(&self) -> bool {
        self.held_change.is_some()
    }
}

/// Holds `changed` (the subscription as a change charged now would leave
/// it) until `invoice_id` is paid: the subscription keeps its plan, and
/// carries the change.
pub fn hold_change(
    subscription: &Subscription,
    changed: &Subscription,
    invoice_id: InvoiceId,
    now: DateTime<Utc>,
) -> Subscription {
    let mut next = subscription.next_version(now);
    next.held_change = Some(HeldChange {
        invoice_id,
        expire_time: now + super::INCOMPLETE_WINDOW,
        priced_period: subscription.current_period,
        plan: changed.plan(),
    });
    next
}

/// The held change's invoice was paid: its plan applies now. Nothing
/// changes when no change is held for `invoice_id`.
pub fn apply_held_change(subscription: &Subscription, invoice_id: &InvoiceId, now: DateTime<Utc>) -> Transition {
    let Some(held) = subscription
        .held_change
        .as_ref()
        .filter(|held| &held.invoice_id == invoice_id)
    else {
        return Transition::unchanged(subscription);
    };
    let mut next = subscription.next_version(now);
    let plan = held.plan.clone();
    let event = if plan.offering_id == subscription.offering_id {
        EventType::ComponentsUpdated
    } else {
        EventType::PlanChanged
    };
    if held.priced_period == subscription.current_period {
        next.current_period = plan.current_period;
    }
    next.offering_id = plan.offering_id;
    next.offering_code = plan.offering_code;
    next.offering_type = plan.offering_type;
    next.display_name = plan.display_name;
    next.billing_interval = plan.billing_interval;
    next.purchase_price = plan.purchase_price;
    next.payment_type = plan.payment_type;
    next.components = plan.components;
    next.held_change = None;
    if event == EventType::PlanChanged {
        next.pending_change = None;
    }
    Transition {
        subscription: next,
        events: vec![event],
    }
}

/// The held change's invoice was declined, or stayed unpaid past its
/// expiry: the change is dropped and the plan stays as it is.
pub fn drop_held_change(subscription: &Subscription, now: DateTime<Utc>) -> Subscription {
    let mut next = subscription.next_version(now);
    next.held_change = None;
    next
}

/// Refuses a plan change or components update while one waits for payment.
pub(crate) fn refuse_while_held(subscription: &Subscription) -> Result<(), DomainError> {
    match &subscription.held_change {
        None => Ok(()),
        Some(held) => Err(DomainError::new(
            Reason::ChangeAwaitingPayment,
            format!(
                "subscription {} has a change waiting for the payment of invoice {} (until {}); retry once it is paid or dropped",
                subscription.id,
                held.invoice_id,
                held.expire_time.to_rfc3339()
            ),
        )),
    }
}
