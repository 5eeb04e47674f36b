use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::catalog::{
    BillingAlignment, BundleGraph, BundleNode, ComponentDraft, Coupon, CouponDraft, CouponDurationKind, MoneyDraft,
    Offering, OfferingDraft, OfferingStatus, OfferingType, OfferingUpdate,
};
use crate::error::{DomainError, Reason};
use crate::ids::{CouponId, OfferingId};

pub(super) fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn code(text: &str) -> Code {
    Code::parse(text).unwrap()
}

struct OfferingSpec {
    code: &'static str,
    family: &'static str,
    usd: i64,
    interval: BillingInterval,
    trial_days: i32,
    bundles: Vec<&'static str>,
    alignment: BillingAlignment,
}

fn spec(code: &'static str, family: &'static str, usd: i64, interval: BillingInterval) -> OfferingSpec {
    OfferingSpec {
        code,
        family,
        usd,
        interval,
        trial_days: 0,
        bundles: vec![],
        alignment: BillingAlignment::Anniversary,
    }
}

fn offering(spec: OfferingSpec) -> Offering {
    let draft = OfferingDraft {
        code: spec.code.into(),
        display_name: spec.code.into(),
        offering_type: Some(OfferingType::Package),
        family: spec.family.into(),
        prices: vec![MoneyDraft::new("USD", spec.usd)],
        billing_interval: Some(spec.interval),
        billing_alignment: Some(spec.alignment),
        trial_days: spec.trial_days,
        bundled_offering_codes: spec.bundles.iter().map(|b| (*b).to_owned()).collect(),
        components: vec![ComponentDraft {
            code: "seat".into(),
            display_name: "Seat".into(),
            unit_prices: vec![MoneyDraft::new("USD", 500)],
        }],
        ..OfferingDraft::default()
    };
    let graph = BundleGraph::new(spec.bundles.iter().map(|b| {
        (
            code(b),
            BundleNode {
                family: code(b),
                bundled_offering_codes: vec![],
            },
        )
    }));
    Offering::create(
        &draft,
        &HashSet::new(),
        &graph,
        OfferingId::from_uuid(Uuid::now_v7()),
        at(2026, 1, 1, 0),
    )
    .unwrap()
}

pub(super) fn monthly(code: &'static str, usd: i64) -> Offering {
    offering(spec(code, "package", usd, BillingInterval::Month))
}

fn business() -> Business {
    Business {
        business_id: ExternalId::parse("biz-1").unwrap(),
        directory_id: ExternalId::parse("demo").unwrap(),
        create_time: at(2026, 1, 1, 0),
    }
}

fn new_id() -> SubscriptionId {
    SubscriptionId::from_uuid(Uuid::now_v7())
}

struct Purchase<'a> {
    offering: &'a Offering,
    currency: &'a str,
    components: Vec<ComponentQuantityDraft>,
    coupon: CouponChoice<'a>,
    sponsored: bool,
    available: bool,
    history: Vec<Subscription>,
    bundled: Vec<Offering>,
    now: DateTime<Utc>,
}

fn purchase(offering: &Offering) -> Purchase<'_> {
    Purchase {
        offering,
        currency: "USD",
        components: vec![],
        coupon: CouponChoice::None,
        sponsored: false,
        available: true,
        history: vec![],
        bundled: vec![],
        now: at(2026, 3, 15, 14),
    }
}

fn buy(purchase: &Purchase<'_>) -> Result<Created, DomainError> {
    let business = business();
    let input = NewSubscription {
        business: &business,
        buyer_id: "buyer-1",
        offering: purchase.offering,
        currency_code: purchase.currency,
        components: &purchase.components,
        coupon: purchase.coupon,
        sponsored: purchase.sponsored,
        available_in_directory: purchase.available,
        family_history: &purchase.history,
        bundled_offerings: &purchase.bundled,
        now: purchase.now,
    };
    create_subscription(&input, new_id)
}

pub(super) fn bought(offering: &Offering, now: DateTime<Utc>) -> Subscription {
    buy(&Purchase {
        now,
        ..purchase(offering)
    })
    .unwrap()
    .subscription
}

fn reason_of<T: std::fmt::Debug>(result: Result<T, DomainError>) -> Reason {
    result.unwrap_err().reason()
}

// ---- create ----

#[test]
fn a_paid_purchase_runs_from_today_on_its_own_anchor() {
    let pro = monthly("pro", 3000);
    let created = buy(&purchase(&pro)).unwrap();
    let subscription = &created.subscription;
    assert_eq!(subscription.state, SubscriptionState::Purchased);
    assert!(subscription.is_active());
    assert_eq!(subscription.payment_type, PaymentType::Paid);
    assert_eq!(subscription.purchase_price.amount_minor(), 3000);
    assert_eq!(subscription.billing_anchor.date(), date(2026, 3, 15));
    assert_eq!(
        subscription.current_period,
        Period {
            start: date(2026, 3, 15),
            end: date(2026, 4, 15)
        }
    );
    assert_eq!(subscription.version, 1);
    assert_eq!(created.events, [(EventType::Started, subscription.id.clone())]);
}

#[test]
fn a_calendar_purchase_first_runs_to_the_next_first() {
    let app = offering(OfferingSpec {
        alignment: BillingAlignment::Calendar,
        ..spec("bookings", "bookings", 1000, BillingInterval::Month)
    });
    let subscription = buy(&purchase(&app)).unwrap().subscription;
    assert_eq!(
        subscription.current_period,
        Period {
            start: date(2026, 3, 15),
            end: date(2026, 4, 1)
        }
    );
    assert_eq!(subscription.billing_anchor.date(), date(2026, 1, 1));
}

#[test]
fn free_and_sponsored_purchases_cost_nothing() {
    let free = monthly("free", 0);
    assert_eq!(
        buy(&purchase(&free)).unwrap().subscription.payment_type,
        PaymentType::Free
    );
    let pro = offering(OfferingSpec {
        trial_days: 14,
        ..spec("pro", "package", 3000, BillingInterval::Month)
    });
    let sponsored = buy(&Purchase {
        sponsored: true,
        available: false,
        ..purchase(&pro)
    })
    .unwrap()
    .subscription;
    assert_eq!(sponsored.payment_type, PaymentType::Sponsored);
    assert!(sponsored.purchase_price.is_zero());
    assert_eq!(sponsored.trial_end_time, None, "grants have no trial");
}

#[test]
fn a_trial_is_only_for_first_time_subscribers_of_the_family() {
    let plus = offering(OfferingSpec {
        trial_days: 14,
        ..spec("plus", "package", 1500, BillingInterval::Month)
    });
    let first = buy(&purchase(&plus)).unwrap().subscription;
    assert_eq!(first.trial_end_time, Some(at(2026, 3, 29, 0)));
    assert_eq!(
        first.current_period,
        Period {
            start: date(2026, 3, 15),
            end: date(2026, 3, 29)
        }
    );
    assert_eq!(
        first.billing_anchor.date(),
        date(2026, 3, 29),
        "billing anchors on the trial's end"
    );

    let mut ended = first.clone();
    ended.state = SubscriptionState::Expired;
    let again = buy(&Purchase {
        history: vec![ended],
        now: at(2026, 6, 1, 9),
        ..purchase(&plus)
    })
    .unwrap()
    .subscription;
    assert_eq!(again.trial_end_time, None);

    // A free default package is not a purchase: it does not use up the trial.
    let free = bought(&monthly("free", 0), at(2026, 1, 1, 0));
    let after_free = buy(&Purchase {
        history: vec![free],
        ..purchase(&plus)
    })
    .unwrap();
    assert!(after_free.subscription.trial_end_time.is_some());
}

#[test]
fn offerings_not_sold_here_are_refused() {
    let pro = monthly("pro", 3000);
    assert_eq!(
        reason_of(buy(&Purchase {
            available: false,
            ..purchase(&pro)
        })),
        Reason::OfferingNotAvailable
    );
    let hide = OfferingUpdate {
        status: Some(Some(OfferingStatus::Hidden)),
        ..OfferingUpdate::default()
    };
    let hidden = pro.update(&hide, at(2026, 2, 1, 0)).unwrap();
    assert_eq!(reason_of(buy(&purchase(&hidden))), Reason::OfferingNotAvailable);
    assert!(
        buy(&Purchase {
            sponsored: true,
            ..purchase(&hidden)
        })
        .is_ok(),
        "grants may use hidden offerings"
    );
    let retire = OfferingUpdate {
        status: Some(Some(OfferingStatus::Retired)),
        ..OfferingUpdate::default()
    };
    let retired = pro.update(&retire, at(2026, 2, 1, 0)).unwrap();
    assert_eq!(
        reason_of(buy(&Purchase {
            sponsored: true,
            ..purchase(&retired)
        })),
        Reason::OfferingNotAvailable
    );
}

#[test]
fn currency_components_and_coupons_are_checked_field_by_field() {
    let pro = monthly("pro", 3000);
    let seat = |quantity| ComponentQuantityDraft {
        component_code: "seat".into(),
        quantity,
    };
    let welcome = Coupon::create(
        &CouponDraft {
            code: "WELCOME".into(),
            percent_off: Some(2000),
            duration: Some(CouponDurationKind::Once),
            max_redemptions: 1,
            redeem_by: Some(at(2026, 4, 1, 0)),
            ..CouponDraft::default()
        },
        &HashSet::new(),
        CouponId::from_uuid(Uuid::now_v7()),
        at(2026, 1, 1, 0),
    )
    .unwrap();
    let mut exhausted = welcome.clone();
    exhausted.times_redeemed = 1;
    let cases: Vec<(&str, Purchase<'_>, Reason, &str)> = vec![
        (
            "no EUR price",
            Purchase {
                currency: "EUR",
                ..purchase(&pro)
            },
            Reason::PriceNotFoundForCurrency,
            "currency_code",
        ),
        (
            "unknown currency",
            Purchase {
                currency: "ABC",
                ..purchase(&pro)
            },
            Reason::CurrencyUnknown,
            "currency_code",
        ),
        (
            "unknown component",
            Purchase {
                components: vec![ComponentQuantityDraft {
                    component_code: "desk".into(),
                    quantity: 1,
                }],
                ..purchase(&pro)
            },
            Reason::ComponentNotFound,
            "components[0].component_code",
        ),
        (
            "zero seats",
            Purchase {
                components: vec![seat(0)],
                ..purchase(&pro)
            },
            Reason::ComponentQuantityInvalid,
            "components[0].quantity",
        ),
        (
            "negative seats",
            Purchase {
                components: vec![seat(-2)],
                ..purchase(&pro)
            },
            Reason::ComponentQuantityInvalid,
            "components[0].quantity",
        ),
        (
            "seats twice",
            Purchase {
                components: vec![seat(1), seat(2)],
                ..purchase(&pro)
            },
            Reason::DuplicateComponents,
            "components[1].component_code",
        ),
        (
            "unknown coupon",
            Purchase {
                coupon: CouponChoice::Unknown("NOPE"),
                ..purchase(&pro)
            },
            Reason::CouponInvalid,
            "coupon_code",
        ),
        (
            "exhausted coupon",
            Purchase {
                coupon: CouponChoice::Found(&exhausted),
                ..purchase(&pro)
            },
            Reason::CouponInvalid,
            "coupon_code",
        ),
        (
            "expired coupon",
            Purchase {
                coupon: CouponChoice::Found(&welcome),
                now: at(2026, 4, 1, 0),
                ..purchase(&pro)
            },
            Reason::CouponInvalid,
            "coupon_code",
        ),
        (
            "bad buyer",
            Purchase { ..purchase(&pro) },
            Reason::FieldInvalid,
            "buyer_id",
        ),
    ];
    for (name, case, reason, field) in cases {
        let result = if name == "bad buyer" {
            let business = business();
            create_subscription(
                &NewSubscription {
                    business: &business,
                    buyer_id: "",
                    offering: case.offering,
                    currency_code: case.currency,
                    components: &case.components,
                    coupon: case.coupon,
                    sponsored: false,
                    available_in_directory: true,
                    family_history: &[],
                    bundled_offerings: &[],
                    now: case.now,
                },
                new_id,
            )
        } else {
            buy(&case)
        };
        let error = result.unwrap_err();
        assert_eq!(error.reason(), reason, "{name}");
        assert_eq!(error.violations()[0].field, field, "{name}");
    }
    let with_both = buy(&Purchase {
        components: vec![seat(3)],
        coupon: CouponChoice::Found(&welcome),
        ..purchase(&pro)
    })
    .unwrap()
    .subscription;
    assert_eq!(
        with_both.components,
        [ComponentQuantity {
            component_code: code("seat"),
            quantity: 3
        }]
    );
    assert_eq!(with_both.coupon_code, Some(code("WELCOME")));
}

#[test]
fn one_active_subscription_per_family_but_a_free_default_is_replaced() {
    let free = monthly("free", 0);
    let pro = monthly("pro", 3000);
    let default = bought(&free, at(2026, 1, 1, 0));
    let upgraded = buy(&Purchase {
        history: vec![default.clone()],
        ..purchase(&pro)
    })
    .unwrap();
    assert_eq!(upgraded.replaced.len(), 1);
    assert_eq!(upgraded.replaced[0].state, SubscriptionState::Expired);
    assert_eq!(upgraded.events[0], (EventType::Ended, default.id.clone()));

    let paid = bought(&pro, at(2026, 1, 1, 0));
    assert_eq!(
        reason_of(buy(&Purchase {
            history: vec![paid.clone()],
            ..purchase(&pro)
        })),
        Reason::AlreadySubscribed
    );
    let canceled = cancel(&paid, CancelTiming::EndOfPeriod, "", at(2026, 1, 2, 0))
        .unwrap()
        .subscription;
    assert_eq!(
        reason_of(buy(&Purchase {
            history: vec![canceled.clone()],
            ..purchase(&pro)
        })),
        Reason::AlreadySubscribed
    );
    let expired = expire(&canceled, at(2026, 2, 1, 0)).subscription;
    assert!(
        buy(&Purchase {
            history: vec![expired],
            ..purchase(&pro)
        })
        .is_ok()
    );
    // Other families do not count.
    let app = offering(spec("bookings", "bookings", 1000, BillingInterval::Month));
    assert!(
        buy(&Purchase {
            history: vec![paid],
            ..purchase(&app)
        })
        .is_ok()
    );
}

#[test]
fn bundles_become_children_living_the_parents_periods() {
    let seo = offering(spec("seo", "seo", 500, BillingInterval::Month));
    let pro = offering(OfferingSpec {
        bundles: vec!["seo"],
        ..spec("pro", "package", 3000, BillingInterval::Month)
    });
    let created = buy(&Purchase {
        bundled: vec![seo.clone()],
        ..purchase(&pro)
    })
    .unwrap();
    let child = &created.bundled[0];
    assert_eq!(child.offering_code, code("seo"));
    assert_eq!(child.family, code("seo"));
    assert_eq!(child.payment_type, PaymentType::Bundled);
    assert!(child.purchase_price.is_zero());
    assert_eq!(
        child.bundled_from_subscription_id,
        Some(created.subscription.id.clone())
    );
    assert_eq!(child.current_period, created.subscription.current_period);
    assert_eq!(created.events.len(), 2);

    // A paid subscription of a bundled family blocks the purchase.
    let own_seo = bought(&seo, at(2026, 1, 1, 0));
    assert_eq!(
        reason_of(buy(&Purchase {
            bundled: vec![seo],
            history: vec![own_seo],
            ..purchase(&pro)
        })),
        Reason::AlreadySubscribed
    );
}

// ---- cancel, reactivate, expire ----

#[test]
fn cancel_at_period_end_keeps_access_until_expiration() {
    let pro = monthly("pro", 3000);
    let subscription = bought(&pro, at(2026, 3, 15, 14));
    let canceled = cancel(
        &subscription,
        CancelTiming::EndOfPeriod,
        "too expensive",
        at(2026, 3, 20, 9),
    )
    .unwrap();
    let after = &canceled.subscription;
    assert_eq!(canceled.events, [EventType::Canceled]);
    assert_eq!(after.state, SubscriptionState::Canceled);
    assert!(after.is_active());
    assert_eq!(after.cancellation_time, Some(at(2026, 3, 20, 9)));
    assert_eq!(after.expiration_time, Some(at(2026, 4, 15, 0)));
    assert_eq!(after.cancel_reason, "too expensive");
    assert!(!after.auto_renew);
    assert_eq!(after.version, 2);

    assert!(
        !cancel(after, CancelTiming::EndOfPeriod, "", at(2026, 3, 21, 0))
            .unwrap()
            .changed()
    );
    assert_eq!(expire(after, at(2026, 4, 14, 23)).subscription, *after, "not yet");
    let expired = expire(after, at(2026, 4, 15, 0));
    assert_eq!(expired.events, [EventType::Ended]);
    assert_eq!(expired.subscription.state, SubscriptionState::Expired);
    assert_eq!(expired.subscription.expiration_time, Some(at(2026, 4, 15, 0)));
    assert_eq!(
        reason_of(cancel(
            &expired.subscription,
            CancelTiming::Immediate,
            "",
            at(2026, 5, 1, 0)
        )),
        Reason::SubscriptionNotActive
    );
}

#[test]
fn a_cancel_during_the_trial_expires_at_its_end() {
    let plus = offering(OfferingSpec {
        trial_days: 14,
        ..spec("plus", "package", 1500, BillingInterval::Month)
    });
    let trial = bought(&plus, at(2026, 3, 15, 14));
    let canceled = cancel(&trial, CancelTiming::EndOfPeriod, "", at(2026, 3, 16, 0))
        .unwrap()
        .subscription;
    assert_eq!(canceled.expiration_time, trial.trial_end_time);
}

#[test]
fn an_immediate_cancel_ends_now() {
    let subscription = bought(&monthly("pro", 3000), at(2026, 3, 15, 14));
    let ended = cancel(&subscription, CancelTiming::Immediate, "fraud", at(2026, 3, 16, 8)).unwrap();
    assert_eq!(ended.events, [EventType::Canceled, EventType::Ended]);
    assert_eq!(ended.subscription.state, SubscriptionState::Expired);
    assert_eq!(ended.subscription.expiration_time, Some(at(2026, 3, 16, 8)));
    // Ending a canceled one now: only Ended.
    let canceled = cancel(&subscription, CancelTiming::EndOfPeriod, "", at(2026, 3, 16, 0))
        .unwrap()
        .subscription;
    let now = cancel(&canceled, CancelTiming::Immediate, "", at(2026, 3, 17, 0)).unwrap();
    assert_eq!(now.events, [EventType::Ended]);
}

#[test]
fn reactivate_undoes_a_cancel_before_expiry_only() {
    let subscription = bought(&monthly("pro", 3000), at(2026, 3, 15, 14));
    assert!(!reactivate(&subscription, at(2026, 3, 16, 0)).unwrap().changed());
    let canceled = cancel(&subscription, CancelTiming::EndOfPeriod, "", at(2026, 3, 16, 0))
        .unwrap()
        .subscription;
    let back = reactivate(&canceled, at(2026, 4, 1, 0)).unwrap();
    assert_eq!(back.events, [EventType::Reactivated]);
    assert_eq!(back.subscription.state, SubscriptionState::Purchased);
    assert_eq!(back.subscription.expiration_time, None);
    assert!(back.subscription.auto_renew);
    assert_eq!(
        reason_of(reactivate(&canceled, at(2026, 4, 15, 0))),
        Reason::SubscriptionNotActive
    );
    let expired = expire(&canceled, at(2026, 4, 15, 0)).subscription;
    assert_eq!(
        reason_of(reactivate(&expired, at(2026, 4, 16, 0))),
        Reason::SubscriptionNotActive
    );
}

#[test]
fn bundled_children_are_not_changed_alone() {
    let seo = offering(spec("seo", "seo", 500, BillingInterval::Month));
    let pro = offering(OfferingSpec {
        bundles: vec!["seo"],
        ..spec("pro", "package", 3000, BillingInterval::Month)
    });
    let child = buy(&Purchase {
        bundled: vec![seo.clone()],
        ..purchase(&pro)
    })
    .unwrap()
    .bundled
    .remove(0);
    let now = at(2026, 3, 20, 0);
    assert_eq!(
        reason_of(cancel(&child, CancelTiming::Immediate, "", now)),
        Reason::SubscriptionIsBundled
    );
    assert_eq!(reason_of(reactivate(&child, now)), Reason::SubscriptionIsBundled);
    assert_eq!(
        reason_of(change_plan(&child, &seo, ChangeTiming::Default, true, now)),
        Reason::SubscriptionIsBundled
    );
}

#[test]
fn children_follow_their_parent_both_ways() {
    let seo = offering(spec("seo", "seo", 500, BillingInterval::Month));
    let pro = offering(OfferingSpec {
        bundles: vec!["seo"],
        ..spec("pro", "package", 3000, BillingInterval::Month)
    });
    let created = buy(&Purchase {
        bundled: vec![seo],
        ..purchase(&pro)
    })
    .unwrap();
    let (parent, child) = (created.subscription, created.bundled[0].clone());
    let now = at(2026, 3, 20, 0);
    let canceled_parent = cancel(&parent, CancelTiming::EndOfPeriod, "", now)
        .unwrap()
        .subscription;
    let canceled_child = follow_parent(&child, &canceled_parent, now);
    assert_eq!(canceled_child.events, [EventType::Canceled]);
    assert_eq!(
        canceled_child.subscription.expiration_time,
        canceled_parent.expiration_time
    );

    let back_parent = reactivate(&canceled_parent, now).unwrap().subscription;
    let back_child = follow_parent(&canceled_child.subscription, &back_parent, now);
    assert_eq!(back_child.events, [EventType::Reactivated]);
    assert_eq!(back_child.subscription.state, SubscriptionState::Purchased);

    let renewed_parent = renew(&back_parent, None, at(2026, 4, 15, 0)).unwrap().subscription;
    let renewed_child = follow_parent(&back_child.subscription, &renewed_parent, at(2026, 4, 15, 0));
    assert_eq!(renewed_child.subscription.current_period, renewed_parent.current_period);

    let ended_parent = cancel(&renewed_parent, CancelTiming::Immediate, "", at(2026, 4, 20, 0))
        .unwrap()
        .subscription;
    let ended_child = follow_parent(&renewed_child.subscription, &ended_parent, at(2026, 4, 20, 0));
    assert_eq!(ended_child.events, [EventType::Ended]);
    assert!(!follow_parent(&ended_child.subscription, &ended_parent, at(2026, 4, 21, 0)).changed());
}

// ---- renew ----

#[test]
fn a_year_of_monthly_renewals_on_a_31st_anchor() {
    let pro = monthly("pro", 3000);
    let mut subscription = bought(&pro, at(2027, 1, 31, 10));
    let mut starts = vec![subscription.current_period.start];
    for _ in 0..12 {
        let due = subscription.current_period.end_time();
        assert!(
            !renew(&subscription, None, due - Duration::seconds(1))
                .unwrap()
                .changed(),
            "early"
        );
        let renewed = renew(&subscription, None, due).unwrap();
        assert_eq!(renewed.events, [EventType::Renewed]);
        assert_eq!(
            renewed.subscription.current_period.start, subscription.current_period.end,
            "no gap"
        );
        subscription = renewed.subscription;
        starts.push(subscription.current_period.start);
    }
    let days: Vec<u32> = starts.iter().map(chrono::Datelike::day).collect();
    assert_eq!(days, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31]);
    assert_eq!(subscription.current_period.end, date(2028, 2, 29));
}

#[test]
fn a_trial_ends_into_the_first_billed_period() {
    let plus = offering(OfferingSpec {
        trial_days: 14,
        alignment: BillingAlignment::Calendar,
        ..spec("plus", "package", 1500, BillingInterval::Month)
    });
    let trial = bought(&plus, at(2026, 3, 20, 14));
    assert_eq!(
        trial.current_period,
        Period {
            start: date(2026, 3, 20),
            end: date(2026, 4, 3)
        }
    );
    let paid = renew(&trial, None, at(2026, 4, 3, 0)).unwrap().subscription;
    assert_eq!(
        paid.current_period,
        Period {
            start: date(2026, 4, 3),
            end: date(2026, 5, 1)
        }
    );
    let next = renew(&paid, None, at(2026, 5, 1, 0)).unwrap().subscription;
    assert_eq!(
        next.current_period,
        Period {
            start: date(2026, 5, 1),
            end: date(2026, 6, 1)
        }
    );
}

#[test]
fn canceled_subscriptions_do_not_renew() {
    let subscription = bought(&monthly("pro", 3000), at(2026, 3, 15, 14));
    let canceled = cancel(&subscription, CancelTiming::EndOfPeriod, "", at(2026, 3, 16, 0))
        .unwrap()
        .subscription;
    assert!(!renew(&canceled, None, at(2026, 4, 15, 0)).unwrap().changed());
}

// ---- change plan ----

#[test]
fn upgrades_apply_now_and_downgrades_wait_for_the_period_end() {
    let basic = monthly("basic", 1000);
    let pro = monthly("pro", 3000);
    let subscription = bought(&basic, at(2026, 3, 15, 14));
    let now = at(2026, 3, 20, 9);

    let upgrade = change_plan(&subscription, &pro, ChangeTiming::Default, true, now).unwrap();
    assert!(upgrade.applied_now && upgrade.upgrade);
    assert_eq!(upgrade.events, [EventType::PlanChanged]);
    assert_eq!(upgrade.subscription.offering_code, code("pro"));
    assert_eq!(upgrade.subscription.purchase_price.amount_minor(), 3000);
    assert_eq!(upgrade.subscription.current_period, subscription.current_period);
    assert_eq!(upgrade.effective_time, now);

    let on_pro = upgrade.subscription;
    let downgrade = change_plan(&on_pro, &basic, ChangeTiming::Default, true, now).unwrap();
    assert!(!downgrade.applied_now && !downgrade.upgrade);
    assert_eq!(downgrade.events, [EventType::PlanChangeScheduled]);
    assert_eq!(
        downgrade.subscription.offering_code,
        code("pro"),
        "still on pro until the period ends"
    );
    let pending = downgrade.subscription.pending_change.clone().unwrap();
    assert_eq!(pending.offering_code, code("basic"));
    assert_eq!(pending.effective_time, at(2026, 4, 15, 0));

    let applied = renew(&downgrade.subscription, Some(&basic), at(2026, 4, 15, 0)).unwrap();
    assert_eq!(applied.events, [EventType::PlanChanged, EventType::Renewed]);
    assert_eq!(applied.subscription.offering_code, code("basic"));
    assert_eq!(applied.subscription.pending_change, None);
    assert_eq!(
        applied.subscription.current_period,
        Period {
            start: date(2026, 4, 15),
            end: date(2026, 5, 15)
        }
    );

    // Timing overrides.
    let forced_now = change_plan(&on_pro, &basic, ChangeTiming::Immediate, true, now).unwrap();
    assert!(forced_now.applied_now);
    let forced_later = change_plan(&subscription, &pro, ChangeTiming::EndOfPeriod, true, now).unwrap();
    assert!(!forced_later.applied_now);
    // Asking for the current plan withdraws a pending change.
    let withdrawn = change_plan(&downgrade.subscription, &pro, ChangeTiming::Default, true, now).unwrap();
    assert_eq!(withdrawn.subscription.pending_change, None);
}

#[test]
fn plans_compare_on_their_annualised_price() {
    let monthly_plan = monthly("m", 1000);
    let same_per_year = offering(spec("y", "package", 12_000, BillingInterval::Year));
    let cheaper_per_year = offering(spec("y2", "package", 11_999, BillingInterval::Year));
    let subscription = bought(&monthly_plan, at(2026, 3, 15, 14));
    let now = at(2026, 3, 20, 0);
    assert!(
        change_plan(&subscription, &same_per_year, ChangeTiming::Default, true, now)
            .unwrap()
            .upgrade
    );
    assert!(
        !change_plan(&subscription, &cheaper_per_year, ChangeTiming::Default, true, now)
            .unwrap()
            .upgrade
    );
}

#[test]
fn monthly_to_yearly_now_keeps_the_anchor() {
    let subscription = bought(&monthly("m", 1000), at(2026, 1, 15, 14));
    let yearly = offering(spec("y", "package", 12_000, BillingInterval::Year));
    let changed = change_plan(&subscription, &yearly, ChangeTiming::Default, true, at(2026, 3, 20, 0)).unwrap();
    assert_eq!(changed.subscription.billing_interval, BillingInterval::Year);
    assert_eq!(
        changed.subscription.current_period,
        Period {
            start: date(2026, 1, 15),
            end: date(2027, 1, 15)
        }
    );
    // And back: the monthly period containing the day, from the same anchor.
    let monthly_again = monthly("m2", 1100);
    let back = change_plan(
        &changed.subscription,
        &monthly_again,
        ChangeTiming::Immediate,
        true,
        at(2026, 6, 2, 0),
    )
    .unwrap()
    .subscription;
    assert_eq!(
        back.current_period,
        Period {
            start: date(2026, 5, 15),
            end: date(2026, 6, 15)
        }
    );
}

#[test]
fn plan_changes_are_refused_by_the_rules() {
    let pro = monthly("pro", 3000);
    let subscription = bought(&pro, at(2026, 3, 15, 14));
    let now = at(2026, 3, 20, 0);
    let app = offering(spec("bookings", "bookings", 1000, BillingInterval::Month));
    assert_eq!(
        reason_of(change_plan(&subscription, &pro, ChangeTiming::Default, true, now)),
        Reason::SamePlan
    );
    assert_eq!(
        reason_of(change_plan(&subscription, &app, ChangeTiming::Default, true, now)),
        Reason::CrossFamilyChange
    );
    let other = monthly("other", 100);
    assert_eq!(
        reason_of(change_plan(&subscription, &other, ChangeTiming::Default, false, now)),
        Reason::OfferingNotAvailable
    );
    let canceled = cancel(&subscription, CancelTiming::EndOfPeriod, "", now)
        .unwrap()
        .subscription;
    assert_eq!(
        reason_of(change_plan(&canceled, &other, ChangeTiming::Default, true, now)),
        Reason::SubscriptionNotActive
    );
    let euro_only = Offering::create(
        &OfferingDraft {
            code: "euro".into(),
            display_name: "Euro".into(),
            offering_type: Some(OfferingType::Package),
            family: "package".into(),
            prices: vec![MoneyDraft::new("EUR", 100)],
            billing_interval: Some(BillingInterval::Month),
            ..OfferingDraft::default()
        },
        &HashSet::new(),
        &BundleGraph::default(),
        OfferingId::from_uuid(Uuid::now_v7()),
        now,
    )
    .unwrap();
    assert_eq!(
        reason_of(change_plan(&subscription, &euro_only, ChangeTiming::Default, true, now)),
        Reason::PriceNotFoundForCurrency
    );
}

#[test]
fn components_are_replaced_by_the_full_desired_set() {
    let pro = monthly("pro", 3000);
    let subscription = bought(&pro, at(2026, 3, 15, 14));
    let now = at(2026, 3, 20, 0);
    let seats = |quantity| {
        vec![ComponentQuantityDraft {
            component_code: "seat".into(),
            quantity,
        }]
    };
    let updated = update_components(&subscription, &pro, &seats(5), now).unwrap();
    assert_eq!(updated.events, [EventType::ComponentsUpdated]);
    assert_eq!(updated.subscription.components[0].quantity, 5);
    assert!(
        update_components(&updated.subscription, &pro, &[], now)
            .unwrap()
            .subscription
            .components
            .is_empty()
    );
    assert_eq!(
        reason_of(update_components(&subscription, &pro, &seats(0), now)),
        Reason::ComponentQuantityInvalid
    );
}

// ---- entitlements ----

pub(super) fn products(codes: &[&str]) -> Vec<Code> {
    codes.iter().map(|c| code(c)).collect()
}

#[test]
fn the_six_subscriber_statuses() {
    let pro = monthly("pro", 3000);
    let website = products(&["website"]);
    let start = at(2026, 1, 10, 0);

    // FIRST_TIME: active, nothing earlier.
    let first = bought(&pro, start);
    let view = entitlements([(&first, website.as_slice())]);
    assert_eq!(view[0].subscriber_status, SubscriberStatus::FirstTime);
    assert!(view[0].entitled);

    // CANCELED: canceled, still in its paid time.
    let canceled = cancel(&first, CancelTiming::EndOfPeriod, "", at(2026, 1, 20, 0))
        .unwrap()
        .subscription;
    let view = entitlements([(&canceled, website.as_slice())]);
    assert_eq!(view[0].subscriber_status, SubscriberStatus::Canceled);
    assert!(view[0].entitled);
    assert_eq!(view[0].expiration_time, canceled.expiration_time);

    // LAPSED: had one, none active.
    let expired = expire(&canceled, at(2026, 2, 10, 0)).subscription;
    let view = entitlements([(&expired, website.as_slice())]);
    assert_eq!(view[0].subscriber_status, SubscriberStatus::Lapsed);
    assert!(!view[0].entitled);

    // RETURNING: active again after an ended one.
    let again = bought(&pro, at(2026, 3, 1, 0));
    let view = entitlements([(&expired, website.as_slice()), (&again, website.as_slice())]);
    assert_eq!(view[0].subscriber_status, SubscriberStatus::Returning);
    assert_eq!(view[0].subscription_id, Some(again.id.clone()));

    // SPONSORED: an active grant wins.
    let grant = buy(&Purchase {
        sponsored: true,
        now: at(2026, 3, 2, 0),
        ..purchase(&pro)
    })
    .unwrap()
    .subscription;
    let view = entitlements([(&again, website.as_slice()), (&grant, website.as_slice())]);
    assert_eq!(view[0].subscriber_status, SubscriberStatus::Sponsored);

    // NOT_SUBSCRIBER: no subscription names the product, so no row.
    let view = entitlements([(&again, website.as_slice())]);
    assert!(
        view.iter()
            .all(|entitlement| entitlement.product_code != code("bookings"))
    );
    assert_eq!(
        SubscriberStatus::from_text("NOT_SUBSCRIBER"),
        Some(SubscriberStatus::NotSubscriber)
    );
}

#[test]
fn a_replaced_free_default_does_not_make_a_returning_subscriber() {
    let free = monthly("free", 0);
    let pro = monthly("pro", 3000);
    let default = bought(&free, at(2026, 1, 1, 0));
    let created = buy(&Purchase {
        history: vec![default],
        ..purchase(&pro)
    })
    .unwrap();
    let website = products(&["website"]);
    let view = entitlements([
        (&created.replaced[0], website.as_slice()),
        (&created.subscription, website.as_slice()),
    ]);
    assert_eq!(view[0].subscriber_status, SubscriberStatus::FirstTime);
}

#[test]
fn an_interval_change_never_reaches_back_before_the_first_billed_date() {
    // CALENDAR, started mid-March: the yearly period runs from January 1st,
    // but this subscription's starts on the day it was bought.
    let monthly_calendar = offering(OfferingSpec {
        alignment: BillingAlignment::Calendar,
        ..spec("m", "package", 1000, BillingInterval::Month)
    });
    let yearly_calendar = offering(OfferingSpec {
        alignment: BillingAlignment::Calendar,
        ..spec("y", "package", 12_000, BillingInterval::Year)
    });
    let subscription = bought(&monthly_calendar, at(2026, 3, 15, 14));
    let renewed = renew(&subscription, None, at(2026, 4, 1, 0)).unwrap().subscription;
    let changed = change_plan(
        &renewed,
        &yearly_calendar,
        ChangeTiming::Immediate,
        true,
        at(2026, 4, 20, 0),
    )
    .unwrap();
    assert_eq!(
        changed.subscription.current_period,
        Period {
            start: date(2026, 3, 15),
            end: date(2027, 1, 1)
        }
    );
    // ANNIVERSARY: the yearly period from the anchor, even after monthly renewals.
    let monthly = bought(&monthly("m2", 1000), at(2026, 1, 15, 9));
    let renewed = renew(&monthly, None, at(2026, 2, 15, 0)).unwrap().subscription;
    let yearly = offering(spec("y2", "package", 12_000, BillingInterval::Year));
    let changed = change_plan(&renewed, &yearly, ChangeTiming::Immediate, true, at(2026, 2, 20, 0)).unwrap();
    assert_eq!(
        changed.subscription.current_period,
        Period {
            start: date(2026, 1, 15),
            end: date(2027, 1, 15)
        }
    );
}

// ---- payments ----

#[test]
fn a_failed_charge_starts_dunning_and_a_success_recovers() {
    let policy = crate::dunning::DunningPolicy::default();
    let subscription = bought(&monthly("pro", 3000), at(2026, 3, 15, 14));
    let failed = charge_failed(&subscription, &policy, at(2026, 4, 15, 0));
    assert_eq!(failed.events, [EventType::PastDue]);
    let past_due = failed.subscription;
    assert_eq!(past_due.payment_status, PaymentStatus::PastDue);
    assert_eq!(
        past_due.state,
        SubscriptionState::Purchased,
        "still active during grace"
    );
    let dunning = past_due.dunning.clone().unwrap();
    assert_eq!(dunning.next_retry_time, Some(at(2026, 4, 16, 0)));
    assert_eq!(dunning.grace_end_time, at(2026, 4, 22, 0));

    let retried = retry_failed(&past_due, &policy, at(2026, 4, 16, 0));
    assert!(retried.events.is_empty(), "a failed retry has no event of its own");
    assert_eq!(retried.subscription.dunning.as_ref().unwrap().attempt_count, 2);
    assert_eq!(retried.subscription.version, past_due.version + 1);

    let recovered = charge_succeeded(&retried.subscription, at(2026, 4, 18, 0));
    assert_eq!(recovered.events, [EventType::Recovered]);
    assert_eq!(recovered.subscription.payment_status, PaymentStatus::Ok);
    assert_eq!(recovered.subscription.dunning, None);
    assert!(
        charge_succeeded(&recovered.subscription, at(2026, 4, 19, 0))
            .events
            .is_empty()
    );
}

#[test]
fn running_out_of_retries_ends_the_subscription() {
    let policy = crate::dunning::DunningPolicy::default();
    let mut subscription = charge_failed(
        &bought(&monthly("pro", 3000), at(2026, 3, 15, 14)),
        &policy,
        at(2026, 4, 15, 0),
    )
    .subscription;
    let mut last = Vec::new();
    for day in [16, 18, 20, 22] {
        let next = retry_failed(&subscription, &policy, at(2026, 4, day, 0));
        last = next.events.clone();
        subscription = next.subscription;
    }
    assert_eq!(last, [EventType::Ended]);
    assert_eq!(subscription.state, SubscriptionState::Expired);
    assert_eq!(subscription.expiration_time, Some(at(2026, 4, 22, 0)));
    assert_eq!(subscription.dunning, None);
}

#[test]
fn a_past_due_subscription_is_entitled_in_grace() {
    let policy = crate::dunning::DunningPolicy::default();
    let subscription = bought(&monthly("pro", 3000), at(2026, 3, 15, 14));
    let past_due = charge_failed(&subscription, &policy, at(2026, 4, 15, 0)).subscription;
    let website = products(&["website"]);
    let view = entitlements([(&past_due, website.as_slice())]);
    assert!(view[0].entitled);
    assert!(view[0].in_grace_period);
    let paid = entitlements([(&subscription, website.as_slice())]);
    assert!(!paid[0].in_grace_period);
}

mod mirrored {
    use super::*;
    use crate::subscription::{PaymentStatus, Report, cancel, mirror};

    fn pro() -> Subscription {
        bought(&monthly("pro", 3000), at(2026, 3, 10, 9))
    }

    #[test]
    fn payment_reports_move_the_payment_status_once() {
        let running = pro();
        let failed = mirror(&running, Report::PaymentFailed, at(2026, 4, 10, 9));
        assert_eq!(failed.events, [EventType::PastDue]);
        assert_eq!(failed.subscription.payment_status, PaymentStatus::PastDue);
        // Reported twice: nothing more happens.
        let again = mirror(&failed.subscription, Report::PaymentFailed, at(2026, 4, 10, 10));
        assert!(again.events.is_empty());
        assert_eq!(again.subscription, failed.subscription);
        let paid = mirror(&failed.subscription, Report::PaymentSucceeded, at(2026, 4, 11, 9));
        assert_eq!(paid.events, [EventType::Recovered]);
        assert_eq!(paid.subscription.payment_status, PaymentStatus::Ok);
        assert!(
            mirror(&running, Report::PaymentSucceeded, at(2026, 4, 11, 9))
                .events
                .is_empty()
        );
    }

    #[test]
    fn a_renewal_moves_the_period_forward_only() {
        let running = pro();
        let renewed = mirror(
            &running,
            Report::Renewed {
                start: at(2026, 4, 10, 9),
                end: at(2026, 5, 10, 9),
            },
            at(2026, 4, 10, 9),
        );
        assert_eq!(renewed.events, [EventType::Renewed]);
        assert_eq!(renewed.subscription.current_period.start, date(2026, 4, 10));
        assert_eq!(renewed.subscription.current_period.end, date(2026, 5, 10));
        let older = mirror(
            &renewed.subscription,
            Report::Renewed {
                start: at(2026, 3, 10, 9),
                end: at(2026, 4, 10, 9),
            },
            at(2026, 4, 12, 9),
        );
        assert!(older.events.is_empty(), "an older period is not a renewal");
    }

    #[test]
    fn ending_and_reviving_follow_the_provider_but_expired_is_final() {
        let running = pro();
        let canceled = cancel(&running, CancelTiming::EndOfPeriod, "leaving", at(2026, 3, 20, 9)).unwrap();
        let active = mirror(&canceled.subscription, Report::Active, at(2026, 3, 21, 9));
        assert_eq!(active.events, [EventType::Reactivated]);
        assert_eq!(active.subscription.state, SubscriptionState::Purchased);
        assert_eq!(active.subscription.expiration_time, None);
        let ended = mirror(&running, Report::Ended, at(2026, 4, 10, 9));
        assert_eq!(ended.events, [EventType::Ended]);
        assert_eq!(ended.subscription.state, SubscriptionState::Expired);
        for report in [Report::Active, Report::PaymentSucceeded, Report::Ended] {
            assert!(
                mirror(&ended.subscription, report, at(2026, 4, 11, 9))
                    .events
                    .is_empty()
            );
        }
        assert!(mirror(&running, Report::Active, at(2026, 3, 21, 9)).events.is_empty());
    }
}
