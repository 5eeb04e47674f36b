//! Incomplete purchases: visible, never entitled, completed by a successful
//! charge, ended by a decline or by the window passing.

use super::tests::{at, bought, monthly, products};
use super::*;
use crate::dunning::DunningPolicy;

fn incomplete() -> Subscription {
    let mut subscription = bought(&monthly("pro", 3000), at(2026, 3, 10, 9));
    subscription.payment_status = PaymentStatus::Incomplete;
    subscription
}

#[test]
fn an_incomplete_purchase_entitles_to_nothing_yet() {
    let pending = incomplete();
    let website = products(&["website"]);
    let view = entitlements([(&pending, website.as_slice())]);
    assert!(view.iter().all(|entitlement| !entitlement.entitled), "{view:?}");
    assert!(pending.is_active(), "it still holds its family");

    let paid = charge_succeeded(&pending, at(2026, 3, 10, 10));
    assert_eq!(
        paid.events,
        [EventType::Started],
        "completing a purchase starts it; not a recovery"
    );
    assert_eq!(paid.subscription.payment_status, PaymentStatus::Ok);
    let view = entitlements([(&paid.subscription, website.as_slice())]);
    assert!(view[0].entitled);
}

#[test]
fn a_decline_ends_an_incomplete_purchase_without_dunning() {
    let pending = incomplete();
    let declined = charge_failed(&pending, &DunningPolicy::default(), at(2026, 3, 10, 11));
    assert_eq!(declined.events, [EventType::Ended]);
    let ended = declined.subscription;
    assert_eq!(ended.state, SubscriptionState::Expired);
    assert_eq!(ended.cancel_reason, INCOMPLETE_EXPIRED);
    assert_eq!(ended.dunning, None);
    assert_eq!(ended.expiration_time, Some(at(2026, 3, 10, 11)));
    assert!(!ended.auto_renew);
}

#[test]
fn the_window_is_23_hours_from_the_purchase() {
    let pending = incomplete();
    assert_eq!(pending.incomplete_deadline(), Some(at(2026, 3, 11, 8)));
    let paid = charge_succeeded(&pending, at(2026, 3, 10, 10)).subscription;
    assert_eq!(paid.incomplete_deadline(), None);
    let expired = incomplete_expired(&pending, at(2026, 3, 11, 8));
    assert_eq!(expired.subscription.state, SubscriptionState::Expired);
    assert_eq!(expired.subscription.version, pending.version + 1);
}
