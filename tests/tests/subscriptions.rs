//! SubscriptionService end to end on the manual clock, on SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use billing_app::{JobRunner, ManualClock};
use billing_proto::v1 as pb;
use billing_storage::{Store, StoreOptions};
use billing_tests::{
    Backend, TestApp, advance_clock as advance, assert_status, backend_tests, get_subscription as get,
    purchase_request, spawn_app, spawn_manual_app, timestamp as ts, violated_fields,
};
use chrono::DateTime;
use tonic::Code;

backend_tests!(
    a_year_of_monthly_periods_on_a_31st_anchor,
    cancel_keeps_access_until_the_period_end_then_expires,
    reactivate_before_expiry_keeps_it_renewing,
    a_downgrade_waits_for_the_period_end,
    an_upgrade_applies_at_once_and_adds_its_bundles,
    bundled_children_follow_their_parent_both_ways,
    an_ended_package_falls_back_to_the_default,
    the_six_subscriber_statuses,
    concurrent_duplicates_make_one_subscription_and_identical_answers,
    idempotency_keys_and_etags_are_enforced,
    every_lifecycle_error_has_its_status_and_reason,
    lists_filter_and_page_while_rows_are_inserted,
    history_records_who_did_what,
    a_trial_ends_into_the_first_billed_period,
    hidden_offerings_keep_renewing_and_intervals_change_on_the_anchor,
);

fn date_of(timestamp: &Option<prost_types::Timestamp>) -> String {
    let timestamp = timestamp.as_ref().expect("a timestamp");
    let time = DateTime::from_timestamp(timestamp.seconds, 0).unwrap();
    time.format("%Y-%m-%d").to_string()
}

async fn demo_app(backend: Backend, start: &str) -> TestApp {
    let app = spawn_manual_app(backend, start).await;
    app.load_demo_catalog().await;
    app
}

/// Provisions a business in directory `demo` with a good card on file, as
/// an integration would before selling it anything paid.
async fn provision(app: &TestApp, business_id: &str) -> pb::ProvisionBusinessResponse {
    let provisioned = app
        .subscriptions()
        .provision_business(pb::ProvisionBusinessRequest {
            request_id: format!("provision-{business_id}"),
            business_id: business_id.into(),
            directory_id: "demo".into(),
            buyer_id: "owner".into(),
        })
        .await
        .unwrap()
        .into_inner();
    app.payment_methods()
        .attach_payment_method(pb::AttachPaymentMethodRequest {
            request_id: format!("card-{business_id}"),
            business_id: business_id.into(),
            token: "pm_card_visa".into(),
        })
        .await
        .unwrap();
    provisioned
}

fn purchase(business_id: &str, offering_code: &str) -> pb::CreateSubscriptionRequest {
    purchase_request(business_id, offering_code)
}

async fn buy(app: &TestApp, business_id: &str, offering_code: &str) -> pb::CreateSubscriptionResponse {
    app.subscriptions()
        .create_subscription(purchase(business_id, offering_code))
        .await
        .unwrap()
        .into_inner()
}

async fn cancel(app: &TestApp, id: &str, timing: pb::CancelTiming) -> Result<pb::Subscription, tonic::Status> {
    app.subscriptions()
        .cancel(pb::CancelRequest {
            subscription_id: id.into(),
            timing: timing.into(),
            reason: "testing".into(),
            ..Default::default()
        })
        .await
        .map(|response| response.into_inner().subscription.unwrap())
}

async fn change(app: &TestApp, id: &str, offering_code: &str) -> Result<pb::ChangePlanResponse, tonic::Status> {
    app.subscriptions()
        .change_plan(pb::ChangePlanRequest {
            subscription_id: id.into(),
            offering_code: offering_code.into(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn entitlement(app: &TestApp, business_id: &str, product_code: &str) -> pb::CheckEntitlementResponse {
    app.subscriptions()
        .check_entitlement(pb::CheckEntitlementRequest {
            business_id: business_id.into(),
            product_code: product_code.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn list(app: &TestApp, request: pb::ListSubscriptionsRequest) -> Vec<pb::Subscription> {
    app.subscriptions()
        .list_subscriptions(request)
        .await
        .unwrap()
        .into_inner()
        .subscriptions
}

async fn of_business(app: &TestApp, business_id: &str) -> Vec<pb::Subscription> {
    list(
        app,
        pb::ListSubscriptionsRequest {
            business_id: business_id.into(),
            page_size: 500,
            ..Default::default()
        },
    )
    .await
}

fn state(subscription: &pb::Subscription) -> pb::SubscriptionState {
    pb::SubscriptionState::try_from(subscription.state).unwrap()
}

async fn history(app: &TestApp, id: &str) -> Vec<pb::SubscriptionHistoryEntry> {
    app.subscriptions()
        .list_subscription_history(pb::ListSubscriptionHistoryRequest {
            subscription_id: id.into(),
            page_size: 500,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .entries
}

async fn a_year_of_monthly_periods_on_a_31st_anchor(backend: Backend) {
    let app = demo_app(backend, "2027-01-31T10:00:00Z").await;
    provision(&app, "biz-1").await;
    let bought = buy(&app, "biz-1", "pro-monthly").await;
    let pro = bought.subscription.unwrap();
    assert_eq!(date_of(&pro.current_period_start_time), "2027-01-31");
    assert_eq!(date_of(&pro.current_period_end_time), "2027-02-28");

    let advanced = advance(&app, "2028-01-31T12:00:00Z").await;
    assert!(advanced.jobs_run >= 12, "{advanced:?}");
    assert_eq!(advanced.jobs_failed, 0);
    let renewed = get(&app, &pro.id).await;
    assert_eq!(date_of(&renewed.current_period_start_time), "2028-01-31");
    assert_eq!(date_of(&renewed.current_period_end_time), "2028-02-29");
    let renewals: Vec<String> = history(&app, &pro.id)
        .await
        .into_iter()
        .filter(|entry| entry.action == "job:renew")
        .map(|entry| entry.description)
        .collect();
    assert_eq!(renewals.len(), 12, "{renewals:#?}");
    let starts: Vec<String> = renewals
        .iter()
        .map(|description| description.split("period ").nth(1).unwrap()[..10].to_owned())
        .collect();
    assert_eq!(
        starts,
        [
            "2027-02-28",
            "2027-03-31",
            "2027-04-30",
            "2027-05-31",
            "2027-06-30",
            "2027-07-31",
            "2027-08-31",
            "2027-09-30",
            "2027-10-31",
            "2027-11-30",
            "2027-12-31",
            "2028-01-31"
        ]
    );
    // The bundled SEO add-on lived the same periods.
    let child = get(&app, &bought.bundled_subscriptions[0].id).await;
    assert_eq!(child.current_period_start_time, renewed.current_period_start_time);
    assert_eq!(child.current_period_end_time, renewed.current_period_end_time);
}

async fn cancel_keeps_access_until_the_period_end_then_expires(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let bookings = buy(&app, "biz-1", "bookings").await.subscription.unwrap();
    assert_eq!(
        date_of(&bookings.current_period_end_time),
        "2026-04-01",
        "calendar alignment"
    );

    let canceled = cancel(&app, &bookings.id, pb::CancelTiming::Unspecified).await.unwrap();
    assert_eq!(state(&canceled), pb::SubscriptionState::Canceled);
    assert!(canceled.active);
    assert!(!canceled.auto_renew);
    assert_eq!(canceled.expiration_time, Some(ts("2026-04-01T00:00:00Z")));
    assert_eq!(canceled.cancellation_time, Some(ts("2026-03-10T09:00:00Z")));

    advance(&app, "2026-03-31T23:59:59Z").await;
    assert_eq!(state(&get(&app, &bookings.id).await), pb::SubscriptionState::Canceled);
    advance(&app, "2026-04-01T00:00:00Z").await;
    let expired = get(&app, &bookings.id).await;
    assert_eq!(state(&expired), pb::SubscriptionState::Expired);
    assert!(!expired.active);
    assert_eq!(expired.expiration_time, Some(ts("2026-04-01T00:00:00Z")));
}

async fn reactivate_before_expiry_keeps_it_renewing(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let bookings = buy(&app, "biz-1", "bookings").await.subscription.unwrap();
    cancel(&app, &bookings.id, pb::CancelTiming::Unspecified).await.unwrap();
    advance(&app, "2026-03-20T00:00:00Z").await;
    let back = app
        .subscriptions()
        .reactivate(pb::ReactivateRequest {
            subscription_id: bookings.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(state(&back), pb::SubscriptionState::Purchased);
    assert!(back.auto_renew);
    assert_eq!(back.expiration_time, None);
    advance(&app, "2026-04-02T00:00:00Z").await;
    let renewed = get(&app, &bookings.id).await;
    assert_eq!(state(&renewed), pb::SubscriptionState::Purchased);
    assert_eq!(date_of(&renewed.current_period_start_time), "2026-04-01");
    assert_eq!(date_of(&renewed.current_period_end_time), "2026-05-01");
}

async fn a_downgrade_waits_for_the_period_end(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let bought = buy(&app, "biz-1", "pro-monthly").await;
    let pro = bought.subscription.unwrap();
    let scheduled = change(&app, &pro.id, "plus-monthly").await.unwrap();
    let after = scheduled.subscription.unwrap();
    assert_eq!(after.offering_code, "pro-monthly", "still on pro until the period ends");
    let pending = after.pending_change.unwrap();
    assert_eq!(pending.offering_code, "plus-monthly");
    assert_eq!(pending.effective_time, Some(ts("2026-04-10T00:00:00Z")));
    assert_eq!(scheduled.effective_time, Some(ts("2026-04-10T00:00:00Z")));

    // The target's prices froze when the change was scheduled.
    let reprice = app
        .catalog()
        .update_offering(pb::UpdateOfferingRequest {
            lookup: Some(pb::update_offering_request::Lookup::Code("plus-monthly".into())),
            offering: Some(pb::Offering {
                prices: vec![pb::Money {
                    currency_code: "EUR".into(),
                    amount_minor: 1,
                }],
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["prices".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_status(&reprice, Code::FailedPrecondition, "OFFERING_PRICES_IMMUTABLE");

    advance(&app, "2026-04-10T00:00:01Z").await;
    let applied = get(&app, &pro.id).await;
    assert_eq!(applied.offering_code, "plus-monthly");
    assert_eq!(applied.pending_change, None);
    assert_eq!(applied.purchase_price.unwrap().amount_minor, 1500);
    assert_eq!(date_of(&applied.current_period_start_time), "2026-04-10");
    // The renewal was billed after the change applied: at Plus's price.
    let invoices = app
        .invoices()
        .list_invoices(pb::ListInvoicesRequest {
            subscription_id: pro.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invoices;
    let renewal = invoices.last().unwrap();
    assert_eq!(renewal.lines[0].offering_code, "plus-monthly");
    assert_eq!(renewal.amount_due.as_ref().unwrap().amount_minor, 1500);
    assert_eq!(renewal.status, pb::InvoiceStatus::Paid as i32);
    // Plus does not bundle SEO: the child ended with the change.
    let seo = get(&app, &bought.bundled_subscriptions[0].id).await;
    assert_eq!(state(&seo), pb::SubscriptionState::Expired);
}

async fn an_upgrade_applies_at_once_and_adds_its_bundles(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let plus = buy(&app, "biz-1", "plus-monthly").await.subscription.unwrap();
    assert_eq!(
        plus.trial_type,
        pb::TrialType::Trial as i32,
        "a first-time subscriber gets the trial"
    );
    let upgraded = change(&app, &plus.id, "pro-monthly").await.unwrap();
    let pro = upgraded.subscription.unwrap();
    assert_eq!(pro.offering_code, "pro-monthly");
    assert_eq!(pro.purchase_price.unwrap().amount_minor, 3000);
    assert_eq!(upgraded.effective_time, Some(ts("2026-03-10T09:00:00Z")));
    let seo: Vec<pb::Subscription> = of_business(&app, "biz-1")
        .await
        .into_iter()
        .filter(|subscription| subscription.offering_code == "seo")
        .collect();
    assert_eq!(seo.len(), 1);
    assert!(seo[0].active);
    assert_eq!(seo[0].bundled_from_subscription_id, plus.id);
    assert_eq!(seo[0].payment_type, pb::PaymentType::Bundled as i32);
}

async fn bundled_children_follow_their_parent_both_ways(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let bought = buy(&app, "biz-1", "pro-monthly").await;
    let (pro, seo) = (bought.subscription.unwrap(), bought.bundled_subscriptions[0].clone());
    assert_eq!(seo.offering_code, "seo");

    let refused = cancel(&app, &seo.id, pb::CancelTiming::Immediate).await.unwrap_err();
    assert_status(&refused, Code::FailedPrecondition, "SUBSCRIPTION_IS_BUNDLED");

    cancel(&app, &pro.id, pb::CancelTiming::Unspecified).await.unwrap();
    let child = get(&app, &seo.id).await;
    assert_eq!(state(&child), pb::SubscriptionState::Canceled);
    assert_eq!(child.expiration_time, Some(ts("2026-04-10T00:00:00Z")));

    app.subscriptions()
        .reactivate(pb::ReactivateRequest {
            subscription_id: pro.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(state(&get(&app, &seo.id).await), pb::SubscriptionState::Purchased);

    cancel(&app, &pro.id, pb::CancelTiming::Immediate).await.unwrap();
    let ended = get(&app, &seo.id).await;
    assert_eq!(state(&ended), pb::SubscriptionState::Expired);
    assert!(!ended.active);
}

async fn an_ended_package_falls_back_to_the_default(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    let provisioned = provision(&app, "biz-1").await;
    let free = &provisioned.default_subscriptions[0];
    assert_eq!(free.offering_code, "free");
    assert_eq!(free.payment_type, pb::PaymentType::Free as i32);

    let pro = buy(&app, "biz-1", "pro-monthly").await.subscription.unwrap();
    assert_eq!(
        state(&get(&app, &free.id).await),
        pb::SubscriptionState::Expired,
        "the purchase replaced the default"
    );

    cancel(&app, &pro.id, pb::CancelTiming::Unspecified).await.unwrap();
    advance(&app, "2026-04-10T00:00:00Z").await;
    let active_packages: Vec<pb::Subscription> = of_business(&app, "biz-1")
        .await
        .into_iter()
        .filter(|subscription| subscription.active && subscription.offering_type == pb::OfferingType::Package as i32)
        .collect();
    assert_eq!(active_packages.len(), 1, "{active_packages:#?}");
    assert_eq!(active_packages[0].offering_code, "free");
    assert_ne!(active_packages[0].id, free.id, "a new default subscription");
    let website = entitlement(&app, "biz-1", "website").await;
    assert!(website.entitled);
    assert_eq!(website.subscription_id, active_packages[0].id);

    // Immediately, too.
    let plus = buy(&app, "biz-1", "plus-yearly").await.subscription.unwrap();
    cancel(&app, &plus.id, pb::CancelTiming::Immediate).await.unwrap();
    let packages: Vec<String> = of_business(&app, "biz-1")
        .await
        .into_iter()
        .filter(|subscription| subscription.active && subscription.offering_type == pb::OfferingType::Package as i32)
        .map(|subscription| subscription.offering_code)
        .collect();
    assert_eq!(packages, ["free"]);
}

async fn the_six_subscriber_statuses(backend: Backend) {
    use pb::SubscriberStatus as Status;
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let status = |response: &pb::CheckEntitlementResponse| Status::try_from(response.subscriber_status).unwrap();

    let never = entitlement(&app, "biz-1", "bookings").await;
    assert_eq!(status(&never), Status::NotSubscriber);
    assert!(!never.entitled);

    let bookings = buy(&app, "biz-1", "bookings").await.subscription.unwrap();
    let first = entitlement(&app, "biz-1", "bookings").await;
    assert_eq!(status(&first), Status::FirstTime);
    assert!(first.entitled);
    assert_eq!(first.subscription_id, bookings.id);
    assert_eq!(first.offering_code, "bookings");

    cancel(&app, &bookings.id, pb::CancelTiming::Unspecified).await.unwrap();
    let canceled = entitlement(&app, "biz-1", "bookings").await;
    assert_eq!(status(&canceled), Status::Canceled);
    assert!(canceled.entitled);
    assert_eq!(canceled.expiration_time, Some(ts("2026-04-01T00:00:00Z")));

    advance(&app, "2026-04-02T00:00:00Z").await;
    let lapsed = entitlement(&app, "biz-1", "bookings").await;
    assert_eq!(status(&lapsed), Status::Lapsed);
    assert!(!lapsed.entitled);

    buy(&app, "biz-1", "bookings").await;
    assert_eq!(status(&entitlement(&app, "biz-1", "bookings").await), Status::Returning);

    provision(&app, "biz-2").await;
    let grant = pb::CreateSubscriptionRequest {
        sponsored: true,
        ..purchase("biz-2", "bookings")
    };
    let sponsored = app
        .subscriptions()
        .create_subscription(grant)
        .await
        .unwrap()
        .into_inner();
    let granted = sponsored.subscription.unwrap();
    assert_eq!(granted.payment_type, pb::PaymentType::Sponsored as i32);
    assert_eq!(granted.purchase_price.unwrap().amount_minor, 0);
    let view = entitlement(&app, "biz-2", "bookings").await;
    assert_eq!(status(&view), Status::Sponsored);
    assert!(view.entitled);
}

async fn concurrent_duplicates_make_one_subscription_and_identical_answers(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let request = pb::CreateSubscriptionRequest {
        request_id: "purchase-bookings-1".into(),
        components: vec![pb::ComponentQuantity {
            component_code: "seat".into(),
            quantity: 3,
        }],
        coupon_code: "WELCOME20".into(),
        ..purchase("biz-1", "bookings")
    };
    let attempts: Vec<_> = (0..50)
        .map(|_| {
            let mut client = app.subscriptions();
            let request = request.clone();
            tokio::spawn(async move {
                client
                    .create_subscription(request)
                    .await
                    .map(tonic::Response::into_inner)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for attempt in attempts {
        answers.push(attempt.await.unwrap().unwrap());
    }
    assert!(answers.iter().all(|answer| answer == &answers[0]), "answers differ");
    let bookings: Vec<pb::Subscription> = of_business(&app, "biz-1")
        .await
        .into_iter()
        .filter(|subscription| subscription.offering_code == "bookings")
        .collect();
    assert_eq!(bookings.len(), 1);
    assert_eq!(bookings[0].components[0].quantity, 3);
    assert_eq!(bookings[0].coupon_code, "WELCOME20");
    let coupons = app
        .catalog()
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(coupons.coupons[0].times_redeemed, 1, "one redemption for one effect");
}

async fn idempotency_keys_and_etags_are_enforced(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let first = pb::CreateSubscriptionRequest {
        request_id: "key-1".into(),
        ..purchase("biz-1", "bookings")
    };
    let created = app
        .subscriptions()
        .create_subscription(first.clone())
        .await
        .unwrap()
        .into_inner();
    let replay = app
        .subscriptions()
        .create_subscription(first.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created, replay);

    let different = pb::CreateSubscriptionRequest {
        currency_code: "EUR".into(),
        ..first.clone()
    };
    let reused = app.subscriptions().create_subscription(different).await.unwrap_err();
    assert_status(&reused, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(violated_fields(&reused), ["request_id"]);

    // A rule's refusal is stored and replayed like a success.
    let again = pb::CreateSubscriptionRequest {
        request_id: "key-2".into(),
        ..purchase("biz-1", "bookings")
    };
    let refused = app
        .subscriptions()
        .create_subscription(again.clone())
        .await
        .unwrap_err();
    assert_status(&refused, Code::AlreadyExists, "ALREADY_SUBSCRIBED");
    let subscription = created.subscription.unwrap();
    cancel(&app, &subscription.id, pb::CancelTiming::Immediate)
        .await
        .unwrap();
    let replayed = app.subscriptions().create_subscription(again).await.unwrap_err();
    assert_status(&replayed, Code::AlreadyExists, "ALREADY_SUBSCRIBED");

    // Etags.
    let fresh = buy(&app, "biz-1", "pro-monthly").await.subscription.unwrap();
    let stale_etag = fresh.etag.clone();
    let changed = change(&app, &fresh.id, "pro-yearly")
        .await
        .unwrap()
        .subscription
        .unwrap();
    assert_ne!(changed.etag, stale_etag);
    let stale = app
        .subscriptions()
        .cancel(pb::CancelRequest {
            subscription_id: fresh.id.clone(),
            etag: stale_etag,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&stale, Code::Aborted, "ETAG_MISMATCH");
    assert_eq!(
        state(&get(&app, &fresh.id).await),
        pb::SubscriptionState::Purchased,
        "nothing changed"
    );
    let current = app
        .subscriptions()
        .cancel(pb::CancelRequest {
            subscription_id: fresh.id.clone(),
            etag: changed.etag,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        state(&current.into_inner().subscription.unwrap()),
        pb::SubscriptionState::Canceled
    );
}

async fn every_lifecycle_error_has_its_status_and_reason(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    app.catalog()
        .create_offering(pb::CreateOfferingRequest {
            offering: Some(pb::Offering {
                code: "secret".into(),
                display_name: "Secret".into(),
                r#type: pb::OfferingType::App.into(),
                prices: vec![pb::Money {
                    currency_code: "USD".into(),
                    amount_minor: 100,
                }],
                billing_interval: pb::BillingInterval::Month.into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let create = |request: pb::CreateSubscriptionRequest| {
        let mut client = app.subscriptions();
        async move { client.create_subscription(request).await.unwrap_err() }
    };
    let seat = |quantity| pb::ComponentQuantity {
        component_code: "seat".into(),
        quantity,
    };
    let cases: Vec<(pb::CreateSubscriptionRequest, Code, &str)> = vec![
        (
            purchase("nobody", "bookings"),
            Code::NotFound,
            "BUSINESS_NOT_PROVISIONED",
        ),
        (purchase("biz-1", "ghost"), Code::NotFound, "OFFERING_NOT_FOUND"),
        (
            purchase("biz-1", "secret"),
            Code::FailedPrecondition,
            "OFFERING_NOT_AVAILABLE",
        ),
        (
            pb::CreateSubscriptionRequest {
                currency_code: "JPY".into(),
                ..purchase("biz-1", "bookings")
            },
            Code::InvalidArgument,
            "PRICE_NOT_FOUND_FOR_CURRENCY",
        ),
        (
            pb::CreateSubscriptionRequest {
                currency_code: "ZZZ".into(),
                ..purchase("biz-1", "bookings")
            },
            Code::InvalidArgument,
            "CURRENCY_UNKNOWN",
        ),
        (
            pb::CreateSubscriptionRequest {
                components: vec![pb::ComponentQuantity {
                    component_code: "desk".into(),
                    quantity: 1,
                }],
                ..purchase("biz-1", "bookings")
            },
            Code::InvalidArgument,
            "COMPONENT_NOT_FOUND",
        ),
        (
            pb::CreateSubscriptionRequest {
                components: vec![seat(0)],
                ..purchase("biz-1", "bookings")
            },
            Code::InvalidArgument,
            "COMPONENT_QUANTITY_INVALID",
        ),
        (
            pb::CreateSubscriptionRequest {
                components: vec![seat(1), seat(2)],
                ..purchase("biz-1", "bookings")
            },
            Code::InvalidArgument,
            "DUPLICATE_COMPONENTS",
        ),
        (
            pb::CreateSubscriptionRequest {
                coupon_code: "NOPE".into(),
                ..purchase("biz-1", "bookings")
            },
            Code::InvalidArgument,
            "COUPON_INVALID",
        ),
        (
            pb::CreateSubscriptionRequest {
                offering: None,
                ..purchase("biz-1", "bookings")
            },
            Code::InvalidArgument,
            "FIELD_INVALID",
        ),
        (
            pb::CreateSubscriptionRequest {
                request_id: "k".repeat(256),
                ..purchase("biz-1", "bookings")
            },
            Code::InvalidArgument,
            // Refused by the limits on every field, before the use case.
            "FIELD_TOO_LONG",
        ),
    ];
    for (request, code, expected) in cases {
        assert_status(&create(request).await, code, expected);
    }
    assert!(
        of_business(&app, "biz-1")
            .await
            .iter()
            .all(|s| s.offering_code == "free"),
        "nothing was written"
    );

    let pro = buy(&app, "biz-1", "pro-monthly").await.subscription.unwrap();
    assert_status(
        &create(purchase("biz-1", "pro-yearly")).await,
        Code::AlreadyExists,
        "ALREADY_SUBSCRIBED",
    );
    assert_status(
        &change(&app, &pro.id, "pro-monthly").await.unwrap_err(),
        Code::FailedPrecondition,
        "SAME_PLAN",
    );
    assert_status(
        &change(&app, &pro.id, "bookings").await.unwrap_err(),
        Code::FailedPrecondition,
        "CROSS_FAMILY_CHANGE",
    );
    assert_status(
        &change(&app, &pro.id, "ghost").await.unwrap_err(),
        Code::NotFound,
        "OFFERING_NOT_FOUND",
    );

    let missing = app
        .subscriptions()
        .get_subscription(pb::GetSubscriptionRequest {
            subscription_id: "sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b".into(),
        })
        .await
        .unwrap_err();
    assert_status(&missing, Code::NotFound, "SUBSCRIPTION_NOT_FOUND");
    let malformed = app
        .subscriptions()
        .get_subscription(pb::GetSubscriptionRequest {
            subscription_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_status(&malformed, Code::InvalidArgument, "FIELD_INVALID");
    assert_eq!(violated_fields(&malformed), ["subscription_id"]);

    // One round trip names every bad field of a request.
    let empty = app
        .subscriptions()
        .create_subscription(pb::CreateSubscriptionRequest::default())
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument, "{empty:?}");
    assert_eq!(
        violated_fields(&empty),
        ["business_id", "buyer_id", "offering_code", "currency_code"]
    );
    let nothing_provisioned = app
        .subscriptions()
        .provision_business(pb::ProvisionBusinessRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&nothing_provisioned),
        ["business_id", "directory_id", "buyer_id"]
    );
    let nowhere = app
        .subscriptions()
        .change_plan(pb::ChangePlanRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&nowhere), ["subscription_id", "offering_code"]);

    let bookings = buy(&app, "biz-1", "bookings").await.subscription.unwrap();
    let update = |components: Vec<pb::ComponentQuantity>| {
        let mut client = app.subscriptions();
        let subscription_id = bookings.id.clone();
        async move {
            client
                .update_components(pb::UpdateComponentsRequest {
                    subscription_id,
                    components,
                    ..Default::default()
                })
                .await
        }
    };
    assert_status(
        &update(vec![seat(-1)]).await.unwrap_err(),
        Code::InvalidArgument,
        "COMPONENT_QUANTITY_INVALID",
    );
    let updated = update(vec![seat(4)]).await.unwrap().into_inner().subscription.unwrap();
    assert_eq!(updated.components[0].quantity, 4);

    cancel(&app, &pro.id, pb::CancelTiming::Immediate).await.unwrap();
    assert_status(
        &change(&app, &pro.id, "plus-monthly").await.unwrap_err(),
        Code::FailedPrecondition,
        "SUBSCRIPTION_NOT_ACTIVE",
    );
    assert_status(
        &cancel(&app, &pro.id, pb::CancelTiming::Immediate).await.unwrap_err(),
        Code::FailedPrecondition,
        "SUBSCRIPTION_NOT_ACTIVE",
    );
    let reactivate = app
        .subscriptions()
        .reactivate(pb::ReactivateRequest {
            subscription_id: pro.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&reactivate, Code::FailedPrecondition, "SUBSCRIPTION_NOT_ACTIVE");

    let elsewhere = app
        .subscriptions()
        .provision_business(pb::ProvisionBusinessRequest {
            business_id: "biz-1".into(),
            directory_id: "other".into(),
            buyer_id: "owner".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&elsewhere, Code::FailedPrecondition, "BUSINESS_DIRECTORY_MISMATCH");

    let bad_list = app
        .subscriptions()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            page_size: 10_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&bad_list, Code::InvalidArgument, "PAGE_SIZE_INVALID");
    let bad_state = app
        .subscriptions()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            states: vec![0],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&bad_state, Code::InvalidArgument, "FIELD_INVALID");
    assert_eq!(violated_fields(&bad_state), ["states[0]"]);

    let backwards = app
        .test_clock()
        .advance_clock(pb::AdvanceClockRequest {
            to_time: Some(ts("2026-01-01T00:00:00Z")),
        })
        .await
        .unwrap_err();
    assert_status(&backwards, Code::InvalidArgument, "FIELD_INVALID");
}

async fn lists_filter_and_page_while_rows_are_inserted(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    for business in ["biz-1", "biz-2"] {
        provision(&app, business).await;
    }
    let bookings = buy(&app, "biz-1", "bookings").await.subscription.unwrap();
    cancel(&app, &bookings.id, pb::CancelTiming::Immediate).await.unwrap();
    buy(&app, "biz-2", "bookings").await;

    let expired = list(
        &app,
        pb::ListSubscriptionsRequest {
            states: vec![pb::SubscriptionState::Expired.into()],
            offering_code: "bookings".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, bookings.id);
    let active_bookings = list(
        &app,
        pb::ListSubscriptionsRequest {
            offering_code: "bookings".into(),
            active_only: true,
            directory_id: "demo".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(active_bookings.len(), 1);
    assert_eq!(active_bookings[0].business_id, "biz-2");

    // Keyset paging: rows inserted between pages appear once, at the end.
    let mut client = app.subscriptions();
    let first = client
        .list_subscriptions(pb::ListSubscriptionsRequest {
            page_size: 2,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen: Vec<String> = first.subscriptions.iter().map(|s| s.id.clone()).collect();
    provision(&app, "biz-3").await;
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = client
            .list_subscriptions(pb::ListSubscriptionsRequest {
                page_size: 2,
                page_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.subscriptions.into_iter().map(|s| s.id));
        token = page.next_page_token;
    }
    let all = list(
        &app,
        pb::ListSubscriptionsRequest {
            page_size: 500,
            ..Default::default()
        },
    )
    .await;
    let all_ids: Vec<String> = all.into_iter().map(|s| s.id).collect();
    assert_eq!(seen, all_ids);
}

async fn history_records_who_did_what(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let request = pb::CreateSubscriptionRequest {
        request_id: "buy-1".into(),
        ..purchase("biz-1", "bookings")
    };
    let bookings = app
        .subscriptions()
        .create_subscription(request)
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    app.subscriptions()
        .cancel(pb::CancelRequest {
            request_id: "cancel-1".into(),
            subscription_id: bookings.id.clone(),
            reason: "moving on".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    advance(&app, "2026-04-01T00:00:00Z").await;
    let entries = history(&app, &bookings.id).await;
    let summary: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|entry| (entry.action.as_str(), entry.actor.as_str(), entry.request_id.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("CreateSubscription", "anonymous", "buy-1"),
            ("CreateSubscription:charge", "anonymous", "buy-1"),
            ("Cancel", "anonymous", "cancel-1"),
            ("job:expire", "system", ""),
        ]
    );
    assert!(
        entries[1].description.contains("invoice.paid INV-000001"),
        "{}",
        entries[1].description
    );
    assert!(
        entries[2].description.contains("subscription.canceled"),
        "{}",
        entries[2].description
    );
}

async fn a_trial_ends_into_the_first_billed_period(backend: Backend) {
    let app = demo_app(backend, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let plus = buy(&app, "biz-1", "plus-monthly").await.subscription.unwrap();
    assert_eq!(plus.trial_type, pb::TrialType::Trial as i32);
    assert_eq!(plus.trial_end_time, Some(ts("2026-03-24T00:00:00Z")));
    assert_eq!(date_of(&plus.current_period_end_time), "2026-03-24");
    advance(&app, "2026-03-24T00:00:00Z").await;
    let paid = get(&app, &plus.id).await;
    assert_eq!(state(&paid), pb::SubscriptionState::Purchased);
    assert_eq!(date_of(&paid.current_period_start_time), "2026-03-24");
    assert_eq!(
        date_of(&paid.current_period_end_time),
        "2026-04-24",
        "anchored on the trial's end"
    );
    // A second purchase in the family after this one ends gets no trial.
    cancel(&app, &plus.id, pb::CancelTiming::Immediate).await.unwrap();
    let again = buy(&app, "biz-1", "plus-monthly").await.subscription.unwrap();
    assert_eq!(again.trial_type, pb::TrialType::NoTrial as i32);
}

async fn hidden_offerings_keep_renewing_and_intervals_change_on_the_anchor(backend: Backend) {
    let app = demo_app(backend, "2026-01-15T09:00:00Z").await;
    provision(&app, "biz-1").await;
    let pro = buy(&app, "biz-1", "pro-monthly").await.subscription.unwrap();
    let hide = pb::UpdateOfferingRequest {
        lookup: Some(pb::update_offering_request::Lookup::Code("pro-monthly".into())),
        offering: Some(pb::Offering {
            status: pb::OfferingStatus::Hidden.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["status".into()],
        }),
    };
    app.catalog().update_offering(hide).await.unwrap();
    provision(&app, "biz-2").await;
    let refused = app
        .subscriptions()
        .create_subscription(purchase("biz-2", "pro-monthly"))
        .await
        .unwrap_err();
    assert_status(&refused, Code::FailedPrecondition, "OFFERING_NOT_AVAILABLE");

    advance(&app, "2026-03-20T00:00:00Z").await;
    let renewed = get(&app, &pro.id).await;
    assert_eq!(
        date_of(&renewed.current_period_start_time),
        "2026-03-15",
        "grandfathered: it renews"
    );
    assert_eq!(renewed.purchase_price.unwrap().amount_minor, 3000);

    // Monthly to yearly now: the yearly period containing today, same anchor.
    let yearly = app
        .subscriptions()
        .change_plan(pb::ChangePlanRequest {
            subscription_id: pro.id.clone(),
            offering_code: "pro-yearly".into(),
            timing: pb::ChangeTiming::Immediate.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(yearly.billing_interval, pb::BillingInterval::Year as i32);
    assert_eq!(date_of(&yearly.current_period_start_time), "2026-01-15");
    assert_eq!(date_of(&yearly.current_period_end_time), "2027-01-15");
    advance(&app, "2027-01-16T00:00:00Z").await;
    let next_year = get(&app, &pro.id).await;
    assert_eq!(date_of(&next_year.current_period_start_time), "2027-01-15");
    assert_eq!(date_of(&next_year.current_period_end_time), "2028-01-15");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_still_in_use_answers_aborted_on_postgres() {
    let app = demo_app(Backend::Postgres, "2026-03-10T09:00:00Z").await;
    provision(&app, "biz-1").await;
    // A first request with the key that has not finished: its transaction
    // holds the key.
    let store = Store::connect(&StoreOptions::new(app.database_url())).await.unwrap();
    let running = store.begin().await.unwrap();
    let key = billing_storage::IdempotencyKey {
        caller: "anonymous".into(),
        request_id: "slow-key".into(),
        operation: "CreateSubscription".into(),
        request_hash: "whatever".into(),
    };
    let now = "2026-03-10T09:00:00Z".parse().unwrap();
    let claim = running
        .idempotency()
        .claim(&key, now, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(claim, billing_storage::Claim::Claimed);
    let duplicate = pb::CreateSubscriptionRequest {
        request_id: "slow-key".into(),
        ..purchase("biz-1", "bookings")
    };
    let busy = app.subscriptions().create_subscription(duplicate).await.unwrap_err();
    assert_status(&busy, Code::Aborted, "IDEMPOTENCY_KEY_IN_USE");
    drop(running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_on_one_postgres_never_run_a_job_twice() {
    let app = demo_app(Backend::Postgres, "2026-03-10T09:00:00Z").await;
    let businesses = 24;
    let mut ids = Vec::new();
    for index in 0..businesses {
        let business = format!("biz-{index}");
        provision(&app, &business).await;
        ids.push(buy(&app, &business, "bookings").await.subscription.unwrap().id);
    }
    // Three workers, as three replicas would run them, racing over the same
    // due renewals.
    let due = "2026-04-01T00:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(due));
    let mut workers = Vec::new();
    for _ in 0..3 {
        let store = Store::connect(&StoreOptions::new(app.database_url())).await.unwrap();
        let charger = billing_app::charging::Charger::new(
            store.clone(),
            billing_app::Providers::local_only(Arc::new(billing_provider_local::LocalProvider::new())),
            billing_domain::dunning::DunningPolicy::default(),
        );
        let runner = JobRunner::new(store, clock.clone(), charger);
        workers.push(tokio::spawn(async move { runner.run_due(due).await.unwrap() }));
    }
    let mut succeeded = 0;
    for worker in workers {
        let stats = worker.await.unwrap();
        assert_eq!(stats.failed, 0);
        succeeded += stats.succeeded;
    }
    assert_eq!(succeeded, businesses);
    for id in ids {
        let renewals = history(&app, &id)
            .await
            .into_iter()
            .filter(|e| e.action == "job:renew")
            .count();
        assert_eq!(renewals, 1, "subscription {id} renewed {renewals} times");
        assert_eq!(date_of(&get(&app, &id).await.current_period_start_time), "2026-04-01");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_clock_is_not_served_on_the_system_clock() {
    let app = spawn_app(Backend::Sqlite).await;
    let missing = app.test_clock().get_time(pb::GetTimeRequest {}).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unimplemented);
    let manual = spawn_manual_app(Backend::Sqlite, "2030-01-01T00:00:00Z").await;
    let time = manual
        .test_clock()
        .get_time(pb::GetTimeRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(time.time, Some(ts("2030-01-01T00:00:00Z")));
}
