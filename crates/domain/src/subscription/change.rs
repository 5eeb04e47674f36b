//! Plan changes and component updates.

use chrono::{DateTime, Utc};

use super::create::{ComponentQuantityDraft, check_components, price_in};
use super::{EventType, PaymentType, PendingChange, Subscription, SubscriptionState};
use crate::catalog::{BillingInterval, Offering, OfferingStatus};
use crate::error::{DomainError, Reason, Violations};
use crate::money::Money;
use crate::period::{Period, utc_date};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeTiming {
    /// Upgrades now, downgrades at the end of the period.
    Default,
    Immediate,
    EndOfPeriod,
}

/// The outcome of a plan change.
#[derive(Debug, PartialEq, Eq)]
pub struct PlanChange {
    pub subscription: Subscription,
    pub events: Vec<EventType>,
    /// When the new plan takes (or took) effect.
    pub effective_time: DateTime<Utc>,
    /// Whether it applied now (else it is pending).
    pub applied_now: bool,
    /// Whether the new plan costs at least as much per year.
    pub upgrade: bool,
}

/// The price normalised to a year: monthly × 12. Plans compare on this.
pub fn annual_price(price: Money, interval: BillingInterval) -> i128 {
    let per_year = match interval {
        BillingInterval::Month => 12,
        BillingInterval::Year => 1,
    };
    i128::from(price.amount_minor()) * per_year
}

fn ensure_changeable(subscription: &Subscription) -> Result<(), DomainError> {
    if let Some(parent) = &subscription.bundled_from_subscription_id {
        return Err(DomainError::new(
            Reason::SubscriptionIsBundled,
            format!(
                "subscription {} is bundled by {parent}; change {parent} instead",
                subscription.id
            ),
        ));
    }
    if subscription.state != SubscriptionState::Purchased {
        return Err(DomainError::new(
            Reason::SubscriptionNotActive,
            format!("subscription {} is {}", subscription.id, subscription.state.as_str()),
        ));
    }
    super::held::refuse_while_held(subscription)
}

/// Changes the plan within the family. An upgrade (the same or a higher
/// annualised price) applies now by default, a downgrade at the end of the
/// period; `timing` overrides either. Asking for the current plan while a
/// change is pending withdraws the pending change.
pub fn change_plan(
    subscription: &Subscription,
    target: &Offering,
    timing: ChangeTiming,
    available_in_directory: bool,
    now: DateTime<Utc>,
) -> Result<PlanChange, DomainError> {
    ensure_changeable(subscription)?;
    if target.family != subscription.family {
        return Err(DomainError::new(
            Reason::CrossFamilyChange,
            format!(
                "offering {} is in family {}, the subscription in {}; buy it as a new subscription instead",
                target.code, target.family, subscription.family
            ),
        ));
    }
    if target.id == subscription.offering_id {
        if subscription.pending_change.is_none() {
            return Err(DomainError::new(
                Reason::SamePlan,
                format!("subscription {} is already on {}", subscription.id, target.code),
            ));
        }
        let mut next = subscription.next_version(now);
        next.pending_change = None;
        return Ok(PlanChange {
            subscription: next,
            events: vec![EventType::PlanChangeScheduled],
            effective_time: now,
            applied_now: true,
            upgrade: true,
        });
    }
    if target.status != OfferingStatus::Active || !available_in_directory {
        return Err(DomainError::new(
            Reason::OfferingNotAvailable,
            format!(
                "offering {} is not sold in directory {}",
                target.code, subscription.directory_id
            ),
        ));
    }
    let new_price = price_in(target, subscription.purchase_price.currency().code())
        .map_err(|error| error.prefixed("offering_code"))?;
    for held in &subscription.components {
        if !target
            .components
            .iter()
            .any(|component| component.code == held.component_code)
        {
            return Err(DomainError::new(
                Reason::ComponentNotFound,
                format!(
                    "offering {} has no component {}; update the components first",
                    target.code, held.component_code
                ),
            ));
        }
    }
    let current = annual_price(subscription.purchase_price, subscription.billing_interval);
    let upgrade = annual_price(new_price, target.billing_interval) >= current;
    let now_or_later = match timing {
        ChangeTiming::Default => upgrade,
        ChangeTiming::Immediate => true,
        ChangeTiming::EndOfPeriod => false,
    };
    let mut next = subscription.next_version(now);
    if now_or_later {
        switch_offering(&mut next, target)?;
        next.pending_change = None;
        let today = utc_date(now);
        let period = next.billing_anchor.period_containing(next.billing_interval, today);
        if !next.in_trial(now) {
            next.current_period = Period {
                start: period.start.max(subscription.first_billed_date()),
                end: period.end,
            };
        }
        return Ok(PlanChange {
            subscription: next,
            events: vec![EventType::PlanChanged],
            effective_time: now,
            applied_now: true,
            upgrade,
        });
    }
    let effective_time = subscription.current_period.end_time();
    next.pending_change = Some(PendingChange {
        offering_id: target.id.clone(),
        offering_code: target.code.clone(),
        effective_time,
    });
    Ok(PlanChange {
        subscription: next,
        events: vec![EventType::PlanChangeScheduled],
        effective_time,
        applied_now: false,
        upgrade,
    })
}

/// Puts the subscription on `offering`, at its price in the subscription's
/// currency (the currency never changes).
pub(crate) fn switch_offering(subscription: &mut Subscription, offering: &Offering) -> Result<(), DomainError> {
    let price = price_in(offering, subscription.purchase_price.currency().code())?;
    subscription.offering_id = offering.id.clone();
    subscription.offering_code = offering.code.clone();
    subscription.offering_type = offering.offering_type;
    subscription.display_name = offering.display_name.clone();
    subscription.billing_interval = offering.billing_interval;
    if subscription.payment_type != PaymentType::Sponsored {
        subscription.purchase_price = price;
        subscription.payment_type = if price.is_zero() {
            PaymentType::Free
        } else {
            PaymentType::Paid
        };
    }
    Ok(())
}

/// Replaces the components with the full desired set. Field paths in errors
/// are `components[i]…`.
pub fn update_components(
    subscription: &Subscription,
    offering: &Offering,
    components: &[ComponentQuantityDraft],
    now: DateTime<Utc>,
) -> Result<super::Transition, DomainError> {
    ensure_changeable(subscription)?;
    let mut violations = Violations::new();
    let components = check_components(offering, components, &mut violations);
    violations.into_result()?;
    let mut next = subscription.next_version(now);
    next.components = components;
    Ok(super::Transition {
        subscription: next,
        events: vec![EventType::ComponentsUpdated],
    })
}
