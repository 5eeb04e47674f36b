//! What charges do to a subscription: a failure starts dunning, a retry
//! that fails moves it on (or, with no retry left, ends the subscription), a
//! success recovers it. An incomplete purchase (its first charge unsettled)
//! is not in dunning: a success completes it, a decline ends it.

use chrono::{DateTime, Utc};

use super::lifecycle::Transition;
use super::{EventType, PaymentStatus, Subscription, SubscriptionState};
use crate::dunning::DunningPolicy;

/// A charge for the subscription failed at `now`.
pub fn charge_failed(subscription: &Subscription, policy: &DunningPolicy, now: DateTime<Utc>) -> Transition {
    if subscription.is_incomplete() {
        return incomplete_expired(subscription, now);
    }
    if subscription.dunning.is_some() {
        return retry_failed(subscription, policy, now);
    }
    let mut next = subscription.next_version(now);
    next.payment_status = PaymentStatus::PastDue;
    let dunning = policy.start(now);
    if dunning.next_retry_time.is_none() {
        return exhausted(next, now);
    }
    next.dunning = Some(dunning);
    Transition {
        subscription: next,
        events: vec![EventType::PastDue],
    }
}

/// A retry of the charge failed: the next retry (a change of the dunning
/// state that has no event of its own: persist the subscription anyway), or
/// the end.
pub fn retry_failed(subscription: &Subscription, policy: &DunningPolicy, now: DateTime<Utc>) -> Transition {
    let Some(dunning) = &subscription.dunning else {
        return charge_failed(subscription, policy, now);
    };
    let mut next = subscription.next_version(now);
    match policy.after_failed_retry(dunning) {
        Some(dunning) => {
            next.dunning = Some(dunning);
            Transition {
                subscription: next,
                events: Vec::new(),
            }
        }
        None => exhausted(next, now),
    }
}

/// A charge succeeded: a past-due subscription recovers, an incomplete one
/// is complete and starts (`subscription.started` comes now, not at the
/// purchase).
pub fn charge_succeeded(subscription: &Subscription, now: DateTime<Utc>) -> Transition {
    if subscription.payment_status == PaymentStatus::Ok && subscription.dunning.is_none() {
        return Transition {
            subscription: subscription.clone(),
            events: Vec::new(),
        };
    }
    let completed = subscription.is_incomplete();
    let mut next = subscription.next_version(now);
    next.payment_status = PaymentStatus::Ok;
    next.dunning = None;
    Transition {
        subscription: next,
        // Completing a purchase is its start, not a recovery.
        events: if completed {
            vec![EventType::Started]
        } else {
            vec![EventType::Recovered]
        },
    }
}

/// An incomplete purchase whose first charge was declined, or did not
/// succeed within [`super::INCOMPLETE_WINDOW`]: nothing was bought, it ends
/// now with reason [`super::INCOMPLETE_EXPIRED`].
pub fn incomplete_expired(subscription: &Subscription, now: DateTime<Utc>) -> Transition {
    let mut next = subscription.next_version(now);
    next.state = SubscriptionState::Expired;
    next.cancellation_time = Some(now);
    next.expiration_time = Some(now);
    next.auto_renew = false;
    next.pending_change = None;
    next.held_change = None;
    next.cancel_reason = super::INCOMPLETE_EXPIRED.to_owned();
    next.dunning = None;
    Transition {
        subscription: next,
        events: vec![EventType::Ended],
    }
}

/// Retries ran out: the subscription ends now.
fn exhausted(mut next: Subscription, now: DateTime<Utc>) -> Transition {
    next.state = SubscriptionState::Expired;
    next.expiration_time = Some(now);
    next.auto_renew = false;
    next.pending_change = None;
    next.held_change = None;
    next.cancel_reason = "payment failed after every retry".to_owned();
    next.dunning = None;
    Transition {
        subscription: next,
        events: vec![EventType::Ended],
    }
}
