//! Subscriptions: what a business bought, and the rules of its life.
//!
//! Every rule is a pure function from the current state, a command and the
//! time to the next state and the events it causes; the caller persists both
//! in one transaction.

mod change;
mod create;
mod entitlement;
mod held;
#[cfg(test)]
mod held_tests;
#[cfg(test)]
mod incomplete_tests;
mod lifecycle;
mod mirror;
#[cfg(test)]
mod model_tests;
mod payment;
#[cfg(test)]
mod tests;

pub use change::{ChangeTiming, PlanChange, annual_price, change_plan, update_components};
use chrono::{DateTime, Utc};
pub use create::{
    ComponentQuantityDraft, CouponChoice, Created, NewSubscription, bundled_child as bundle_child, create_subscription,
};
pub use entitlement::{Entitlement, SubscriberStatus, entitlements};
pub use held::{HeldChange, Plan, apply_held_change, drop_held_change, hold_change};
pub use lifecycle::{CancelTiming, Transition, cancel, end_bundled, expire, follow_parent, reactivate, renew};
pub use mirror::{Report, mirror};
pub use payment::{charge_failed, charge_succeeded, incomplete_expired, retry_failed};

use crate::catalog::{BillingInterval, OfferingType};
use crate::ids::{OfferingId, SubscriptionId};
use crate::money::Money;
use crate::period::{BillingAnchor, Period};
use crate::text::{Code, ExternalId};

/// A business known to the service: where it buys (its directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Business {
    pub business_id: ExternalId,
    pub directory_id: ExternalId,
    pub create_time: DateTime<Utc>,
}

text_enum!(
    SubscriptionState {
        /// Bought and running.
        Purchased => "PURCHASED",
        /// Will end at `expiration_time`; still active until then.
        Canceled => "CANCELED",
        /// Ended. Final: buying again makes a new subscription.
        Expired => "EXPIRED",
    }
);

text_enum!(
    PaymentType {
        /// A free offering (e.g. the directory's default package).
        Free => "FREE",
        /// Paid by the business.
        Paid => "PAID",
        /// Granted because a parent subscription bundles it.
        Bundled => "BUNDLED",
        /// Granted by the platform at no charge.
        Sponsored => "SPONSORED",
    }
);

text_enum!(
    /// Whether a subscription's money is in order. `Incomplete`: a paid
    /// purchase whose first charge has no answer yet, visible, not entitled;
    /// paid → `Ok`, declined or unpaid after [`INCOMPLETE_WINDOW`] → expired
    /// (`INCOMPLETE_EXPIRED`).
    PaymentStatus {
        Ok => "OK",
        PastDue => "PAST_DUE",
        Incomplete => "INCOMPLETE",
    }
);

/// How long a purchase may wait for its first charge to succeed.
pub const INCOMPLETE_WINDOW: chrono::Duration = chrono::Duration::hours(23);

/// The `cancel_reason` of a purchase whose first charge never succeeded.
pub const INCOMPLETE_EXPIRED: &str = "INCOMPLETE_EXPIRED";

/// How many units of one component a subscription has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentQuantity {
    pub component_code: Code,
    pub quantity: u32,
}

/// A plan change that waits for the end of the period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingChange {
    pub offering_id: OfferingId,
    pub offering_code: Code,
    pub effective_time: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub display_name: String,
    pub business_id: ExternalId,
    pub buyer_id: ExternalId,
    pub directory_id: ExternalId,
    pub offering_id: OfferingId,
    pub offering_code: Code,
    pub offering_type: OfferingType,
    pub family: Code,
    pub state: SubscriptionState,
    pub payment_type: PaymentType,
    /// The recurring price per interval (zero when free, bundled or sponsored).
    pub purchase_price: Money,
    pub billing_interval: BillingInterval,
    pub billing_anchor: BillingAnchor,
    pub components: Vec<ComponentQuantity>,
    pub coupon_code: Option<Code>,
    pub trial_end_time: Option<DateTime<Utc>>,
    /// During a trial: from the start to the trial's end.
    pub current_period: Period,
    pub cancellation_time: Option<DateTime<Utc>>,
    pub cancel_reason: String,
    pub expiration_time: Option<DateTime<Utc>>,
    pub auto_renew: bool,
    pub bundled_from_subscription_id: Option<SubscriptionId>,
    pub pending_change: Option<PendingChange>,
    /// A change charged now that waits for its payment (not in force yet).
    pub held_change: Option<HeldChange>,
    pub payment_status: PaymentStatus,
    /// Set while PAST_DUE.
    pub dunning: Option<crate::dunning::Dunning>,
    /// How many period invoices its coupon has discounted.
    pub coupon_periods_used: u32,
    /// Which provider bills it.
    pub provider: crate::Provider,
    pub provider_subscription_id: Option<String>,
    /// Bumped by every change; the etag clients send back.
    pub version: i64,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

impl Subscription {
    /// Active means the business has it: purchased, or canceled but not yet
    /// expired.
    pub fn is_active(&self) -> bool {
        self.state != SubscriptionState::Expired
    }

    /// Whether its first charge is still unsettled (not entitled).
    pub fn is_incomplete(&self) -> bool {
        self.payment_status == PaymentStatus::Incomplete
    }

    /// When an incomplete purchase expires if its charge never succeeds.
    pub fn incomplete_deadline(&self) -> Option<DateTime<Utc>> {
        self.is_incomplete().then(|| self.create_time + INCOMPLETE_WINDOW)
    }

    /// Whether `now` is inside the trial.
    pub fn in_trial(&self, now: DateTime<Utc>) -> bool {
        self.trial_end_time.is_some_and(|trial_end| now < trial_end)
    }

    /// The first date it was billed for: the end of its trial, or the day it
    /// started. No period reaches back before it.
    pub fn first_billed_date(&self) -> chrono::NaiveDate {
        self.trial_end_time
            .map(crate::period::utc_date)
            .unwrap_or_else(|| crate::period::utc_date(self.create_time))
    }

    pub fn etag(&self) -> String {
        self.version.to_string()
    }

    /// When the next period-end work is due (renewal, trial end, pending
    /// change), if any.
    pub fn next_renewal_time(&self) -> Option<DateTime<Utc>> {
        (self.state == SubscriptionState::Purchased && self.auto_renew).then(|| self.current_period.end_time())
    }

    /// The copy every change starts from: next version, new update time.
    fn next_version(&self, now: DateTime<Utc>) -> Subscription {
        let mut next = self.clone();
        next.version += 1;
        next.update_time = now;
        next
    }
}

text_enum!(
    /// Something that happened to a subscription; stored in the outbox with a
    /// snapshot of the subscription after it.
    EventType {
        Started => "subscription.started",
        Ended => "subscription.ended",
        Canceled => "subscription.canceled",
        Reactivated => "subscription.reactivated",
        PlanChanged => "subscription.plan_changed",
        PlanChangeScheduled => "subscription.plan_change_scheduled",
        ComponentsUpdated => "subscription.components_updated",
        Renewed => "subscription.renewed",
        PastDue => "subscription.past_due",
        Recovered => "subscription.recovered",
    }
);
