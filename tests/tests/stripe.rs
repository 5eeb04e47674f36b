//! Stripe end to end, on SQLite and Postgres: the real server billing a
//! directory through a wiremock Stripe, and Stripe's signed webhooks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use billing_proto::v1 as pb;
use billing_provider_stripe::webhook::sign;
use billing_tests::{
    Backend, TestApp, advance_clock as advance, assert_status, attach_card, backend_tests, business_invoices,
    buy_offering, provider_fixture, provision_business, spawn_stripe_app,
};
use tonic::Code;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    a_purchase_is_charged_through_stripe_with_the_attempts_key,
    a_declined_card_at_stripe_buys_nothing,
    a_500_then_success_and_a_429_charge_once,
    a_lost_answer_is_reconciled_without_charging_twice,
    signed_webhooks_settle_an_open_attempt_once,
    bad_deliveries_are_refused_and_nothing_is_stored,
    out_of_order_events_leave_the_right_state,
    a_purchase_whose_client_gives_up_mid_charge_still_completes,
    an_outage_keeps_a_job_retrying_hourly_where_operators_see_it,
);

const SECRET: &str = billing_tests::STRIPE_TEST_WEBHOOK_SECRET;
const START: &str = "2026-03-10T09:00:00Z";

fn fixture(name: &str) -> String {
    provider_fixture("stripe", name)
}

async fn stripe_app(backend: Backend, stripe: &MockServer) -> TestApp {
    let base_url = stripe.uri();
    let app = spawn_stripe_app(backend, &base_url, START, |settings| {
        settings.providers.timeout_seconds = Duration::from_secs(1);
        settings.providers.max_attempts = 2;
    })
    .await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    app
}

/// Customer lookup, creation and card attachment, as Stripe answers them.
async fn mount_customer_and_card(stripe: &MockServer) {
    billing_tests::mount_stripe_customer_and_card(stripe).await;
}

async fn mount_no_earlier_attempt(stripe: &MockServer) {
    billing_tests::mount_stripe_no_earlier_attempt(stripe).await;
}

async fn buy(app: &TestApp, offering_code: &str) -> Result<pb::CreateSubscriptionResponse, tonic::Status> {
    buy_offering(app, "biz-1", offering_code).await
}

async fn invoices(app: &TestApp) -> Vec<pb::Invoice> {
    business_invoices(app, "biz-1").await
}

fn status(invoice: &pb::Invoice) -> pb::InvoiceStatus {
    pb::InvoiceStatus::try_from(invoice.status).unwrap()
}

async fn intent_posts(stripe: &MockServer) -> Vec<wiremock::Request> {
    stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|request| request.method.as_str() == "POST" && request.url.path() == "/v1/payment_intents")
        .collect()
}

fn key_of(request: &wiremock::Request) -> String {
    request.headers["Idempotency-Key"].to_str().unwrap().to_owned()
}

async fn a_purchase_is_charged_through_stripe_with_the_attempts_key(backend: Backend) {
    let stripe = MockServer::start().await;
    mount_customer_and_card(&stripe).await;
    mount_no_earlier_attempt(&stripe).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("Authorization", "Bearer sk_test_e2e"))
        .and(body_string_contains("amount=3000"))
        .and(body_string_contains("currency=usd"))
        .and(body_string_contains("customer=cus_NffrFeUfNV2Hib"))
        .and(body_string_contains("off_session=true"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("payment_intent_succeeded.json")))
        .mount(&stripe)
        .await;
    let app = stripe_app(backend, &stripe).await;
    let method = app
        .payment_methods()
        .attach_payment_method(pb::AttachPaymentMethodRequest {
            request_id: "attach".into(),
            business_id: "biz-1".into(),
            token: "pm_card_visa".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .payment_method
        .unwrap();
    assert_eq!(method.provider, "stripe");
    assert_eq!((method.brand.as_str(), method.last4.as_str()), ("visa", "4242"));

    let bought = buy(&app, "pro-monthly").await.unwrap();
    let invoice = bought.invoice.unwrap();
    assert_eq!(status(&invoice), pb::InvoiceStatus::Paid);
    let posts = intent_posts(&stripe).await;
    assert_eq!(posts.len(), 1);
    assert_eq!(key_of(&posts[0]), format!("{}:attempt:1", invoice.id));
}

async fn a_declined_card_at_stripe_buys_nothing(backend: Backend) {
    let stripe = MockServer::start().await;
    mount_customer_and_card(&stripe).await;
    mount_no_earlier_attempt(&stripe).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(402).set_body_string(fixture("card_declined.json")))
        .mount(&stripe)
        .await;
    let app = stripe_app(backend, &stripe).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let status = buy(&app, "pro-monthly").await.unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "PAYMENT_DECLINED");
    assert!(status.message().contains("insufficient_funds"), "{status:?}");
    let invoices = invoices(&app).await;
    assert_eq!(status_of_all(&invoices), [pb::InvoiceStatus::Void]);
    // The provider's own words are kept in the history.
    let history = app
        .subscriptions()
        .list_subscription_history(pb::ListSubscriptionHistoryRequest {
            subscription_id: invoices[0].subscription_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(
        history
            .iter()
            .any(|entry| entry.description.contains("provider: declined (insufficient_funds)")),
        "{history:?}"
    );
}

fn status_of_all(invoices: &[pb::Invoice]) -> Vec<pb::InvoiceStatus> {
    invoices.iter().map(status).collect()
}

async fn a_500_then_success_and_a_429_charge_once(backend: Backend) {
    let stripe = MockServer::start().await;
    mount_customer_and_card(&stripe).await;
    mount_no_earlier_attempt(&stripe).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(500).set_body_string(r#"{"error": {"type": "api_error"}}"#))
        .up_to_n_times(1)
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("payment_intent_succeeded.json")))
        .mount(&stripe)
        .await;
    let app = stripe_app(backend, &stripe).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;

    // The purchase meets the 500, and is retried with the same key.
    let bought = buy(&app, "pro-monthly").await.unwrap();
    let first = bought.invoice.unwrap();
    assert_eq!(status(&first), pb::InvoiceStatus::Paid);
    let posts = intent_posts(&stripe).await;
    assert_eq!(posts.len(), 2);
    assert!(
        posts
            .iter()
            .all(|post| key_of(post) == format!("{}:attempt:1", first.id))
    );

    // The add-on meets a 429 and waits as told.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&stripe)
        .await;
    let started = std::time::Instant::now();
    let addon = buy(&app, "bookings").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    let second = addon.invoice.unwrap();
    assert_eq!(status(&second), pb::InvoiceStatus::Paid);
    let posts = intent_posts(&stripe).await;
    assert_eq!(posts.len(), 4);
    assert!(
        posts[2..]
            .iter()
            .all(|post| key_of(post) == format!("{}:attempt:1", second.id))
    );
}

/// Stripe takes the charge but the answer never arrives (every attempt
/// times out): the request fails, the invoice stays due, and the job finds
/// the charge by its key instead of charging again.
async fn a_lost_answer_is_reconciled_without_charging_twice(backend: Backend) {
    let stripe = MockServer::start().await;
    mount_customer_and_card(&stripe).await;
    mount_no_earlier_attempt(&stripe).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(fixture("payment_intent_succeeded.json"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&stripe)
        .await;
    let app = stripe_app(backend, &stripe).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    // The purchase is committed and answered INCOMPLETE: visible, not entitled.
    let bought = buy(&app, "pro-monthly").await.unwrap();
    let subscription = bought.subscription.unwrap();
    assert_eq!(subscription.payment_status(), pb::PaymentStatus::Incomplete);
    assert!(!entitled(&app, "marketing").await);
    let again = buy(&app, "pro-monthly").await.unwrap();
    assert_eq!(
        again.subscription.unwrap().payment_status(),
        pb::PaymentStatus::Incomplete,
        "the stored outcome"
    );
    let open = invoices(&app).await;
    assert_eq!(status_of_all(&open), [pb::InvoiceStatus::Open]);
    let key = format!("{}:attempt:1", open[0].id);
    let posts = intent_posts(&stripe).await;
    assert!(!posts.is_empty() && posts.iter().all(|post| key_of(post) == key));

    // Stripe now shows the attempt; the job looks it up and records it.
    stripe.reset().await;
    let found = fixture("payment_intent_search.json").replace("inv_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b:attempt:1", &key);
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/search"))
        .respond_with(ResponseTemplate::new(200).set_body_string(found))
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&stripe)
        .await;
    advance(&app, "2026-03-10T09:01:00Z").await;
    assert_eq!(status_of_all(&invoices(&app).await), [pb::InvoiceStatus::Paid]);
    assert!(intent_posts(&stripe).await.is_empty(), "charged again");
    let completed = billing_tests::get_subscription(&app, &subscription.id).await;
    assert_eq!(completed.payment_status(), pb::PaymentStatus::Ok);
    assert!(entitled(&app, "marketing").await);
}

async fn entitled(app: &TestApp, product_code: &str) -> bool {
    app.subscriptions()
        .check_entitlement(pb::CheckEntitlementRequest {
            business_id: "biz-1".into(),
            product_code: product_code.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .entitled
}

/// A purchase whose charge is still unanswered (every attempt timed out):
/// its invoice is open at attempt 1.
async fn open_attempt(stripe: &MockServer, backend: Backend) -> (TestApp, String) {
    mount_customer_and_card(stripe).await;
    mount_no_earlier_attempt(stripe).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(stripe)
        .await;
    let app = stripe_app(backend, stripe).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let bought = buy(&app, "pro-monthly").await.unwrap();
    assert_eq!(
        bought.subscription.unwrap().payment_status(),
        pb::PaymentStatus::Incomplete
    );
    let key = format!("{}:attempt:1", invoices(&app).await[0].id);
    // From now on Stripe shows nothing and answers nothing new: only the
    // webhook can settle the attempt.
    stripe.reset().await;
    mount_no_earlier_attempt(stripe).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(503))
        .mount(stripe)
        .await;
    (app, key)
}

fn event(name: &str, id: &str, key: &str, created: i64) -> String {
    fixture(name)
        .replace("inv_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b:attempt:1", key)
        .replacen("\"id\": \"evt_", &format!("\"id\": \"{id}_"), 1)
        .replace("\"created\": 1680800505", &format!("\"created\": {created}"))
        .replace("\"created\": 1680800600", &format!("\"created\": {created}"))
}

async fn deliver(app: &TestApp, body: &str, signature: Option<String>) -> reqwest::StatusCode {
    let mut request = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", app.http_base()))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("Stripe-Signature", signature);
    }
    request.send().await.unwrap().status()
}

fn now_seconds() -> i64 {
    chrono::DateTime::parse_from_rfc3339(START).unwrap().timestamp()
}

async fn signed_webhooks_settle_an_open_attempt_once(backend: Backend) {
    let stripe = MockServer::start().await;
    let (app, key) = open_attempt(&stripe, backend).await;
    let body = event("event_payment_intent_succeeded.json", "evt_paid", &key, now_seconds());
    for _ in 0..3 {
        let signature = sign(body.as_bytes(), SECRET, now_seconds());
        assert_eq!(deliver(&app, &body, Some(signature)).await, reqwest::StatusCode::OK);
    }
    let stored = app.deliveries("stripe").await;
    assert_eq!(stored.len(), 1, "one event, stored once: {stored:?}");
    assert_eq!(stored[0].status, "PENDING");

    advance(&app, "2026-03-10T09:00:01Z").await;
    assert_eq!(status_of_all(&invoices(&app).await), [pb::InvoiceStatus::Paid]);
    let stored = app.deliveries("stripe").await;
    assert_eq!(stored[0].status, "PROCESSED", "{stored:?}");
    let paid_events = app
        .event_types("biz-1")
        .await
        .into_iter()
        .filter(|event| event == "invoice.paid")
        .count();
    assert_eq!(paid_events, 1);
}

async fn bad_deliveries_are_refused_and_nothing_is_stored(backend: Backend) {
    let stripe = MockServer::start().await;
    let (app, key) = open_attempt(&stripe, backend).await;
    let body = event("event_payment_intent_succeeded.json", "evt_bad", &key, now_seconds());
    let good = sign(body.as_bytes(), SECRET, now_seconds());
    let cases = [
        (None, body.clone(), reqwest::StatusCode::UNAUTHORIZED),
        (
            Some(sign(body.as_bytes(), "whsec_wrong", now_seconds())),
            body.clone(),
            reqwest::StatusCode::UNAUTHORIZED,
        ),
        (
            Some(sign(body.as_bytes(), SECRET, now_seconds() - 301)),
            body.clone(),
            reqwest::StatusCode::UNAUTHORIZED,
        ),
        (
            Some(good.clone()),
            body.replace("succeeded", "failed"),
            reqwest::StatusCode::UNAUTHORIZED,
        ),
        (
            Some(sign(b"{not json", SECRET, now_seconds())),
            "{not json".to_owned(),
            reqwest::StatusCode::BAD_REQUEST,
        ),
        (
            Some("t=abc".to_owned()),
            body.clone(),
            reqwest::StatusCode::UNAUTHORIZED,
        ),
    ];
    for (signature, payload, expected) in cases {
        assert_eq!(
            deliver(&app, &payload, signature.clone()).await,
            expected,
            "{signature:?}"
        );
    }
    assert!(app.deliveries("stripe").await.is_empty());
    assert_eq!(status_of_all(&invoices(&app).await), [pb::InvoiceStatus::Open]);
}

async fn out_of_order_events_leave_the_right_state(backend: Backend) {
    let stripe = MockServer::start().await;
    let (app, key) = open_attempt(&stripe, backend).await;
    let now = now_seconds();
    // The success arrives and is applied; the failure of the same attempt,
    // older, arrives after it.
    let paid = event("event_payment_intent_succeeded.json", "evt_late_paid", &key, now);
    assert_eq!(
        deliver(&app, &paid, Some(sign(paid.as_bytes(), SECRET, now))).await,
        reqwest::StatusCode::OK
    );
    advance(&app, "2026-03-10T09:00:01Z").await;
    let failed = event(
        "event_payment_intent_payment_failed.json",
        "evt_early_failed",
        &key,
        now - 60,
    );
    assert_eq!(
        deliver(&app, &failed, Some(sign(failed.as_bytes(), SECRET, now + 1))).await,
        reqwest::StatusCode::OK
    );
    advance(&app, "2026-03-10T09:00:02Z").await;
    assert_eq!(status_of_all(&invoices(&app).await), [pb::InvoiceStatus::Paid]);
    let stored = app.deliveries("stripe").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].status, "IGNORED", "{stored:?}");
    assert!(
        stored[1].outcome.as_deref().unwrap_or_default().starts_with("stale"),
        "{stored:?}"
    );
}

/// The same CreateSubscription, repeated until the first attempt has its
/// outcome (meanwhile the key is in use by that attempt).
async fn outcome_of_purchase(app: &TestApp, business_id: &str) -> pb::CreateSubscriptionResponse {
    let started = std::time::Instant::now();
    loop {
        match buy_offering(app, business_id, "pro-monthly").await {
            Ok(bought) => return bought,
            Err(status) if billing_tests::reason(&status) == "IDEMPOTENCY_KEY_IN_USE" => {
                assert!(started.elapsed() < Duration::from_secs(10), "still in use: {status:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
}

async fn a_purchase_whose_client_gives_up_mid_charge_still_completes(backend: Backend) {
    let stripe = MockServer::start().await;
    mount_customer_and_card(&stripe).await;
    mount_no_earlier_attempt(&stripe).await;
    // Stripe takes its time; the clients do not wait that long.
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(fixture("payment_intent_succeeded.json"))
                .set_delay(Duration::from_millis(600)),
        )
        .mount(&stripe)
        .await;
    let app = stripe_app(backend, &stripe).await;
    provision_business(&app, "biz-2").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    attach_card(&app, "biz-2", "pm_card_visa").await;

    // biz-1's client sets a deadline shorter than the charge.
    let mut request = tonic::Request::new(pb::CreateSubscriptionRequest {
        request_id: "buy-biz-1-pro-monthly".into(),
        business_id: "biz-1".into(),
        buyer_id: "owner".into(),
        offering: Some(pb::create_subscription_request::Offering::OfferingCode(
            "pro-monthly".into(),
        )),
        currency_code: "USD".into(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(150));
    let timed_out = app.subscriptions().create_subscription(request).await.unwrap_err();
    // Whichever side's timer fires first: the client's or the server's.
    assert!(
        matches!(timed_out.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{timed_out:?}"
    );
    // biz-2's client goes away mid-charge.
    let gone = {
        let app_clients = app.subscriptions();
        tokio::spawn(async move {
            let mut client = app_clients;
            client
                .create_subscription(pb::CreateSubscriptionRequest {
                    request_id: "buy-biz-2-pro-monthly".into(),
                    business_id: "biz-2".into(),
                    buyer_id: "owner".into(),
                    offering: Some(pb::create_subscription_request::Offering::OfferingCode(
                        "pro-monthly".into(),
                    )),
                    currency_code: "USD".into(),
                    ..Default::default()
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    gone.abort();

    // Each purchase ran to its outcome; repeating it returns that outcome.
    for business in ["biz-1", "biz-2"] {
        let bought = outcome_of_purchase(&app, business).await;
        let subscription = bought.subscription.unwrap();
        assert_eq!(subscription.business_id, business);
        assert_eq!(status(&bought.invoice.unwrap()), pb::InvoiceStatus::Paid);
        let again = buy_offering(&app, business, "pro-monthly").await.unwrap();
        assert_eq!(again.subscription.unwrap().id, subscription.id);
    }
    // One charge per purchase.
    assert_eq!(intent_posts(&stripe).await.len(), 2);
}

async fn failing_work(app: &TestApp) -> Vec<pb::FailingWork> {
    app.operations()
        .list_failing_work(pb::ListFailingWorkRequest::default())
        .await
        .unwrap()
        .into_inner()
        .work
}

async fn an_outage_keeps_a_job_retrying_hourly_where_operators_see_it(backend: Backend) {
    let stripe = MockServer::start().await;
    mount_customer_and_card(&stripe).await;
    mount_no_earlier_attempt(&stripe).await;
    let outage = Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&stripe)
        .await;
    let base_url = stripe.uri();
    // One attempt per charge: no backoff sleeps in this test.
    let app = spawn_stripe_app(backend, &base_url, START, |settings| {
        settings.providers.max_attempts = 1
    })
    .await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let incomplete = buy(&app, "pro-monthly").await.unwrap().subscription.unwrap();
    assert_eq!(incomplete.payment_status(), pb::PaymentStatus::Incomplete);

    // Twelve hours of outage: tried after 2, 4, 8, 16, 32 minutes, then
    // hourly, never parked and never in a tight loop.
    let advanced = app
        .test_clock()
        .advance_clock(pb::AdvanceClockRequest {
            to_time: Some(billing_tests::timestamp("2026-03-10T21:00:00Z")),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        (12..=20).contains(&advanced.jobs_failed),
        "{} failed runs in 12 hours",
        advanced.jobs_failed
    );
    let failing = failing_work(&app).await;
    assert_eq!(failing.len(), 1, "{failing:?}");
    let job = &failing[0];
    assert_eq!(job.kind(), pb::WorkKind::Job);
    assert_eq!(job.status(), pb::WorkStatus::Retrying);
    assert!(job.attempts >= 12, "{job:?}");
    assert!(
        job.last_error.contains("unavailable") || job.last_error.contains("503"),
        "{job:?}"
    );
    let next = job.next_attempt_time.unwrap();
    assert!(
        next.seconds <= billing_tests::timestamp("2026-03-10T22:00:00Z").seconds,
        "{next:?}"
    );

    // The outage ends; an operator retries at once instead of waiting.
    drop(outage);
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("payment_intent_succeeded.json")))
        .mount(&stripe)
        .await;
    let retried = app
        .operations()
        .retry_work(pb::RetryWorkRequest {
            request_id: "retry-1".into(),
            kind: pb::WorkKind::Job.into(),
            id: job.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .work
        .unwrap();
    assert_eq!(retried.attempts, 0);
    assert_eq!(
        retried.next_attempt_time,
        Some(billing_tests::timestamp("2026-03-10T21:00:00Z"))
    );
    let settled = advance(&app, "2026-03-10T21:00:01Z").await;
    assert_eq!((settled.jobs_run, settled.jobs_failed), (1, 0));
    assert!(failing_work(&app).await.is_empty());
    assert_eq!(status_of_all(&invoices(&app).await), [pb::InvoiceStatus::Paid]);
    assert_eq!(
        billing_tests::get_subscription(&app, &incomplete.id)
            .await
            .payment_status(),
        pb::PaymentStatus::Ok
    );
    assert_eq!(
        intent_posts(&stripe).await.len() as i32,
        advanced.jobs_failed + 2,
        "the purchase, each retry, the last"
    );
}
