//! Payment methods and invoices end to end, on SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, TestApp, advance_clock as advance, assert_status, backend_tests, get_subscription as get,
    purchase_request, spawn_manual_app, timestamp as ts, violated_fields,
};
use tonic::Code;

backend_tests!(
    a_business_has_one_payment_method_from_test_tokens,
    payment_method_errors_have_their_reasons,
    invoice_lookups_are_checked,
    twenty_four_renewals_make_twenty_four_paid_invoices_that_tile_time,
    a_declining_card_is_retried_on_schedule_then_the_subscription_expires,
    a_good_card_attached_during_dunning_recovers_at_the_next_retry,
    a_trial_ending_without_a_card_falls_into_dunning,
    a_paid_purchase_needs_a_card_and_a_declined_one_buys_nothing,
    first_invoices_prorate_a_calendar_part_month_with_seats_and_coupons,
    plan_changes_bill_proration_and_credit_pays_the_next_renewal,
    seat_changes_are_prorated_and_previewed,
    previews_leave_no_trace,
    a_declined_upgrade_or_seat_increase_is_not_applied,
);

async fn app_with_business(backend: Backend) -> TestApp {
    let app = spawn_manual_app(backend, "2026-03-10T09:00:00Z").await;
    app.load_demo_catalog().await;
    app.subscriptions()
        .provision_business(pb::ProvisionBusinessRequest {
            request_id: "provision".into(),
            business_id: "biz-1".into(),
            directory_id: "demo".into(),
            buyer_id: "owner".into(),
        })
        .await
        .unwrap();
    app
}

async fn attach(app: &TestApp, token: &str, request_id: &str) -> Result<pb::PaymentMethod, tonic::Status> {
    app.payment_methods()
        .attach_payment_method(pb::AttachPaymentMethodRequest {
            request_id: request_id.into(),
            business_id: "biz-1".into(),
            token: token.into(),
        })
        .await
        .map(|response| response.into_inner().payment_method.unwrap())
}

async fn a_business_has_one_payment_method_from_test_tokens(backend: Backend) {
    let app = app_with_business(backend).await;
    let visa = attach(&app, "pm_card_visa", "attach-1").await.unwrap();
    assert_eq!((visa.brand.as_str(), visa.last4.as_str()), ("visa", "4242"));
    assert_eq!(visa.provider, "local");
    assert_eq!(visa.status, pb::PaymentMethodStatus::Active as i32);
    assert_eq!(
        attach(&app, "pm_card_visa", "attach-1").await.unwrap(),
        visa,
        "a replay"
    );

    // Declining tokens attach; another attach replaces the method.
    let declining = attach(&app, "pm_card_chargeDeclinedInsufficientFunds", "attach-2")
        .await
        .unwrap();
    assert_eq!((declining.brand.as_str(), declining.last4.as_str()), ("visa", "9995"));
    let mastercard = attach(&app, "pm_card_mastercard", "attach-3").await.unwrap();
    let on_file = app
        .payment_methods()
        .get_payment_method(pb::GetPaymentMethodRequest {
            business_id: "biz-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .payment_method
        .unwrap();
    assert_eq!(on_file, mastercard);
    assert_eq!(on_file.last4, "4444");

    app.payment_methods()
        .detach_payment_method(pb::DetachPaymentMethodRequest {
            request_id: "detach-1".into(),
            business_id: "biz-1".into(),
        })
        .await
        .unwrap();
    let gone = app
        .payment_methods()
        .get_payment_method(pb::GetPaymentMethodRequest {
            business_id: "biz-1".into(),
        })
        .await
        .unwrap_err();
    assert_status(&gone, Code::NotFound, "PAYMENT_METHOD_NOT_FOUND");
}

async fn payment_method_errors_have_their_reasons(backend: Backend) {
    let app = app_with_business(backend).await;
    let card_number = attach(&app, "4242424242424242", "").await.unwrap_err();
    assert_status(&card_number, Code::InvalidArgument, "FIELD_INVALID");
    assert_eq!(violated_fields(&card_number), ["token"]);
    let empty = attach(&app, "", "").await.unwrap_err();
    assert_status(&empty, Code::InvalidArgument, "FIELD_INVALID");
    let nothing = app
        .payment_methods()
        .attach_payment_method(pb::AttachPaymentMethodRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&nothing),
        ["business_id", "token"],
        "every bad field at once"
    );
    let stranger = app
        .payment_methods()
        .attach_payment_method(pb::AttachPaymentMethodRequest {
            request_id: String::new(),
            business_id: "nobody".into(),
            token: "pm_card_visa".into(),
        })
        .await
        .unwrap_err();
    assert_status(&stranger, Code::NotFound, "BUSINESS_NOT_PROVISIONED");
    let nothing_to_detach = app
        .payment_methods()
        .detach_payment_method(pb::DetachPaymentMethodRequest {
            request_id: String::new(),
            business_id: "biz-1".into(),
        })
        .await
        .unwrap_err();
    assert_status(&nothing_to_detach, Code::NotFound, "PAYMENT_METHOD_NOT_FOUND");
}

async fn invoice_lookups_are_checked(backend: Backend) {
    let app = app_with_business(backend).await;
    let missing = app
        .invoices()
        .get_invoice(pb::GetInvoiceRequest {
            invoice_id: "inv_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b".into(),
        })
        .await
        .unwrap_err();
    assert_status(&missing, Code::NotFound, "INVOICE_NOT_FOUND");
    let both = app
        .invoices()
        .list_invoices(pb::ListInvoicesRequest {
            business_id: "biz-1".into(),
            subscription_id: "sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&both, Code::InvalidArgument, "FIELD_INVALID");
    let none = app
        .invoices()
        .list_invoices(pb::ListInvoicesRequest {
            business_id: "biz-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.invoices.is_empty(), "the free default package is never invoiced");
}

async fn buy(app: &TestApp, offering_code: &str) -> pb::CreateSubscriptionResponse {
    app.subscriptions()
        .create_subscription(purchase(offering_code))
        .await
        .unwrap()
        .into_inner()
}

async fn invoices_of(app: &TestApp, subscription_id: &str) -> Vec<pb::Invoice> {
    app.invoices()
        .list_invoices(pb::ListInvoicesRequest {
            subscription_id: subscription_id.into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invoices
}

fn status(invoice: &pb::Invoice) -> pb::InvoiceStatus {
    pb::InvoiceStatus::try_from(invoice.status).unwrap()
}

async fn twenty_four_renewals_make_twenty_four_paid_invoices_that_tile_time(backend: Backend) {
    let app = app_with_business(backend).await;
    attach(&app, "pm_card_visa", "card").await.unwrap();
    let bought = buy(&app, "pro-monthly").await;
    let pro = bought.subscription.unwrap();
    let first = bought.invoice.unwrap();
    assert_eq!(
        status(&first),
        pb::InvoiceStatus::Paid,
        "the first period is paid at purchase"
    );
    advance(&app, "2028-03-10T00:00:01Z").await;
    let invoices = invoices_of(&app, &pro.id).await;
    assert_eq!(invoices.len(), 25, "the purchase and 24 renewals");
    assert_eq!(invoices[0].id, first.id);
    for (index, invoice) in invoices.iter().enumerate() {
        assert_eq!(status(invoice), pb::InvoiceStatus::Paid, "invoice {index}");
        assert_eq!(invoice.amount_due.as_ref().unwrap().amount_minor, 3000);
        assert_eq!(invoice.lines.len(), 1);
        assert_eq!(invoice.lines[0].kind, pb::InvoiceLineKind::Plan as i32);
        assert_eq!(invoice.attempt_count, 1);
        assert_eq!(invoice.number, format!("INV-{:06}", index + 1));
    }
    // The periods tile time: each starts where the previous ended.
    for pair in invoices.windows(2) {
        assert_eq!(pair[0].lines[0].period_end_time, pair[1].lines[0].period_start_time);
    }
    assert_eq!(invoices[0].lines[0].period_start_time, Some(ts("2026-03-10T00:00:00Z")));
    assert_eq!(invoices[24].lines[0].period_end_time, Some(ts("2028-04-10T00:00:00Z")));
    let renewed = get(&app, &pro.id).await;
    assert_eq!(renewed.payment_status, pb::PaymentStatus::Ok as i32);
}

async fn a_declining_card_is_retried_on_schedule_then_the_subscription_expires(backend: Backend) {
    let app = app_with_business(backend).await;
    attach(&app, "pm_card_visa", "card-1").await.unwrap();
    let bought = buy(&app, "pro-monthly").await;
    let pro = bought.subscription.unwrap();
    let seo = &bought.bundled_subscriptions[0];
    attach(&app, "pm_card_chargeDeclined", "card-2").await.unwrap();

    advance(&app, "2026-04-10T00:00:00Z").await;
    let past_due = get(&app, &pro.id).await;
    assert_eq!(past_due.payment_status, pb::PaymentStatus::PastDue as i32);
    assert!(past_due.active, "active during grace");
    let marketing = app
        .subscriptions()
        .check_entitlement(pb::CheckEntitlementRequest {
            business_id: "biz-1".into(),
            product_code: "marketing".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(marketing.entitled && marketing.in_grace_period);
    let dunning = past_due.dunning.unwrap();
    assert_eq!(dunning.attempt_count, 1);
    assert_eq!(dunning.next_retry_time, Some(ts("2026-04-11T00:00:00Z")));
    assert_eq!(dunning.grace_end_time, Some(ts("2026-04-17T00:00:00Z")));
    let invoice = &invoices_of(&app, &pro.id).await[1];
    assert_eq!(status(invoice), pb::InvoiceStatus::PaymentFailed);
    assert_eq!(invoice.next_attempt_time, Some(ts("2026-04-11T00:00:00Z")));

    // Retried on days 1, 3 and 5, still active.
    for (day, attempts, next) in [
        ("2026-04-11T00:00:00Z", 2, "2026-04-13T00:00:00Z"),
        ("2026-04-13T00:00:00Z", 3, "2026-04-15T00:00:00Z"),
        ("2026-04-15T00:00:00Z", 4, "2026-04-17T00:00:00Z"),
    ] {
        advance(&app, day).await;
        let subscription = get(&app, &pro.id).await;
        let dunning = subscription.dunning.unwrap();
        assert_eq!(dunning.attempt_count, attempts, "{day}");
        assert_eq!(dunning.next_retry_time, Some(ts(next)), "{day}");
        assert!(subscription.active);
        assert_eq!(invoices_of(&app, &pro.id).await[1].attempt_count, attempts);
    }

    // The retry of day 7 fails too: expired, with its bundle; back to the free package.
    advance(&app, "2026-04-17T00:00:00Z").await;
    let expired = get(&app, &pro.id).await;
    assert_eq!(expired.state, pb::SubscriptionState::Expired as i32);
    assert!(!expired.active);
    assert_eq!(expired.expiration_time, Some(ts("2026-04-17T00:00:00Z")));
    let invoice = &invoices_of(&app, &pro.id).await[1];
    assert_eq!(status(invoice), pb::InvoiceStatus::Uncollectible);
    assert_eq!(invoice.attempt_count, 5);
    assert_eq!(get(&app, &seo.id).await.state, pb::SubscriptionState::Expired as i32);
    let packages: Vec<String> = app
        .subscriptions()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            business_id: "biz-1".into(),
            active_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions
        .into_iter()
        .map(|subscription| subscription.offering_code)
        .collect();
    assert_eq!(packages, ["free"]);
}

async fn a_good_card_attached_during_dunning_recovers_at_the_next_retry(backend: Backend) {
    let app = app_with_business(backend).await;
    attach(&app, "pm_card_visa", "card-0").await.unwrap();
    let pro = buy(&app, "pro-monthly").await.subscription.unwrap();
    attach(&app, "pm_card_chargeDeclinedInsufficientFunds", "card-1")
        .await
        .unwrap();
    advance(&app, "2026-04-11T00:00:00Z").await;
    assert_eq!(get(&app, &pro.id).await.dunning.unwrap().attempt_count, 2);

    attach(&app, "pm_card_visa", "card-2").await.unwrap();
    advance(&app, "2026-04-12T23:59:59Z").await;
    assert_eq!(
        get(&app, &pro.id).await.payment_status,
        pb::PaymentStatus::PastDue as i32,
        "not before the retry"
    );
    advance(&app, "2026-04-13T00:00:00Z").await;
    let recovered = get(&app, &pro.id).await;
    assert_eq!(recovered.payment_status, pb::PaymentStatus::Ok as i32);
    assert_eq!(recovered.dunning, None);
    assert_eq!(recovered.state, pb::SubscriptionState::Purchased as i32);
    let invoice = &invoices_of(&app, &pro.id).await[1];
    assert_eq!(status(invoice), pb::InvoiceStatus::Paid);
    assert_eq!(invoice.attempt_count, 3);
    let history = app
        .subscriptions()
        .list_subscription_history(pb::ListSubscriptionHistoryRequest {
            subscription_id: pro.id.clone(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(
        history
            .iter()
            .any(|entry| entry.description.contains("subscription.recovered")),
        "{history:#?}"
    );
    // It renews normally afterwards.
    advance(&app, "2026-05-10T00:00:00Z").await;
    let invoices = invoices_of(&app, &pro.id).await;
    assert_eq!(invoices.len(), 3);
    assert_eq!(status(&invoices[2]), pb::InvoiceStatus::Paid);
}

async fn a_trial_ending_without_a_card_falls_into_dunning(backend: Backend) {
    let app = app_with_business(backend).await;
    let plus = buy(&app, "plus-monthly").await.subscription.unwrap();
    assert_eq!(
        plus.trial_type,
        pb::TrialType::Trial as i32,
        "a trial starts without a card"
    );
    advance(&app, "2026-03-24T00:00:00Z").await;
    let after_trial = get(&app, &plus.id).await;
    assert_eq!(after_trial.payment_status, pb::PaymentStatus::PastDue as i32);
    let invoice = &invoices_of(&app, &plus.id).await[0];
    assert_eq!(invoice.amount_due.as_ref().unwrap().amount_minor, 1500);
    assert_eq!(status(invoice), pb::InvoiceStatus::PaymentFailed);
}

fn amounts(invoice: &pb::Invoice) -> Vec<(pb::InvoiceLineKind, i64)> {
    invoice
        .lines
        .iter()
        .map(|line| {
            (
                pb::InvoiceLineKind::try_from(line.kind).unwrap(),
                line.amount.as_ref().unwrap().amount_minor,
            )
        })
        .collect()
}

fn minor(money: &Option<pb::Money>) -> i64 {
    money.as_ref().unwrap().amount_minor
}

fn purchase(offering_code: &str) -> pb::CreateSubscriptionRequest {
    purchase_request("biz-1", offering_code)
}

async fn preview(app: &TestApp, change: pb::preview_invoice_request::Change) -> Option<pb::Invoice> {
    app.subscriptions()
        .preview_invoice(pb::PreviewInvoiceRequest { change: Some(change) })
        .await
        .unwrap()
        .into_inner()
        .invoice
}

/// The parts of an invoice a preview must get right (a preview has no id,
/// number, status or times).
fn billed(invoice: &pb::Invoice) -> (Vec<(pb::InvoiceLineKind, i64)>, i64, i64, i64, i64, i64) {
    (
        amounts(invoice),
        minor(&invoice.subtotal),
        minor(&invoice.discount),
        minor(&invoice.total),
        minor(&invoice.credit_applied),
        minor(&invoice.amount_due),
    )
}

async fn active_codes(app: &TestApp) -> Vec<String> {
    app.subscriptions()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            business_id: "biz-1".into(),
            active_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions
        .into_iter()
        .map(|subscription| subscription.offering_code)
        .collect()
}

async fn a_paid_purchase_needs_a_card_and_a_declined_one_buys_nothing(backend: Backend) {
    let app = app_with_business(backend).await;
    let no_card = app
        .subscriptions()
        .create_subscription(purchase("pro-monthly"))
        .await
        .unwrap_err();
    assert_status(&no_card, Code::FailedPrecondition, "PAYMENT_METHOD_REQUIRED");
    assert_eq!(active_codes(&app).await, ["free"], "nothing was written");

    attach(&app, "pm_card_chargeDeclined", "card").await.unwrap();
    let declined = app
        .subscriptions()
        .create_subscription(purchase("pro-monthly"))
        .await
        .unwrap_err();
    assert_status(&declined, Code::FailedPrecondition, "PAYMENT_DECLINED");
    let codes = active_codes(&app).await;
    assert_eq!(
        codes,
        ["free"],
        "no active subscription is left behind; the business has a package"
    );
    // The attempt stays in history: the purchase, ended, with a void invoice.
    let all = app
        .subscriptions()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            business_id: "biz-1".into(),
            offering_code: "pro-monthly".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, pb::SubscriptionState::Expired as i32);
    let invoice = &invoices_of(&app, &all[0].id).await[0];
    assert_eq!(status(invoice), pb::InvoiceStatus::Void);
    assert_eq!(invoice.attempt_count, 1);

    // A declined purchase still counts as having subscribed to the family
    // (no trial the second time, so declined cards cannot farm trials) ...
    let no_trial = app
        .subscriptions()
        .create_subscription(purchase("plus-monthly"))
        .await
        .unwrap_err();
    assert_status(&no_trial, Code::FailedPrecondition, "PAYMENT_DECLINED");
    // ... while a first-time subscriber's trial needs no card.
    app.subscriptions()
        .provision_business(pb::ProvisionBusinessRequest {
            request_id: String::new(),
            business_id: "biz-2".into(),
            directory_id: "demo".into(),
            buyer_id: "owner".into(),
        })
        .await
        .unwrap();
    let trial = app
        .subscriptions()
        .create_subscription(pb::CreateSubscriptionRequest {
            business_id: "biz-2".into(),
            ..purchase("plus-monthly")
        })
        .await
        .unwrap()
        .into_inner();
    assert!(trial.invoice.is_none(), "nothing is billed during a trial");
}

async fn first_invoices_prorate_a_calendar_part_month_with_seats_and_coupons(backend: Backend) {
    let app = app_with_business(backend).await;
    attach(&app, "pm_card_visa", "card").await.unwrap();
    // Bookings is CALENDAR-aligned: bought Mar 10, its first period is
    // [Mar 10, Apr 1), 22 of March's 31 days. Plan 1000 × 22 / 31 = 709.68 → 710;
    // two seats 2 × 500 × 22 / 31 → 710. WELCOME20: 20% of 1420 = 284.
    let request = pb::CreateSubscriptionRequest {
        components: vec![pb::ComponentQuantity {
            component_code: "seat".into(),
            quantity: 2,
        }],
        coupon_code: "WELCOME20".into(),
        ..purchase("bookings")
    };
    let previewed = preview(
        &app,
        pb::preview_invoice_request::Change::CreateSubscription(request.clone()),
    )
    .await
    .unwrap();
    let bought = app
        .subscriptions()
        .create_subscription(request)
        .await
        .unwrap()
        .into_inner();
    let invoice = bought.invoice.unwrap();
    assert_eq!(
        amounts(&invoice),
        [
            (pb::InvoiceLineKind::Plan, 710),
            (pb::InvoiceLineKind::Component, 710),
            (pb::InvoiceLineKind::Discount, -284)
        ]
    );
    assert_eq!(minor(&invoice.subtotal), 1420);
    assert_eq!(minor(&invoice.discount), 284);
    assert_eq!(minor(&invoice.amount_due), 1136);
    assert_eq!(status(&invoice), pb::InvoiceStatus::Paid);
    assert_eq!(invoice.lines[0].period_start_time, Some(ts("2026-03-10T00:00:00Z")));
    assert_eq!(invoice.lines[0].period_end_time, Some(ts("2026-04-01T00:00:00Z")));
    assert_eq!(billed(&previewed), billed(&invoice), "the preview is the invoice");

    // WELCOME20 repeats for 3 periods: the April renewal is discounted too,
    // at full price: 1000 + 1000 = 2000, 20% off = 400.
    advance(&app, "2026-04-01T00:00:00Z").await;
    let invoices = invoices_of(&app, &bought.subscription.unwrap().id).await;
    assert_eq!(minor(&invoices[1].subtotal), 2000);
    assert_eq!(minor(&invoices[1].discount), 400);
}

async fn plan_changes_bill_proration_and_credit_pays_the_next_renewal(backend: Backend) {
    let app = app_with_business(backend).await;
    attach(&app, "pm_card_visa", "card").await.unwrap();
    let pro = app
        .subscriptions()
        .create_subscription(purchase("pro-monthly"))
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();

    // Monthly → yearly now, on Mar 20: [Mar 10, Apr 10) has 31 days, 21 left:
    // credit 3000 × 21 / 31 = 2032.26 → 2032. The yearly period [Mar 10 2026,
    // Mar 10 2027) has 365 days, 355 left: 30000 × 355 / 365 = 29178.08 → 29178.
    advance(&app, "2026-03-20T00:00:00Z").await;
    let to_yearly = pb::ChangePlanRequest {
        subscription_id: pro.id.clone(),
        offering_code: "pro-yearly".into(),
        timing: pb::ChangeTiming::Immediate.into(),
        ..Default::default()
    };
    let previewed = preview(&app, pb::preview_invoice_request::Change::ChangePlan(to_yearly.clone()))
        .await
        .unwrap();
    let changed = app.subscriptions().change_plan(to_yearly).await.unwrap().into_inner();
    let invoice = changed.invoice.unwrap();
    assert_eq!(
        amounts(&invoice),
        [
            (pb::InvoiceLineKind::ProrationCredit, -2032),
            (pb::InvoiceLineKind::ProrationCharge, 29178)
        ]
    );
    assert_eq!(minor(&invoice.amount_due), 27146);
    assert_eq!(status(&invoice), pb::InvoiceStatus::Paid);
    assert_eq!(billed(&previewed), billed(&invoice));

    // Yearly → monthly now, on Jun 2: the yearly period has 281 of 365 days
    // left: credit 30000 × 281 / 365 = 23095.89 → 23096. The monthly period
    // [May 10, Jun 10) has 31 days, 8 left: 3000 × 8 / 31 = 774.19 → 774.
    // Net −22322: nothing is charged, 22322 becomes account credit.
    advance(&app, "2026-06-02T00:00:00Z").await;
    let to_monthly = pb::ChangePlanRequest {
        subscription_id: pro.id.clone(),
        offering_code: "pro-monthly".into(),
        timing: pb::ChangeTiming::Immediate.into(),
        ..Default::default()
    };
    let previewed = preview(
        &app,
        pb::preview_invoice_request::Change::ChangePlan(to_monthly.clone()),
    )
    .await
    .unwrap();
    let changed = app.subscriptions().change_plan(to_monthly).await.unwrap().into_inner();
    let invoice = changed.invoice.unwrap();
    assert_eq!(
        amounts(&invoice),
        [
            (pb::InvoiceLineKind::ProrationCredit, -23096),
            (pb::InvoiceLineKind::ProrationCharge, 774)
        ]
    );
    assert_eq!(minor(&invoice.total), -22322);
    assert_eq!(minor(&invoice.amount_due), 0);
    assert_eq!(status(&invoice), pb::InvoiceStatus::Paid, "nothing to collect");
    assert_eq!(billed(&previewed), billed(&invoice));

    // The Jun 10 renewal (3000) is paid from the credit: 19322 left.
    advance(&app, "2026-06-10T00:00:00Z").await;
    let renewal = invoices_of(&app, &pro.id).await.pop().unwrap();
    assert_eq!(minor(&renewal.subtotal), 3000);
    assert_eq!(minor(&renewal.credit_applied), 3000);
    assert_eq!(minor(&renewal.amount_due), 0);
    assert_eq!(status(&renewal), pb::InvoiceStatus::Paid);

    // Without proration, a change bills nothing now.
    let unprorated = app
        .subscriptions()
        .change_plan(pb::ChangePlanRequest {
            subscription_id: pro.id.clone(),
            offering_code: "pro-yearly".into(),
            timing: pb::ChangeTiming::Immediate.into(),
            proration: pb::ProrationBehavior::None.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(unprorated.invoice.is_none());
}

async fn seat_changes_are_prorated_and_previewed(backend: Backend) {
    let app = app_with_business(backend).await;
    attach(&app, "pm_card_visa", "card").await.unwrap();
    let request = pb::CreateSubscriptionRequest {
        components: vec![pb::ComponentQuantity {
            component_code: "seat".into(),
            quantity: 2,
        }],
        ..purchase("bookings")
    };
    let bookings = app
        .subscriptions()
        .create_subscription(request)
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    // 2 → 5 seats on Mar 20 of March (31 days, 12 left): 3 × 500 × 12 / 31 = 580.65 → 581.
    advance(&app, "2026-03-20T00:00:00Z").await;
    let update = pb::UpdateComponentsRequest {
        subscription_id: bookings.id.clone(),
        components: vec![pb::ComponentQuantity {
            component_code: "seat".into(),
            quantity: 5,
        }],
        ..Default::default()
    };
    let previewed = preview(
        &app,
        pb::preview_invoice_request::Change::UpdateComponents(update.clone()),
    )
    .await
    .unwrap();
    let updated = app
        .subscriptions()
        .update_components(update)
        .await
        .unwrap()
        .into_inner();
    let invoice = updated.invoice.unwrap();
    assert_eq!(amounts(&invoice), [(pb::InvoiceLineKind::ProrationCharge, 581)]);
    assert_eq!(billed(&previewed), billed(&invoice));
    assert_eq!(updated.subscription.unwrap().components[0].quantity, 5);
}

async fn previews_leave_no_trace(backend: Backend) {
    let app = app_with_business(backend).await;
    let request = pb::CreateSubscriptionRequest {
        coupon_code: "WELCOME20".into(),
        ..purchase("pro-monthly")
    };
    // A preview needs no card, and writes, charges and counts nothing.
    let previewed = preview(
        &app,
        pb::preview_invoice_request::Change::CreateSubscription(request.clone()),
    )
    .await
    .unwrap();
    assert_eq!(minor(&previewed.amount_due), 2400);
    assert!(previewed.id.is_empty() && previewed.number.is_empty());
    assert_eq!(active_codes(&app).await, ["free"]);
    let coupons = app
        .catalog()
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(coupons.coupons[0].times_redeemed, 0);
    attach(&app, "pm_card_visa", "card").await.unwrap();
    let bought = app
        .subscriptions()
        .create_subscription(request)
        .await
        .unwrap()
        .into_inner();
    let invoice = bought.invoice.unwrap();
    assert_eq!(invoice.number, "INV-000001", "the preview took no invoice number");
    assert_eq!(billed(&previewed), billed(&invoice));
    let nothing = preview(
        &app,
        pb::preview_invoice_request::Change::CreateSubscription(purchase("bookings")),
    )
    .await;
    assert!(nothing.is_some());
    app.subscriptions()
        .cancel(pb::CancelRequest {
            subscription_id: bought.subscription.unwrap().id,
            timing: pb::CancelTiming::Immediate.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let free = preview(
        &app,
        pb::preview_invoice_request::Change::CreateSubscription(purchase("free")),
    )
    .await;
    assert!(free.is_none(), "free bills nothing");
}

async fn a_declined_upgrade_or_seat_increase_is_not_applied(backend: Backend) {
    let app = app_with_business(backend).await;
    attach(&app, "pm_card_visa", "card-1").await.unwrap();
    let pro = app
        .subscriptions()
        .create_subscription(purchase("pro-monthly"))
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    let seats = pb::CreateSubscriptionRequest {
        components: vec![pb::ComponentQuantity {
            component_code: "seat".into(),
            quantity: 2,
        }],
        ..purchase("bookings")
    };
    let bookings = app
        .subscriptions()
        .create_subscription(seats)
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    attach(&app, "pm_card_chargeDeclined", "card-2").await.unwrap();
    advance(&app, "2026-03-20T00:00:00Z").await;

    let upgrade = app
        .subscriptions()
        .change_plan(pb::ChangePlanRequest {
            request_id: "upgrade-1".into(),
            subscription_id: pro.id.clone(),
            offering_code: "pro-yearly".into(),
            timing: pb::ChangeTiming::Immediate.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&upgrade, Code::FailedPrecondition, "PAYMENT_DECLINED");
    let unchanged = get(&app, &pro.id).await;
    assert_eq!(unchanged.offering_code, "pro-monthly");
    assert_eq!(unchanged.payment_status, pb::PaymentStatus::Ok as i32);
    assert_eq!(unchanged.current_period_end_time, pro.current_period_end_time);
    let invoices = invoices_of(&app, &pro.id).await;
    assert_eq!(status(&invoices[1]), pb::InvoiceStatus::Void);

    let more_seats = app
        .subscriptions()
        .update_components(pb::UpdateComponentsRequest {
            subscription_id: bookings.id.clone(),
            components: vec![pb::ComponentQuantity {
                component_code: "seat".into(),
                quantity: 5,
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&more_seats, Code::FailedPrecondition, "PAYMENT_DECLINED");
    assert_eq!(get(&app, &bookings.id).await.components[0].quantity, 2);

    // Fewer seats bill a credit, not a charge: no card needed, applied.
    let fewer = app
        .subscriptions()
        .update_components(pb::UpdateComponentsRequest {
            subscription_id: bookings.id.clone(),
            components: vec![pb::ComponentQuantity {
                component_code: "seat".into(),
                quantity: 1,
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fewer.subscription.unwrap().components[0].quantity, 1);
    assert_eq!(minor(&fewer.invoice.unwrap().amount_due), 0);
}

/// Invoice numbers are gap-free, so every issuing transaction locks the one
/// counter row until it commits: a purchase takes its number after every
/// write that does not name it. Seen from Postgres while another transaction
/// holds the counter, the waiting purchase has written its subscriptions, its
/// job and the entitlements, and nothing that names the number yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purchase_takes_its_invoice_number_after_every_other_write() {
    let app = app_with_business(Backend::Postgres).await;
    attach(&app, "pm_card_visa", "card").await.unwrap();
    let store = billing_storage::Store::connect(&billing_storage::StoreOptions::new(app.database_url()))
        .await
        .unwrap();
    let holder = store.begin().await.unwrap();
    assert_eq!(holder.billing().next_invoice_number().await.unwrap(), "INV-000001");

    let client = app.subscriptions();
    let purchase = tokio::spawn(async move { client.clone().create_subscription(purchase("pro-monthly")).await });
    const WAITER: &str = "SELECT a.pid FROM pg_stat_activity a \
        WHERE a.wait_event_type = 'Lock' AND a.query LIKE 'UPDATE counters%'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app
        .count_in_database(&format!("SELECT COUNT(*) AS n FROM ({WAITER}) w"))
        .await
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the purchase never waited for the counter"
        );
        tokio::task::yield_now().await;
    }
    let written = |tables: &str| {
        format!(
            "SELECT COUNT(DISTINCT c.relname) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             WHERE l.pid IN ({WAITER}) AND l.mode = 'RowExclusiveLock' AND c.relname IN ({tables})"
        )
    };
    assert_eq!(
        app.count_in_database(&written("'subscriptions', 'jobs', 'entitlements'"))
            .await,
        3,
        "written before the number is taken"
    );
    assert_eq!(
        app.count_in_database(&written("'invoices', 'audit_entries', 'outbox_events'"))
            .await,
        0,
        "nothing that names the number is written before it is taken"
    );

    drop(holder);
    let bought = purchase.await.unwrap().unwrap().into_inner();
    assert_eq!(
        bought.invoice.unwrap().number,
        "INV-000001",
        "the holder rolled back: no gap"
    );
}
