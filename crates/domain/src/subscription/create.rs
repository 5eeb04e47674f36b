//! Buying an offering.

use chrono::{DateTime, Duration, Utc};

use super::{Business, ComponentQuantity, EventType, PaymentStatus, PaymentType, Subscription, SubscriptionState};
use crate::catalog::{Coupon, Discount, Offering, OfferingStatus};
use crate::error::{DomainError, Reason, Violations};
use crate::ids::SubscriptionId;
use crate::money::{Currency, Money};
use crate::period::{BillingAnchor, Period, midnight, utc_date};
use crate::text::{Code, ExternalId};

/// A component quantity as a client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentQuantityDraft {
    pub component_code: String,
    pub quantity: i64,
}

/// The coupon a buyer named, as found in the catalog.
#[derive(Clone, Copy, Debug)]
pub enum CouponChoice<'a> {
    None,
    Found(&'a Coupon),
    /// A code that names no coupon.
    Unknown(&'a str),
}

/// Everything a purchase is decided on.
pub struct NewSubscription<'a> {
    pub business: &'a Business,
    pub buyer_id: &'a str,
    pub offering: &'a Offering,
    pub currency_code: &'a str,
    pub components: &'a [ComponentQuantityDraft],
    pub coupon: CouponChoice<'a>,
    /// A platform grant: no charge, no trial, sold even where not assigned.
    pub sponsored: bool,
    /// Whether the business's directory sells the offering.
    pub available_in_directory: bool,
    /// Every subscription the business ever had in the offering's family and
    /// in the families of the offerings it bundles.
    pub family_history: &'a [Subscription],
    /// The offerings `offering` bundles.
    pub bundled_offerings: &'a [Offering],
    pub now: DateTime<Utc>,
}

/// The outcome of a purchase.
#[derive(Debug)]
pub struct Created {
    pub subscription: Subscription,
    /// Children the offering bundles.
    pub bundled: Vec<Subscription>,
    /// Free subscriptions the purchase replaced (a default package, say),
    /// now expired.
    pub replaced: Vec<Subscription>,
    /// Events in the order they happened, with the subscription they concern.
    pub events: Vec<(EventType, SubscriptionId)>,
}

/// Decides a purchase. `next_id` mints the ids of the new subscriptions.
pub fn create_subscription(
    input: &NewSubscription<'_>,
    mut next_id: impl FnMut() -> SubscriptionId,
) -> Result<Created, DomainError> {
    let offering = input.offering;
    let sellable = match offering.status {
        OfferingStatus::Active => true,
        OfferingStatus::Hidden => input.sponsored,
        OfferingStatus::Retired => false,
    };
    if !sellable || !(input.available_in_directory || input.sponsored) {
        return Err(DomainError::new(
            Reason::OfferingNotAvailable,
            format!(
                "offering {} is not sold in directory {}",
                offering.code, input.business.directory_id
            ),
        ));
    }

    let mut violations = Violations::new();
    let buyer_id = violations.check("buyer_id", ExternalId::parse(input.buyer_id));
    let price = violations.check("currency_code", price_in(offering, input.currency_code));
    let components = check_components(offering, input.components, &mut violations);
    let coupon_code = violations.check("coupon_code", check_coupon(input, price));
    let (Some(buyer_id), Some(price), Some(coupon_code)) = (buyer_id, price, coupon_code) else {
        return Err(violations.into_error());
    };
    violations.into_result()?;

    let mut replaced = Vec::new();
    check_family_free(input.family_history, &offering.family, input.now, &mut replaced)?;
    for bundled in input.bundled_offerings {
        check_family_free(input.family_history, &bundled.family, input.now, &mut replaced)?;
    }

    let today = utc_date(input.now);
    let trial_days = if input.sponsored || !first_time_in_family(input.family_history, &offering.family) {
        0
    } else {
        offering.trial_days
    };
    let trial_end = (trial_days > 0).then(|| today + Duration::days(i64::from(trial_days)));
    let first_billed_date = trial_end.unwrap_or(today);
    let billing_anchor = BillingAnchor::for_first_billed_date(offering.billing_alignment, first_billed_date);
    let current_period = match trial_end {
        Some(trial_end) => Period {
            start: today,
            end: trial_end,
        },
        None => {
            let period = billing_anchor.period_containing(offering.billing_interval, today);
            Period {
                start: today,
                end: period.end,
            }
        }
    };
    let payment_type = if input.sponsored {
        PaymentType::Sponsored
    } else if price.is_zero() {
        PaymentType::Free
    } else {
        PaymentType::Paid
    };
    let subscription = Subscription {
        id: next_id(),
        display_name: offering.display_name.clone(),
        business_id: input.business.business_id.clone(),
        buyer_id,
        directory_id: input.business.directory_id.clone(),
        offering_id: offering.id.clone(),
        offering_code: offering.code.clone(),
        offering_type: offering.offering_type,
        family: offering.family.clone(),
        state: SubscriptionState::Purchased,
        payment_type,
        purchase_price: if input.sponsored {
            Money::zero(price.currency())
        } else {
            price
        },
        billing_interval: offering.billing_interval,
        billing_anchor,
        components,
        coupon_code,
        trial_end_time: trial_end.map(midnight),
        current_period,
        cancellation_time: None,
        cancel_reason: String::new(),
        expiration_time: None,
        auto_renew: true,
        bundled_from_subscription_id: None,
        pending_change: None,
        held_change: None,
        payment_status: PaymentStatus::Ok,
        dunning: None,
        coupon_periods_used: 0,
        provider: crate::Provider::Local,
        provider_subscription_id: None,
        version: 1,
        create_time: input.now,
        update_time: input.now,
    };

    let mut events: Vec<(EventType, SubscriptionId)> = replaced
        .iter()
        .map(|ended: &Subscription| (EventType::Ended, ended.id.clone()))
        .collect();
    events.push((EventType::Started, subscription.id.clone()));
    let bundled: Vec<Subscription> = input
        .bundled_offerings
        .iter()
        .map(|child| bundled_child(&subscription, child, next_id()))
        .collect();
    events.extend(bundled.iter().map(|child| (EventType::Started, child.id.clone())));
    Ok(Created {
        subscription,
        bundled,
        replaced,
        events,
    })
}

/// A child subscription granted by `parent`: free, and living exactly the
/// parent's periods. Also used when a plan change adds a bundle.
pub fn bundled_child(parent: &Subscription, child: &Offering, id: SubscriptionId) -> Subscription {
    Subscription {
        id,
        display_name: child.display_name.clone(),
        offering_id: child.id.clone(),
        offering_code: child.code.clone(),
        offering_type: child.offering_type,
        family: child.family.clone(),
        payment_type: PaymentType::Bundled,
        purchase_price: Money::zero(parent.purchase_price.currency()),
        components: Vec::new(),
        coupon_code: None,
        bundled_from_subscription_id: Some(parent.id.clone()),
        pending_change: None,
        held_change: None,
        provider_subscription_id: None,
        ..parent.clone()
    }
}

/// The offering's price in the named currency.
pub(crate) fn price_in(offering: &Offering, currency_code: &str) -> Result<Money, DomainError> {
    let currency = Currency::from_code(currency_code).map_err(DomainError::from)?;
    offering.prices.price_in(currency).ok_or_else(|| {
        DomainError::new(
            Reason::PriceNotFoundForCurrency,
            format!(
                "offering {} has no price in {currency}; it is priced in {}",
                offering.code,
                offering.prices.currency_codes()
            ),
        )
    })
}

/// The full desired set of components: known codes, positive quantities, each
/// code once. Violations are recorded as `components[i]…`.
pub(crate) fn check_components(
    offering: &Offering,
    drafts: &[ComponentQuantityDraft],
    violations: &mut Violations,
) -> Vec<ComponentQuantity> {
    let mut components: Vec<ComponentQuantity> = Vec::with_capacity(drafts.len());
    for (index, draft) in drafts.iter().enumerate() {
        let path = format!("components[{index}]");
        let known = offering
            .components
            .iter()
            .find(|component| component.code.as_str() == draft.component_code);
        let Some(component) = known else {
            violations.push(
                format!("{path}.component_code"),
                Reason::ComponentNotFound,
                format!("offering {} has no component {:?}", offering.code, draft.component_code),
            );
            continue;
        };
        if components
            .iter()
            .any(|existing| existing.component_code == component.code)
        {
            violations.push(
                format!("{path}.component_code"),
                Reason::DuplicateComponents,
                format!("component {} is listed twice", component.code),
            );
            continue;
        }
        let Ok(quantity) = u32::try_from(draft.quantity) else {
            violations.push(
                format!("{path}.quantity"),
                Reason::ComponentQuantityInvalid,
                "must be a whole number from 1 to 4294967295",
            );
            continue;
        };
        if quantity == 0 {
            violations.push(
                format!("{path}.quantity"),
                Reason::ComponentQuantityInvalid,
                "must be at least 1",
            );
            continue;
        }
        components.push(ComponentQuantity {
            component_code: component.code.clone(),
            quantity,
        });
    }
    components
}

/// The coupon's code if it can be redeemed on this purchase.
fn check_coupon(input: &NewSubscription<'_>, price: Option<Money>) -> Result<Option<Code>, DomainError> {
    let coupon = match input.coupon {
        CouponChoice::None => return Ok(None),
        CouponChoice::Unknown(code) => {
            return Err(DomainError::new(
                Reason::CouponInvalid,
                format!("no coupon has code {code:?}"),
            ));
        }
        CouponChoice::Found(coupon) => coupon,
    };
    let invalid = |why: String| {
        Err(DomainError::new(
            Reason::CouponInvalid,
            format!("coupon {}: {why}", coupon.code),
        ))
    };
    if coupon.redeem_by.is_some_and(|deadline| deadline <= input.now) {
        return invalid("can no longer be redeemed".to_owned());
    }
    if coupon
        .max_redemptions
        .is_some_and(|limit| coupon.times_redeemed >= limit)
    {
        return invalid("has been redeemed as often as it may be".to_owned());
    }
    if !coupon.applies_to_offering_codes.is_empty() && !coupon.applies_to_offering_codes.contains(&input.offering.code)
    {
        return invalid(format!("does not apply to offering {}", input.offering.code));
    }
    if let (Discount::AmountOff(amount), Some(price)) = (coupon.discount, price)
        && amount.currency() != price.currency()
    {
        return invalid(format!(
            "is in {}, the purchase in {}",
            amount.currency(),
            price.currency()
        ));
    }
    Ok(Some(coupon.code.clone()))
}

/// Refuses a purchase in `family` while the business holds an active paid,
/// bundled or sponsored subscription of it; an active free one (a default
/// package) is replaced, i.e. expired now.
fn check_family_free(
    history: &[Subscription],
    family: &Code,
    now: DateTime<Utc>,
    replaced: &mut Vec<Subscription>,
) -> Result<(), DomainError> {
    for held in history.iter().filter(|held| &held.family == family && held.is_active()) {
        if held.payment_type != PaymentType::Free || held.bundled_from_subscription_id.is_some() {
            return Err(DomainError::new(
                Reason::AlreadySubscribed,
                format!(
                    "business already holds subscription {} ({}) in family {family}; change its plan instead",
                    held.id, held.offering_code
                ),
            ));
        }
        if !replaced.iter().any(|already: &Subscription| already.id == held.id) {
            let mut ended = held.next_version(now);
            ended.state = SubscriptionState::Expired;
            ended.expiration_time = Some(now);
            ended.auto_renew = false;
            ended.cancel_reason = "replaced by a purchase".to_owned();
            replaced.push(ended);
        }
    }
    Ok(())
}

/// A first-time subscriber has never held a non-free subscription of the
/// family (a free default package is not a purchase, so it does not use up
/// the trial).
pub(crate) fn first_time_in_family(history: &[Subscription], family: &Code) -> bool {
    !history
        .iter()
        .any(|held| &held.family == family && held.payment_type != PaymentType::Free)
}
