//! A subscription whose provider is the billing engine (Maxio) follows what
//! the provider reports: its dunning, its renewals, its end. These functions
//! turn a report into the same transitions (and events) the service's own
//! engine makes. A report that changes nothing changes nothing.

use chrono::{DateTime, Utc};

use super::lifecycle::Transition;
use super::{EventType, PaymentStatus, Subscription, SubscriptionState};
use crate::period::{Period, utc_date};

/// What a provider reported about a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// A payment failed; the provider dunns.
    PaymentFailed,
    /// A payment went through.
    PaymentSucceeded,
    /// The subscription runs (again): active, trialing.
    Active,
    /// The subscription ended at the provider: canceled, expired.
    Ended,
    /// A new period began: `[start, end)`.
    Renewed { start: DateTime<Utc>, end: DateTime<Utc> },
}

/// Applies `report` at `now`.
pub fn mirror(subscription: &Subscription, report: Report, now: DateTime<Utc>) -> Transition {
    if subscription.state == SubscriptionState::Expired {
        // Final here: a late report cannot revive it.
        return Transition::unchanged(subscription);
    }
    let mut next = subscription.next_version(now);
    let events = match report {
        Report::PaymentFailed if subscription.payment_status == PaymentStatus::Ok => {
            next.payment_status = PaymentStatus::PastDue;
            vec![EventType::PastDue]
        }
        Report::PaymentSucceeded if subscription.payment_status == PaymentStatus::PastDue => {
            next.payment_status = PaymentStatus::Ok;
            next.dunning = None;
            vec![EventType::Recovered]
        }
        Report::Active => {
            let mut events = Vec::new();
            if subscription.state == SubscriptionState::Canceled {
                next.state = SubscriptionState::Purchased;
                next.cancellation_time = None;
                next.expiration_time = None;
                next.cancel_reason = String::new();
                next.auto_renew = true;
                events.push(EventType::Reactivated);
            }
            if subscription.payment_status == PaymentStatus::PastDue {
                next.payment_status = PaymentStatus::Ok;
                next.dunning = None;
                events.push(EventType::Recovered);
            }
            events
        }
        Report::Ended => {
            next.state = SubscriptionState::Expired;
            next.expiration_time = Some(now);
            next.auto_renew = false;
            next.pending_change = None;
            if next.cancel_reason.is_empty() {
                next.cancel_reason = "ended at the billing provider".to_owned();
            }
            vec![EventType::Ended]
        }
        Report::Renewed { start, end } => {
            let period = Period {
                start: utc_date(start),
                end: utc_date(end),
            };
            if period.start >= period.end || period.start <= subscription.current_period.start {
                Vec::new()
            } else {
                next.current_period = period;
                vec![EventType::Renewed]
            }
        }
        Report::PaymentFailed | Report::PaymentSucceeded => Vec::new(),
    };
    if events.is_empty() {
        return Transition::unchanged(subscription);
    }
    Transition {
        subscription: next,
        events,
    }
}
