//! Proration cases worked out by hand (the arithmetic is in each comment),
//! and the invariants that hold for any change on any day.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::catalog::{
    BillingAlignment, BillingInterval, BundleGraph, ComponentDraft, CouponDraft, CouponDurationKind, MoneyDraft,
    Offering, OfferingDraft, OfferingType,
};
use crate::ids::{CouponId, OfferingId, SubscriptionId};
use crate::subscription::{
    Business, ChangeTiming, ComponentQuantity, ComponentQuantityDraft, CouponChoice, NewSubscription, Subscription,
    change_plan, create_subscription, renew,
};
use crate::text::{Code, ExternalId};

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn offering(
    code: &str,
    currency: &str,
    price: i64,
    interval: BillingInterval,
    alignment: BillingAlignment,
) -> Offering {
    let draft = OfferingDraft {
        code: code.into(),
        display_name: code.into(),
        offering_type: Some(OfferingType::Package),
        family: "package".into(),
        prices: vec![MoneyDraft::new(currency, price)],
        billing_interval: Some(interval),
        billing_alignment: Some(alignment),
        components: vec![ComponentDraft {
            code: "seat".into(),
            display_name: "Seat".into(),
            unit_prices: vec![MoneyDraft::new(currency, 500)],
        }],
        ..OfferingDraft::default()
    };
    Offering::create(
        &draft,
        &HashSet::new(),
        &BundleGraph::default(),
        OfferingId::from_uuid(Uuid::now_v7()),
        at(2020, 1, 1),
    )
    .unwrap()
}

fn monthly(code: &str, currency: &str, price: i64) -> Offering {
    offering(
        code,
        currency,
        price,
        BillingInterval::Month,
        BillingAlignment::Anniversary,
    )
}

fn subscribe(offering: &Offering, on: DateTime<Utc>, seats: i64) -> Subscription {
    let business = Business {
        business_id: ExternalId::parse("biz").unwrap(),
        directory_id: ExternalId::parse("demo").unwrap(),
        create_time: on,
    };
    let components: Vec<ComponentQuantityDraft> = (seats > 0)
        .then(|| ComponentQuantityDraft {
            component_code: "seat".into(),
            quantity: seats,
        })
        .into_iter()
        .collect();
    let currency = offering.prices.currencies().next().unwrap();
    let input = NewSubscription {
        business: &business,
        buyer_id: "buyer",
        offering,
        currency_code: currency.code(),
        components: &components,
        coupon: CouponChoice::None,
        sponsored: false,
        available_in_directory: true,
        family_history: &[],
        bundled_offerings: &[],
        now: on,
    };
    create_subscription(&input, || SubscriptionId::from_uuid(Uuid::now_v7()))
        .unwrap()
        .subscription
}

/// Renews until the current period contains `on`.
fn renewed_to(mut subscription: Subscription, on: NaiveDate) -> Subscription {
    while subscription.current_period.end <= on {
        let due = subscription.current_period.end_time();
        subscription = renew(&subscription, None, due).unwrap().subscription;
    }
    subscription
}

fn amounts(lines: &[InvoiceLine]) -> Vec<(LineKind, i64)> {
    lines
        .iter()
        .map(|line| (line.kind, line.amount.amount_minor()))
        .collect()
}

fn change_lines(before: &Subscription, old: &Offering, new: &Offering, on: NaiveDate) -> Vec<InvoiceLine> {
    let now = on.and_hms_opt(12, 0, 0).unwrap().and_utc();
    let after = change_plan(before, new, ChangeTiming::Immediate, true, now)
        .unwrap()
        .subscription;
    plan_change_lines(before, old, &after, new, on).unwrap()
}

fn usd() -> Currency {
    Currency::from_code("USD").unwrap()
}

#[test]
fn calendar_first_part_month_is_prorated_by_days() {
    // Bought Mar 10 on a calendar month: [Mar 10, Apr 1) is 22 of March's 31 days.
    // Plan: 1000 × 22 / 31 = 709.68 → 710. Seats: 2 × 500 × 22 / 31 → 710.
    let bookings = offering(
        "bookings",
        "USD",
        1000,
        BillingInterval::Month,
        BillingAlignment::Calendar,
    );
    let subscription = subscribe(&bookings, at(2026, 3, 10), 2);
    let lines = period_lines(&subscription, &bookings).unwrap();
    assert_eq!(amounts(&lines), [(LineKind::Plan, 710), (LineKind::Component, 710)]);
    assert_eq!(
        lines[0].period,
        Period {
            start: date(2026, 3, 10),
            end: date(2026, 4, 1)
        }
    );
    let invoice = finalize(usd(), lines, None, Money::zero(usd())).unwrap();
    assert_eq!(invoice.total.amount_minor(), 1420);
    assert_eq!(invoice.amount_due.amount_minor(), 1420);
}

#[test]
fn a_full_anniversary_period_is_the_full_price() {
    let pro = monthly("pro", "USD", 3000);
    let subscription = subscribe(&pro, at(2026, 3, 10), 0);
    assert_eq!(
        amounts(&period_lines(&subscription, &pro).unwrap()),
        [(LineKind::Plan, 3000)]
    );
    let renewed = renewed_to(subscription, date(2026, 4, 10));
    assert_eq!(
        amounts(&period_lines(&renewed, &pro).unwrap()),
        [(LineKind::Plan, 3000)]
    );
}

#[test]
fn the_proration_table() {
    struct Case {
        name: &'static str,
        old: Offering,
        new: Offering,
        bought: DateTime<Utc>,
        on: NaiveDate,
        expected: [(LineKind, i64); 2],
    }
    let cases = [
        Case {
            // Period [Jan 15, Feb 15) = 31 days; Feb 3 leaves 12.
            // Credit 1000 × 12 / 31 = 387.10 → 387; charge 3000 × 12 / 31 = 1161.29 → 1161.
            name: "mid-period upgrade monthly → monthly",
            old: monthly("basic", "USD", 1000),
            new: monthly("pro", "USD", 3000),
            bought: at(2026, 1, 15),
            on: date(2026, 2, 3),
            expected: [(LineKind::ProrationCredit, -387), (LineKind::ProrationCharge, 1161)],
        },
        Case {
            // Old period [Mar 15, Apr 15) = 31 days; Mar 20 leaves 26: 1000 × 26 / 31 = 838.71 → 839.
            // New yearly period [Jan 15 2026, Jan 15 2027) = 365 days; 301 left: 12000 × 301 / 365 = 9895.89 → 9896.
            name: "monthly → yearly now",
            old: monthly("monthly", "USD", 1000),
            new: offering(
                "yearly",
                "USD",
                12_000,
                BillingInterval::Year,
                BillingAlignment::Anniversary,
            ),
            bought: at(2026, 1, 15),
            on: date(2026, 3, 20),
            expected: [(LineKind::ProrationCredit, -839), (LineKind::ProrationCharge, 9896)],
        },
        Case {
            // Old yearly [Jan 15 2026, Jan 15 2027): Jun 2 leaves 227 of 365: 12000 × 227 / 365 = 7463.01 → 7463.
            // New monthly [May 15, Jun 15) = 31 days; 13 left: 1100 × 13 / 31 = 461.29 → 461.
            name: "yearly → monthly now",
            old: offering(
                "yearly",
                "USD",
                12_000,
                BillingInterval::Year,
                BillingAlignment::Anniversary,
            ),
            new: monthly("monthly", "USD", 1100),
            bought: at(2026, 1, 15),
            on: date(2026, 6, 2),
            expected: [(LineKind::ProrationCredit, -7463), (LineKind::ProrationCharge, 461)],
        },
        Case {
            // [Feb 15, Mar 15) = 28 days, changed on its first day: all of it.
            name: "change on the first day of a period",
            old: monthly("basic", "USD", 1000),
            new: monthly("pro", "USD", 3000),
            bought: at(2026, 1, 15),
            on: date(2026, 2, 15),
            expected: [(LineKind::ProrationCredit, -1000), (LineKind::ProrationCharge, 3000)],
        },
        Case {
            // [Feb 15, Mar 15) = 28 days, changed on its last day: 1 day.
            // 1000 / 28 = 35.71 → 36; 3000 / 28 = 107.14 → 107.
            name: "change on the last day of a period",
            old: monthly("basic", "USD", 1000),
            new: monthly("pro", "USD", 3000),
            bought: at(2026, 1, 15),
            on: date(2026, 3, 14),
            expected: [(LineKind::ProrationCredit, -36), (LineKind::ProrationCharge, 107)],
        },
        Case {
            // Anchor Jan 31 2027: [Jan 31, Feb 28) = 28 days; Feb 10 leaves 18.
            // 1000 × 18 / 28 = 642.86 → 643; 3000 × 18 / 28 = 1928.57 → 1929.
            name: "31st anchor through February, non-leap",
            old: monthly("basic", "USD", 1000),
            new: monthly("pro", "USD", 3000),
            bought: at(2027, 1, 31),
            on: date(2027, 2, 10),
            expected: [(LineKind::ProrationCredit, -643), (LineKind::ProrationCharge, 1929)],
        },
        Case {
            // Anchor Jan 31 2028: [Jan 31, Feb 29) = 29 days; Feb 10 leaves 19.
            // 1000 × 19 / 29 = 655.17 → 655; 3000 × 19 / 29 = 1965.52 → 1966.
            name: "31st anchor through February, leap",
            old: monthly("basic", "USD", 1000),
            new: monthly("pro", "USD", 3000),
            bought: at(2028, 1, 31),
            on: date(2028, 2, 10),
            expected: [(LineKind::ProrationCredit, -655), (LineKind::ProrationCharge, 1966)],
        },
        Case {
            // JPY has no minor unit: the same arithmetic in whole yen.
            name: "JPY",
            old: monthly("basic", "JPY", 1000),
            new: monthly("pro", "JPY", 3000),
            bought: at(2026, 1, 15),
            on: date(2026, 2, 3),
            expected: [(LineKind::ProrationCredit, -387), (LineKind::ProrationCharge, 1161)],
        },
        Case {
            // KWD has three decimals: 12.500 → 30.000 KWD, 12 of 31 days.
            // 12500 × 12 / 31 = 4838.71 → 4839; 30000 × 12 / 31 = 11612.90 → 11613.
            name: "KWD",
            old: monthly("basic", "KWD", 12_500),
            new: monthly("pro", "KWD", 30_000),
            bought: at(2026, 1, 15),
            on: date(2026, 2, 3),
            expected: [(LineKind::ProrationCredit, -4839), (LineKind::ProrationCharge, 11613)],
        },
    ];
    for case in cases {
        let before = renewed_to(subscribe(&case.old, case.bought, 0), case.on);
        let lines = change_lines(&before, &case.old, &case.new, case.on);
        assert_eq!(amounts(&lines), case.expected, "{}", case.name);
    }
}

#[test]
fn a_credit_larger_than_the_charge_becomes_account_credit_and_pays_the_next_renewal() {
    // The yearly → monthly case nets −7002: nothing is charged, 7002 becomes credit.
    let yearly = offering(
        "yearly",
        "USD",
        12_000,
        BillingInterval::Year,
        BillingAlignment::Anniversary,
    );
    let monthly_plan = monthly("monthly", "USD", 1100);
    let before = subscribe(&yearly, at(2026, 1, 15), 0);
    let lines = change_lines(&before, &yearly, &monthly_plan, date(2026, 6, 2));
    let change = finalize(usd(), lines, None, Money::zero(usd())).unwrap();
    assert_eq!(change.total.amount_minor(), -7002);
    assert_eq!(change.amount_due.amount_minor(), 0);
    assert_eq!(change.credit_balance_after.amount_minor(), 7002);

    // The next renewal (1100) is paid from the credit.
    let renewal = finalize(
        usd(),
        vec![InvoiceLine {
            kind: LineKind::Plan,
            description: "monthly".into(),
            offering_code: None,
            component_code: None,
            quantity: 1,
            period: Period {
                start: date(2026, 6, 15),
                end: date(2026, 7, 15),
            },
            amount: Money::new(1100, usd()),
        }],
        None,
        change.credit_balance_after,
    )
    .unwrap();
    assert_eq!(renewal.credit_applied.amount_minor(), 1100);
    assert_eq!(renewal.amount_due.amount_minor(), 0);
    assert_eq!(renewal.credit_balance_after.amount_minor(), 5902);
}

fn coupon(discount: Discount, duration: CouponDurationKind, periods: i32) -> Coupon {
    let (percent_off, amount_off) = match discount {
        Discount::PercentOff(bps) => (Some(i32::from(bps)), None),
        Discount::AmountOff(money) => (
            None,
            Some(MoneyDraft::new(money.currency().code(), money.amount_minor())),
        ),
    };
    let draft = CouponDraft {
        code: "SAVE".into(),
        percent_off,
        amount_off,
        duration: Some(duration),
        duration_periods: periods,
        ..CouponDraft::default()
    };
    Coupon::create(
        &draft,
        &HashSet::new(),
        CouponId::from_uuid(Uuid::now_v7()),
        at(2020, 1, 1),
    )
    .unwrap()
}

#[test]
fn a_coupon_discounts_the_prorated_subtotal_never_below_zero() {
    // 710 (the calendar part-month) at 20%: 142 off, 568 due.
    let bookings = offering(
        "bookings",
        "USD",
        1000,
        BillingInterval::Month,
        BillingAlignment::Calendar,
    );
    let subscription = subscribe(&bookings, at(2026, 3, 10), 0);
    let lines = period_lines(&subscription, &bookings).unwrap();
    let twenty = coupon(Discount::PercentOff(2000), CouponDurationKind::Once, 0);
    let invoice = finalize(usd(), lines.clone(), Some(&twenty), Money::zero(usd())).unwrap();
    assert_eq!(invoice.subtotal.amount_minor(), 710);
    assert_eq!(invoice.discount.amount_minor(), 142);
    assert_eq!(invoice.total.amount_minor(), 568);
    assert_eq!(invoice.lines.last().unwrap().kind, LineKind::Discount);
    assert_eq!(invoice.lines.last().unwrap().amount.amount_minor(), -142);
    assert!(invoice.coupon_applied);

    // An amount larger than the subtotal takes it to zero, not below.
    let big = coupon(
        Discount::AmountOff(Money::new(5000, usd())),
        CouponDurationKind::Forever,
        0,
    );
    let free = finalize(usd(), lines, Some(&big), Money::zero(usd())).unwrap();
    assert_eq!(free.discount.amount_minor(), 710);
    assert_eq!(free.total.amount_minor(), 0);
}

#[test]
fn percent_discounts_round_half_up() {
    // 2525 at 10% = 252.5 → 253.
    let ten = coupon(Discount::PercentOff(1000), CouponDurationKind::Forever, 0);
    let line = InvoiceLine {
        kind: LineKind::Plan,
        description: String::new(),
        offering_code: None,
        component_code: None,
        quantity: 1,
        period: Period {
            start: date(2026, 1, 1),
            end: date(2026, 2, 1),
        },
        amount: Money::new(2525, usd()),
    };
    let invoice = finalize(usd(), vec![line], Some(&ten), Money::zero(usd())).unwrap();
    assert_eq!(invoice.discount.amount_minor(), 253);
}

#[test]
fn coupon_durations_count_periods() {
    let once = coupon(Discount::PercentOff(1000), CouponDurationKind::Once, 0);
    let three = coupon(Discount::PercentOff(1000), CouponDurationKind::Repeating, 3);
    let forever = coupon(Discount::PercentOff(1000), CouponDurationKind::Forever, 0);
    assert!(coupon_in_force(&once, 0, true));
    assert!(!coupon_in_force(&once, 1, true));
    assert!(
        !coupon_in_force(&once, 1, false),
        "a change after the only discounted period"
    );
    assert!((0..3).all(|used| coupon_in_force(&three, used, true)));
    assert!(!coupon_in_force(&three, 3, true));
    assert!(
        coupon_in_force(&three, 2, false),
        "changes inside the discounted periods"
    );
    assert!(coupon_in_force(&forever, 1000, true));
}

#[test]
fn component_changes_are_prorated_per_component() {
    // Seats 2 → 5 on Feb 3 of [Jan 15, Feb 15): +3 × 500 × 12 / 31 = 580.65 → 581.
    let pro = monthly("pro", "USD", 3000);
    let subscription = subscribe(&pro, at(2026, 1, 15), 2);
    let seat = |quantity| ComponentQuantity {
        component_code: Code::parse("seat").unwrap(),
        quantity,
    };
    let more = component_change_lines(&subscription, &pro, &[seat(2)], &[seat(5)], date(2026, 2, 3)).unwrap();
    assert_eq!(amounts(&more), [(LineKind::ProrationCharge, 581)]);
    assert_eq!(more[0].quantity, 3);
    // 2 → 0: −2 × 500 × 12 / 31 = −387.10 → −387.
    let fewer = component_change_lines(&subscription, &pro, &[seat(2)], &[], date(2026, 2, 3)).unwrap();
    assert_eq!(amounts(&fewer), [(LineKind::ProrationCredit, -387)]);
    assert!(
        component_change_lines(&subscription, &pro, &[seat(2)], &[seat(2)], date(2026, 2, 3))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn components_move_with_a_plan_change() {
    // Basic with 2 seats → Pro with 2 seats on Feb 3 (12 of 31 days):
    // credits 387 (plan) and 387 (seats: 1000 × 12 / 31); charges 1161 and 387.
    let basic = monthly("basic", "USD", 1000);
    let pro = monthly("pro", "USD", 3000);
    let before = subscribe(&basic, at(2026, 1, 15), 2);
    let lines = change_lines(&before, &basic, &pro, date(2026, 2, 3));
    assert_eq!(
        amounts(&lines),
        [
            (LineKind::ProrationCredit, -387),
            (LineKind::ProrationCredit, -387),
            (LineKind::ProrationCharge, 1161),
            (LineKind::ProrationCharge, 387)
        ]
    );
}

fn any_anchor() -> impl Strategy<Value = NaiveDate> {
    (2020_i32..2040, 1_u32..=12, 1_u32..=31).prop_map(|(y, m, d)| {
        (1..=d)
            .rev()
            .find_map(|day| NaiveDate::from_ymd_opt(y, m, day))
            .unwrap()
    })
}

proptest! {
    #[test]
    fn credit_and_charge_never_exceed_their_prices(
        anchor in any_anchor(),
        offset in 0_i64..400,
        old_price in 0_i64..1_000_000_000,
        new_price in 0_i64..1_000_000_000,
        yearly_target in any::<bool>(),
    ) {
        let old = monthly("old", "USD", old_price);
        let new = if yearly_target {
            offering("new", "USD", new_price, BillingInterval::Year, BillingAlignment::Anniversary)
        } else {
            monthly("new", "USD", new_price)
        };
        let bought = anchor.and_hms_opt(9, 0, 0).unwrap().and_utc();
        let on = anchor + chrono::Duration::days(offset);
        let before = renewed_to(subscribe(&old, bought, 0), on);
        let lines = change_lines(&before, &old, &new, on);
        for line in &lines {
            match line.kind {
                LineKind::ProrationCredit => prop_assert!(line.amount.amount_minor() < 0 && -line.amount.amount_minor() <= old_price),
                LineKind::ProrationCharge => prop_assert!(line.amount.amount_minor() > 0 && line.amount.amount_minor() <= new_price),
                other => prop_assert!(false, "unexpected line {other:?}"),
            }
        }
    }

    #[test]
    fn a_change_between_equal_prices_nets_to_zero(
        anchor in any_anchor(),
        offset in 0_i64..400,
        price in 0_i64..1_000_000_000,
    ) {
        let old = monthly("old", "USD", price);
        let new = monthly("new", "USD", price);
        let bought = anchor.and_hms_opt(9, 0, 0).unwrap().and_utc();
        let on = anchor + chrono::Duration::days(offset);
        let before = renewed_to(subscribe(&old, bought, 0), on);
        let lines = change_lines(&before, &old, &new, on);
        let net: i64 = lines.iter().map(|line| line.amount.amount_minor()).sum();
        prop_assert_eq!(net, 0);
    }
}
