//! Changes charged now: held beside the subscription until paid, the old
//! plan in force meanwhile, applied when paid, dropped when not.

use super::tests::{at, bought, monthly};
use super::*;
use crate::Reason;
use crate::ids::InvoiceId;
use crate::subscription::create::ComponentQuantityDraft;

fn invoice() -> InvoiceId {
    InvoiceId::from_uuid(uuid::Uuid::now_v7())
}

/// A basic subscription with an upgrade to pro held for `invoice`.
fn held_upgrade(invoice: &InvoiceId) -> (Subscription, Subscription) {
    let basic = monthly("basic", 1000);
    let pro = monthly("pro", 3000);
    let subscription = bought(&basic, at(2026, 3, 15, 14));
    let changed = change_plan(&subscription, &pro, ChangeTiming::Default, true, at(2026, 3, 20, 9))
        .unwrap()
        .subscription;
    let held = hold_change(&subscription, &changed, invoice.clone(), at(2026, 3, 20, 9));
    (held, changed)
}

#[test]
fn a_held_change_keeps_the_old_plan_in_force() {
    let invoice = invoice();
    let (held, _) = held_upgrade(&invoice);
    assert_eq!(held.offering_code.as_str(), "basic");
    assert_eq!(held.purchase_price.amount_minor(), 1000);
    assert!(held.awaits_change_payment());
    let waiting = held.held_change.as_ref().unwrap();
    assert_eq!(waiting.plan.offering_code.as_str(), "pro");
    assert_eq!(waiting.plan.purchase_price.amount_minor(), 3000);
    assert_eq!(waiting.expire_time, at(2026, 3, 21, 8), "23 hours to be paid");
    assert_eq!(held.version, 2, "holding is a change of its own");
}

#[test]
fn paid_it_applies_the_plan_it_held() {
    let invoice = invoice();
    let (held, changed) = held_upgrade(&invoice);
    let applied = apply_held_change(&held, &invoice, at(2026, 3, 20, 10));
    assert_eq!(applied.events, [EventType::PlanChanged]);
    let after = applied.subscription;
    assert_eq!(after.plan(), changed.plan());
    assert_eq!(after.held_change, None);
    assert_eq!(after.version, held.version + 1);

    // Another invoice's payment applies nothing.
    let unrelated = apply_held_change(&held, &self::invoice(), at(2026, 3, 20, 10));
    assert!(!unrelated.changed());
    assert_eq!(unrelated.subscription, held);
}

#[test]
fn unpaid_it_is_dropped_and_the_plan_stays() {
    let invoice = invoice();
    let (held, _) = held_upgrade(&invoice);
    let dropped = drop_held_change(&held, at(2026, 3, 21, 8));
    assert_eq!(dropped.held_change, None);
    assert_eq!(dropped.plan(), held.plan());
    assert_eq!(dropped.version, held.version + 1);
}

#[test]
fn nothing_else_changes_the_plan_while_a_change_waits() {
    let invoice = invoice();
    let (held, _) = held_upgrade(&invoice);
    let team = monthly("team", 9000);
    let now = at(2026, 3, 20, 11);
    let refused = change_plan(&held, &team, ChangeTiming::Default, true, now).unwrap_err();
    assert_eq!(refused.reason(), Reason::ChangeAwaitingPayment);
    assert!(refused.message().contains(invoice.as_str()), "{}", refused.message());
    let basic = monthly("basic", 1000);
    let seats = [ComponentQuantityDraft {
        component_code: "seat".to_owned(),
        quantity: 3,
    }];
    let refused = update_components(&held, &basic, &seats, now).unwrap_err();
    assert_eq!(refused.reason(), Reason::ChangeAwaitingPayment);
    // A cancel is not a plan change: at the period end it keeps the held
    // change (paid, it still applies), now it drops it.
    let later = cancel(&held, CancelTiming::EndOfPeriod, "", now).unwrap().subscription;
    assert!(later.awaits_change_payment());
    let ended = cancel(&held, CancelTiming::Immediate, "", now).unwrap().subscription;
    assert_eq!(ended.held_change, None);
}

#[test]
fn a_renewal_before_the_payment_keeps_its_new_period() {
    let invoice = invoice();
    let (held, _) = held_upgrade(&invoice);
    let renewed = renew(&held, None, at(2026, 4, 15, 0)).unwrap().subscription;
    assert_eq!(renewed.offering_code.as_str(), "basic", "renewed on the plan in force");
    let applied = apply_held_change(&renewed, &invoice, at(2026, 4, 15, 1)).subscription;
    assert_eq!(applied.offering_code.as_str(), "pro");
    assert_eq!(
        applied.current_period, renewed.current_period,
        "not moved back a period"
    );
}

#[test]
fn components_held_apply_as_a_components_update() {
    let basic = monthly("basic", 1000);
    let subscription = bought(&basic, at(2026, 3, 15, 14));
    let seats = [ComponentQuantityDraft {
        component_code: "seat".to_owned(),
        quantity: 4,
    }];
    let changed = update_components(&subscription, &basic, &seats, at(2026, 3, 16, 0))
        .unwrap()
        .subscription;
    let invoice = invoice();
    let held = hold_change(&subscription, &changed, invoice.clone(), at(2026, 3, 16, 0));
    assert!(held.components.is_empty(), "no seats until paid");
    let applied = apply_held_change(&held, &invoice, at(2026, 3, 16, 1));
    assert_eq!(applied.events, [EventType::ComponentsUpdated]);
    assert_eq!(applied.subscription.components, changed.components);
}
