//! Entitlements: whether a business may use a product, and what kind of
//! subscriber it is.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{PaymentType, Subscription, SubscriptionState};
use crate::text::Code;

text_enum!(
    SubscriberStatus {
        /// Active, and no earlier subscription of the family ended.
        FirstTime => "FIRST_TIME",
        /// Active, after an earlier one of the family ended.
        Returning => "RETURNING",
        /// Canceled, still within its paid time.
        Canceled => "CANCELED",
        /// Had one; none is active.
        Lapsed => "LAPSED",
        /// Never had one.
        NotSubscriber => "NOT_SUBSCRIBER",
        /// Holds an active sponsored grant.
        Sponsored => "SPONSORED",
    }
);

/// What a business has of one product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entitlement {
    pub product_code: Code,
    pub entitled: bool,
    /// The subscription that grants it (or, when lapsed, the last that did).
    pub subscription_id: Option<crate::ids::SubscriptionId>,
    pub offering_code: Option<Code>,
    pub subscriber_status: SubscriberStatus,
    pub in_grace_period: bool,
    /// When access ends if nothing changes (canceled), or ended (lapsed).
    pub expiration_time: Option<DateTime<Utc>>,
}

/// Every entitlement of one business, from all its subscriptions, each
/// paired with the product codes of its offering. Products none of them
/// names are `NOT_SUBSCRIBER`, which needs no row.
pub fn entitlements<'a>(subscriptions: impl IntoIterator<Item = (&'a Subscription, &'a [Code])>) -> Vec<Entitlement> {
    let mut by_product: BTreeMap<&Code, Vec<&Subscription>> = BTreeMap::new();
    let mut all: Vec<&Subscription> = Vec::new();
    for (subscription, products) in subscriptions {
        all.push(subscription);
        for product in products {
            by_product.entry(product).or_default().push(subscription);
        }
    }
    by_product
        .into_iter()
        .map(|(product, holders)| entitlement_of(product, &holders, &all))
        .collect()
}

fn entitlement_of(product: &Code, holders: &[&Subscription], all: &[&Subscription]) -> Entitlement {
    // The best active holder: a sponsored grant, then a running one, then a
    // canceled one; the newest among equals.
    let rank = |subscription: &Subscription| match (subscription.payment_type, subscription.state) {
        (PaymentType::Sponsored, _) => 3,
        (_, SubscriptionState::Purchased) => 2,
        _ => 1,
    };
    let best = holders
        .iter()
        // An incomplete purchase entitles to nothing until it is paid.
        .filter(|holder| holder.is_active() && !holder.is_incomplete())
        .max_by_key(|holder| (rank(holder), holder.create_time));
    if let Some(holder) = best {
        let subscriber_status = if holder.payment_type == PaymentType::Sponsored {
            SubscriberStatus::Sponsored
        } else if holder.state == SubscriptionState::Canceled {
            SubscriberStatus::Canceled
        } else if ended_earlier_in_family(holder, all) {
            SubscriberStatus::Returning
        } else {
            SubscriberStatus::FirstTime
        };
        return Entitlement {
            product_code: product.clone(),
            entitled: true,
            subscription_id: Some(holder.id.clone()),
            offering_code: Some(holder.offering_code.clone()),
            subscriber_status,
            // Past due: still entitled, on borrowed time until the retries end.
            in_grace_period: holder.dunning.is_some(),
            expiration_time: holder.expiration_time,
        };
    }
    let last = holders
        .iter()
        .max_by_key(|holder| holder.expiration_time.unwrap_or(holder.update_time));
    Entitlement {
        product_code: product.clone(),
        entitled: false,
        subscription_id: last.map(|holder| holder.id.clone()),
        offering_code: last.map(|holder| holder.offering_code.clone()),
        subscriber_status: SubscriberStatus::Lapsed,
        in_grace_period: false,
        expiration_time: last.and_then(|holder| holder.expiration_time),
    }
}

/// Whether a non-free subscription of the holder's family ended before the
/// holder began (a replaced free default does not make a returning customer).
fn ended_earlier_in_family(holder: &Subscription, all: &[&Subscription]) -> bool {
    all.iter().any(|other| {
        other.id != holder.id
            && other.family == holder.family
            && other.state == SubscriptionState::Expired
            && other.payment_type != PaymentType::Free
            && other.create_time <= holder.create_time
    })
}
