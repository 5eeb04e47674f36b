//! A plan change or seat increase charged now is held until its invoice is
//! paid: the request answers OK with the change held, the old plan stays in
//! force (and entitled), nothing else may change the plan meanwhile. Paid
//! (by the job, once the provider answers) → the change applies, charged
//! once; declined, or unpaid for a day → it is dropped, the invoice void.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, TestApp, assert_status, attach_card, backend_tests, business_invoices, buy_offering, get_subscription,
    mount_stripe_customer_and_card, mount_stripe_no_earlier_attempt, provider_fixture, provision_business,
    spawn_stripe_app, timestamp,
};
use tonic::Code;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockGuard, MockServer, ResponseTemplate};

backend_tests!(
    an_upgrade_during_an_outage_waits_for_its_payment_then_applies_once,
    a_change_unpaid_for_a_day_is_dropped_and_the_plan_stays,
    a_decline_found_by_the_job_drops_the_seat_increase,
    a_seats_checkout_during_an_outage_is_pending_then_completed,
);

async fn charges_succeed(stripe: &MockServer) -> MockGuard {
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(provider_fixture("stripe", "payment_intent_succeeded.json")),
        )
        .mount_as_scoped(stripe)
        .await
}

async fn charges_unanswered(stripe: &MockServer) -> MockGuard {
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(stripe)
        .await
}

/// Biz-1 on Stripe with a card, holding what `offering` bought (paid).
async fn subscribed(backend: Backend, stripe: &MockServer, offering: &str) -> (TestApp, pb::Subscription) {
    mount_stripe_customer_and_card(stripe).await;
    mount_stripe_no_earlier_attempt(stripe).await;
    let app = spawn_stripe_app(backend, &stripe.uri(), "2026-03-10T09:00:00Z", |settings| {
        settings.providers.max_attempts = 1;
        settings.checkout.allowed_return_hosts = vec!["app.example.com".into()];
    })
    .await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let paid = charges_succeed(stripe).await;
    let bought = buy_offering(&app, "biz-1", offering)
        .await
        .unwrap()
        .subscription
        .unwrap();
    drop(paid);
    assert_eq!(bought.payment_status(), pb::PaymentStatus::Ok);
    (app, bought)
}

fn upgrade(subscription: &pb::Subscription, request_id: &str) -> pb::ChangePlanRequest {
    pb::ChangePlanRequest {
        request_id: request_id.into(),
        subscription_id: subscription.id.clone(),
        offering_code: "pro-yearly".into(),
        timing: pb::ChangeTiming::Immediate.into(),
        ..Default::default()
    }
}

async fn entitled_offering(app: &TestApp, product_code: &str) -> String {
    let answer = app
        .subscriptions()
        .check_entitlement(pb::CheckEntitlementRequest {
            business_id: "biz-1".into(),
            product_code: product_code.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.entitled, "{product_code} not entitled: {answer:?}");
    answer.offering_code
}

async fn advance(app: &TestApp, to: &str) {
    app.test_clock()
        .advance_clock(pb::AdvanceClockRequest {
            to_time: Some(timestamp(to)),
        })
        .await
        .unwrap();
}

fn statuses(invoices: &[pb::Invoice]) -> Vec<pb::InvoiceStatus> {
    invoices.iter().map(pb::Invoice::status).collect()
}

async fn an_upgrade_during_an_outage_waits_for_its_payment_then_applies_once(backend: Backend) {
    let stripe = MockServer::start().await;
    let (app, pro) = subscribed(backend, &stripe, "pro-monthly").await;
    let outage = charges_unanswered(&stripe).await;

    let answered = app
        .subscriptions()
        .change_plan(upgrade(&pro, "upgrade-1"))
        .await
        .expect("a change whose charge is unanswered is an outcome, not an error")
        .into_inner();
    let held = answered.subscription.unwrap();
    assert_eq!(held.offering_code, "pro-monthly", "the old plan stays in force");
    assert_eq!(held.purchase_price.as_ref().unwrap().amount_minor, 3000);
    let waiting = held.held_change.clone().expect("the change is held");
    assert_eq!(waiting.offering_code, "pro-yearly");
    assert_eq!(waiting.purchase_price.unwrap().amount_minor, 30000);
    assert_eq!(waiting.expire_time, Some(timestamp("2026-03-11T08:00:00Z")));
    let invoice = answered.invoice.unwrap();
    assert_eq!(invoice.status(), pb::InvoiceStatus::Open);
    assert_eq!(waiting.invoice_id, invoice.id);
    assert_eq!(get_subscription(&app, &pro.id).await, held);
    assert_eq!(entitled_offering(&app, "website").await, "pro-monthly");

    // The same request again: the same outcome, not a second change.
    let repeated = app
        .subscriptions()
        .change_plan(upgrade(&pro, "upgrade-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(repeated.subscription.unwrap(), held);
    // Another change waits for this one.
    let refused = three_seats(&app, &pro.id).await.unwrap_err();
    assert_status(&refused, Code::FailedPrecondition, "CHANGE_AWAITING_PAYMENT");

    // The outage ends; the job charges the invoice once and applies it.
    drop(outage);
    let paid = Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(provider_fixture("stripe", "payment_intent_succeeded.json")),
        )
        .expect(1)
        .mount_as_scoped(&stripe)
        .await;
    advance(&app, "2026-03-10T09:30:00Z").await;
    let applied = get_subscription(&app, &pro.id).await;
    assert_eq!(applied.offering_code, "pro-yearly");
    assert_eq!(applied.held_change, None);
    assert_eq!(entitled_offering(&app, "website").await, "pro-yearly");
    let invoices = business_invoices(&app, "biz-1").await;
    assert_eq!(
        statuses(&invoices),
        [pb::InvoiceStatus::Paid, pb::InvoiceStatus::Paid],
        "one paid invoice per charge"
    );
    // Running the jobs again charges nothing more.
    advance(&app, "2026-03-10T12:00:00Z").await;
    drop(paid);
}

async fn a_change_unpaid_for_a_day_is_dropped_and_the_plan_stays(backend: Backend) {
    let stripe = MockServer::start().await;
    let (app, pro) = subscribed(backend, &stripe, "pro-monthly").await;
    let _outage = charges_unanswered(&stripe).await;
    app.subscriptions()
        .change_plan(upgrade(&pro, "upgrade-1"))
        .await
        .unwrap();

    advance(&app, "2026-03-11T07:00:00Z").await;
    assert!(
        get_subscription(&app, &pro.id).await.held_change.is_some(),
        "retried, still held"
    );
    advance(&app, "2026-03-11T09:00:00Z").await;
    let kept = get_subscription(&app, &pro.id).await;
    assert_eq!(kept.offering_code, "pro-monthly");
    assert_eq!(kept.held_change, None);
    assert_eq!(
        kept.payment_status(),
        pb::PaymentStatus::Ok,
        "no dunning for a change never made"
    );
    assert_eq!(entitled_offering(&app, "website").await, "pro-monthly");
    assert_eq!(
        statuses(&business_invoices(&app, "biz-1").await),
        [pb::InvoiceStatus::Paid, pb::InvoiceStatus::Void]
    );
    // And the plan can change again.
    let again = app
        .subscriptions()
        .change_plan(pb::ChangePlanRequest {
            offering_code: "plus-monthly".into(),
            timing: pb::ChangeTiming::EndOfPeriod.into(),
            ..upgrade(&kept, "downgrade-1")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.subscription.unwrap().pending_change.unwrap().offering_code,
        "plus-monthly"
    );
}

async fn a_decline_found_by_the_job_drops_the_seat_increase(backend: Backend) {
    let stripe = MockServer::start().await;
    let (app, bookings) = subscribed(backend, &stripe, "bookings").await;
    let outage = charges_unanswered(&stripe).await;
    let answered = three_seats(&app, &bookings.id).await.unwrap().into_inner();
    let held = answered.subscription.unwrap();
    assert!(held.components.is_empty(), "no seats before they are paid: {held:?}");
    assert_eq!(held.held_change.unwrap().components[0].quantity, 3);

    drop(outage);
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(402).set_body_string(provider_fixture("stripe", "card_declined.json")))
        .mount(&stripe)
        .await;
    advance(&app, "2026-03-10T09:30:00Z").await;
    let kept = get_subscription(&app, &bookings.id).await;
    assert!(kept.components.is_empty());
    assert_eq!(kept.held_change, None);
    assert_eq!(kept.payment_status(), pb::PaymentStatus::Ok);
    assert_eq!(
        statuses(&business_invoices(&app, "biz-1").await),
        [pb::InvoiceStatus::Paid, pb::InvoiceStatus::Void]
    );
    let history = app
        .subscriptions()
        .list_subscription_history(pb::ListSubscriptionHistoryRequest {
            subscription_id: bookings.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        history
            .entries
            .iter()
            .any(|entry| entry.description.contains("provider: declined")),
        "the provider's words are kept: {history:?}"
    );
}

async fn a_seats_checkout_during_an_outage_is_pending_then_completed(backend: Backend) {
    billing_provider_api::http::install_crypto_provider();
    let stripe = MockServer::start().await;
    let (app, bookings) = subscribed(backend, &stripe, "bookings").await;
    let outage = charges_unanswered(&stripe).await;
    let opened = app
        .checkout()
        .create_checkout_session(pb::CreateCheckoutSessionRequest {
            business_id: "biz-1".into(),
            buyer_id: "owner".into(),
            kind: pb::CheckoutKind::UpdateSubscription.into(),
            subscription_id: bookings.id.clone(),
            components: vec![pb::ComponentQuantity {
                component_code: "seat".into(),
                quantity: 2,
            }],
            return_url: "https://app.example.com/done".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let location = billing_tests::page::accept(&app, &opened.url).await;
    assert!(location.contains("status=pending"), "{location}");
    let session_id = opened.session.unwrap().id;
    let session = |app: &TestApp| {
        let mut client = app.checkout();
        let id = session_id.clone();
        async move {
            client
                .get_checkout_session(pb::GetCheckoutSessionRequest { session_id: id })
                .await
                .unwrap()
                .into_inner()
                .session
                .unwrap()
        }
    };
    assert_eq!(session(&app).await.status(), pb::CheckoutSessionStatus::Pending);
    assert!(get_subscription(&app, &bookings.id).await.components.is_empty());

    drop(outage);
    let _paid = charges_succeed(&stripe).await;
    advance(&app, "2026-03-10T09:30:00Z").await;
    assert_eq!(session(&app).await.status(), pb::CheckoutSessionStatus::Completed);
    assert_eq!(get_subscription(&app, &bookings.id).await.components[0].quantity, 2);
}

/// UpdateComponents to three seats.
async fn three_seats(
    app: &TestApp,
    subscription_id: &str,
) -> Result<tonic::Response<pb::UpdateComponentsResponse>, tonic::Status> {
    app.subscriptions()
        .update_components(pb::UpdateComponentsRequest {
            request_id: format!("seats-{subscription_id}"),
            subscription_id: subscription_id.into(),
            components: vec![pb::ComponentQuantity {
                component_code: "seat".into(),
                quantity: 3,
            }],
            ..Default::default()
        })
        .await
}
