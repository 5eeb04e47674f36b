//! Cancel, reactivate, expire, renew: a subscription's life after purchase.

use chrono::{DateTime, Utc};

use super::{EventType, PaymentType, Subscription, SubscriptionState};
use crate::catalog::Offering;
use crate::error::{DomainError, Reason};
use crate::period::{Period, utc_date};

/// A subscription after a command, and the events it caused (none when the
/// command changed nothing).
#[derive(Debug, PartialEq, Eq)]
pub struct Transition {
    pub subscription: Subscription,
    pub events: Vec<EventType>,
}

impl Transition {
    pub(crate) fn unchanged(subscription: &Subscription) -> Self {
        Transition {
            subscription: subscription.clone(),
            events: Vec::new(),
        }
    }

    pub fn changed(&self) -> bool {
        !self.events.is_empty()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelTiming {
    /// Keep access until the paid time (or the trial) ends.
    EndOfPeriod,
    /// End now.
    Immediate,
}

fn refuse_bundled(subscription: &Subscription, action: &str) -> Result<(), DomainError> {
    match &subscription.bundled_from_subscription_id {
        Some(parent) => Err(DomainError::new(
            Reason::SubscriptionIsBundled,
            format!(
                "subscription {} is bundled by {parent} and follows it; {action} {parent} instead",
                subscription.id
            ),
        )),
        None => Ok(()),
    }
}

fn not_active(subscription: &Subscription) -> DomainError {
    DomainError::new(
        Reason::SubscriptionNotActive,
        format!("subscription {} is {}", subscription.id, subscription.state.as_str()),
    )
}

/// Cancels. At the end of the period the subscription stays active until
/// its paid time (or a running trial) ends; immediately, it expires now.
/// Cancelling a canceled subscription at the end of the period again changes
/// nothing.
pub fn cancel(
    subscription: &Subscription,
    timing: CancelTiming,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Transition, DomainError> {
    refuse_bundled(subscription, "cancel")?;
    match (subscription.state, timing) {
        (SubscriptionState::Expired, _) => Err(not_active(subscription)),
        (SubscriptionState::Canceled, CancelTiming::EndOfPeriod) => Ok(Transition::unchanged(subscription)),
        (_, CancelTiming::EndOfPeriod) => {
            let mut next = subscription.next_version(now);
            next.state = SubscriptionState::Canceled;
            next.cancellation_time = Some(now);
            next.cancel_reason = reason.to_owned();
            next.expiration_time = Some(match subscription.trial_end_time {
                Some(trial_end) if now < trial_end => trial_end,
                _ => subscription.current_period.end_time(),
            });
            next.auto_renew = false;
            next.pending_change = None;
            Ok(Transition {
                subscription: next,
                events: vec![EventType::Canceled],
            })
        }
        (state, CancelTiming::Immediate) => {
            let mut next = subscription.next_version(now);
            let mut events = Vec::new();
            if state == SubscriptionState::Purchased {
                next.cancellation_time = Some(now);
                next.cancel_reason = reason.to_owned();
                events.push(EventType::Canceled);
            }
            end(&mut next, now);
            events.push(EventType::Ended);
            Ok(Transition {
                subscription: next,
                events,
            })
        }
    }
}

fn end(subscription: &mut Subscription, now: DateTime<Utc>) {
    subscription.state = SubscriptionState::Expired;
    subscription.expiration_time = Some(now);
    subscription.auto_renew = false;
    subscription.pending_change = None;
    subscription.held_change = None;
}

/// Undoes a cancel that has not expired yet. A subscription that was never
/// canceled is left as it is.
pub fn reactivate(subscription: &Subscription, now: DateTime<Utc>) -> Result<Transition, DomainError> {
    refuse_bundled(subscription, "reactivate")?;
    match subscription.state {
        SubscriptionState::Purchased => Ok(Transition::unchanged(subscription)),
        SubscriptionState::Expired => Err(not_active(subscription)),
        SubscriptionState::Canceled if subscription.expiration_time.is_some_and(|end| end <= now) => {
            Err(not_active(subscription))
        }
        SubscriptionState::Canceled => {
            let mut next = subscription.next_version(now);
            next.state = SubscriptionState::Purchased;
            next.cancellation_time = None;
            next.cancel_reason = String::new();
            next.expiration_time = None;
            next.auto_renew = true;
            Ok(Transition {
                subscription: next,
                events: vec![EventType::Reactivated],
            })
        }
    }
}

/// Expires a canceled subscription once its expiration time has come.
pub fn expire(subscription: &Subscription, now: DateTime<Utc>) -> Transition {
    let due = subscription.state == SubscriptionState::Canceled
        && subscription.expiration_time.is_some_and(|expiration| expiration <= now);
    if !due {
        return Transition::unchanged(subscription);
    }
    let mut next = subscription.next_version(now);
    let expiration = subscription.expiration_time.unwrap_or(now);
    end(&mut next, now);
    next.expiration_time = Some(expiration);
    Transition {
        subscription: next,
        events: vec![EventType::Ended],
    }
}

/// The work due at the end of the current period (or trial): a pending plan
/// change applies first (`pending_offering` is its offering), then the next
/// period starts, counted from the anchor. Nothing happens before the period
/// ends, or to a subscription that does not renew.
pub fn renew(
    subscription: &Subscription,
    pending_offering: Option<&Offering>,
    now: DateTime<Utc>,
) -> Result<Transition, DomainError> {
    let period_end = subscription.current_period.end_time();
    if subscription.state != SubscriptionState::Purchased || !subscription.auto_renew || now < period_end {
        return Ok(Transition::unchanged(subscription));
    }
    let mut next = subscription.next_version(now);
    let mut events = Vec::new();
    if let (Some(pending), Some(offering)) = (&subscription.pending_change, pending_offering)
        && pending.effective_time <= period_end
        && offering.id == pending.offering_id
    {
        super::change::switch_offering(&mut next, offering)?;
        next.pending_change = None;
        events.push(EventType::PlanChanged);
    }
    let period_end_date = utc_date(period_end);
    let period = next
        .billing_anchor
        .period_containing(next.billing_interval, period_end_date);
    next.current_period = Period {
        start: period_end_date,
        end: period.end,
    };
    events.push(EventType::Renewed);
    Ok(Transition {
        subscription: next,
        events,
    })
}

/// Ends a bundled child now because its parent's new plan no longer bundles it.
pub fn end_bundled(child: &Subscription, now: DateTime<Utc>) -> Transition {
    if child.payment_type != PaymentType::Bundled || !child.is_active() {
        return Transition::unchanged(child);
    }
    let mut next = child.next_version(now);
    end(&mut next, now);
    next.cancel_reason = "no longer bundled by the plan".to_owned();
    Transition {
        subscription: next,
        events: vec![EventType::Ended],
    }
}

/// What a bundled child does when its parent changes: it is canceled,
/// reactivated, renewed and expired with it.
pub fn follow_parent(child: &Subscription, parent: &Subscription, now: DateTime<Utc>) -> Transition {
    if child.payment_type != PaymentType::Bundled || !child.is_active() {
        return Transition::unchanged(child);
    }
    let mut next = child.next_version(now);
    let event = match (child.state, parent.state) {
        (_, SubscriptionState::Expired) => {
            end(&mut next, now);
            next.expiration_time = parent.expiration_time.or(Some(now));
            EventType::Ended
        }
        (SubscriptionState::Purchased, SubscriptionState::Canceled) => {
            next.state = SubscriptionState::Canceled;
            next.cancellation_time = parent.cancellation_time;
            next.cancel_reason = "the bundling subscription was canceled".to_owned();
            next.expiration_time = parent.expiration_time;
            next.auto_renew = false;
            EventType::Canceled
        }
        (SubscriptionState::Canceled, SubscriptionState::Purchased) => {
            next.state = SubscriptionState::Purchased;
            next.cancellation_time = None;
            next.cancel_reason = String::new();
            next.expiration_time = None;
            next.auto_renew = true;
            EventType::Reactivated
        }
        (SubscriptionState::Purchased, SubscriptionState::Purchased)
            if child.current_period != parent.current_period
                || child.billing_interval != parent.billing_interval
                || child.trial_end_time != parent.trial_end_time =>
        {
            next.current_period = parent.current_period;
            next.billing_interval = parent.billing_interval;
            next.billing_anchor = parent.billing_anchor;
            next.trial_end_time = parent.trial_end_time;
            EventType::Renewed
        }
        _ => return Transition::unchanged(child),
    };
    Transition {
        subscription: next,
        events: vec![event],
    }
}
