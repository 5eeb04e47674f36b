//! A purchase whose first charge has no answer is INCOMPLETE: committed and
//! visible, entitled to nothing. The job settles it: a decline, or a day of
//! outage, ends it (`INCOMPLETE_EXPIRED`), its invoice void, nothing charged,
//! and the business has its free package back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, TestApp, attach_card, backend_tests, business_invoices, buy_offering, get_subscription,
    mount_stripe_customer_and_card, mount_stripe_no_earlier_attempt, provider_fixture, provision_business,
    spawn_stripe_app, timestamp,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    a_day_of_outage_expires_the_purchase_and_gives_the_free_package_back,
    a_decline_found_by_the_job_ends_the_purchase,
    a_checkout_accepted_during_an_outage_is_pending_then_real,
);

async fn app_billed_by(backend: Backend, stripe: &MockServer) -> TestApp {
    mount_stripe_customer_and_card(stripe).await;
    mount_stripe_no_earlier_attempt(stripe).await;
    let base_url = stripe.uri();
    let app = spawn_stripe_app(backend, &base_url, "2026-03-10T09:00:00Z", |settings| {
        settings.providers.max_attempts = 1;
        settings.checkout.allowed_return_hosts = vec!["app.example.com".into()];
    })
    .await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    app
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

async fn advance_through_failures(app: &TestApp, to: &str) -> pb::AdvanceClockResponse {
    app.test_clock()
        .advance_clock(pb::AdvanceClockRequest {
            to_time: Some(timestamp(to)),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Buys Pro while Stripe answers 503: INCOMPLETE, nothing entitled.
async fn buy_during_outage(app: &TestApp) -> pb::Subscription {
    let bought = buy_offering(app, "biz-1", "pro-monthly").await.unwrap();
    let pro = bought.subscription.unwrap();
    assert_eq!(pro.payment_status(), pb::PaymentStatus::Incomplete);
    assert_eq!(pro.state(), pb::SubscriptionState::Purchased);
    assert!(
        bought
            .bundled_subscriptions
            .iter()
            .all(|child| child.payment_status() == pb::PaymentStatus::Incomplete)
    );
    assert_eq!(bought.invoice.unwrap().status(), pb::InvoiceStatus::Open);
    for product in ["marketing", "seo"] {
        assert!(!entitled(app, product).await, "{product} entitled before payment");
    }
    pro
}

/// The lifecycle events of `subscription_id` in the stream.
async fn lifecycle(app: &TestApp, subscription_id: &str) -> Vec<String> {
    app.events()
        .list_events(pb::ListEventsRequest {
            subscription_id: subscription_id.into(),
            types: vec![
                "subscription.started".into(),
                "subscription.canceled".into(),
                "subscription.ended".into(),
            ],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events
        .into_iter()
        .map(|event| event.r#type)
        .collect()
}

async fn assert_nothing_bought(app: &TestApp, pro: &pb::Subscription) {
    // Never paid, never started: no START, so no END either.
    assert!(lifecycle(app, &pro.id).await.is_empty());
    let ended = get_subscription(app, &pro.id).await;
    assert_eq!(ended.state(), pb::SubscriptionState::Expired);
    assert_eq!(ended.cancel_reason, "INCOMPLETE_EXPIRED");
    assert!(!ended.active);
    let invoices = business_invoices(app, "biz-1").await;
    assert_eq!(
        invoices.iter().map(pb::Invoice::status).collect::<Vec<_>>(),
        [pb::InvoiceStatus::Void]
    );
    // The free package is back; Pro's products and its bundle are not.
    assert!(entitled(app, "website").await);
    assert!(!entitled(app, "marketing").await);
    assert!(!entitled(app, "seo").await);
}

async fn a_day_of_outage_expires_the_purchase_and_gives_the_free_package_back(backend: Backend) {
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&stripe)
        .await;
    let app = app_billed_by(backend, &stripe).await;
    let pro = buy_during_outage(&app).await;

    // Still incomplete after 22 hours of retries.
    advance_through_failures(&app, "2026-03-11T07:00:00Z").await;
    assert_eq!(
        get_subscription(&app, &pro.id).await.payment_status(),
        pb::PaymentStatus::Incomplete
    );
    // Past 23 hours the job ends it, within the hour.
    advance_through_failures(&app, "2026-03-11T09:00:00Z").await;
    assert_nothing_bought(&app, &pro).await;
}

async fn a_decline_found_by_the_job_ends_the_purchase(backend: Backend) {
    let stripe = MockServer::start().await;
    let outage = Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&stripe)
        .await;
    let app = app_billed_by(backend, &stripe).await;
    let pro = buy_during_outage(&app).await;
    drop(outage);
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(402).set_body_string(provider_fixture("stripe", "card_declined.json")))
        .mount(&stripe)
        .await;
    // The job's retry is declined: no dunning, no grace: nothing was bought.
    advance_through_failures(&app, "2026-03-10T09:05:00Z").await;
    assert_nothing_bought(&app, &pro).await;
}

/// Opens a checkout for `business` and accepts it on its page; returns the
/// session id and where the buyer was sent.
async fn accept_checkout(app: &TestApp, business: &str) -> (String, String) {
    let opened = app
        .checkout()
        .create_checkout_session(pb::CreateCheckoutSessionRequest {
            business_id: business.into(),
            buyer_id: "owner".into(),
            kind: pb::CheckoutKind::NewSubscription.into(),
            offering_code: "pro-monthly".into(),
            currency_code: "USD".into(),
            return_url: "https://app.example.com/done".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let location = billing_tests::page::accept(app, &opened.url).await;
    (opened.session.unwrap().id, location)
}

async fn session(app: &TestApp, id: &str) -> pb::CheckoutSession {
    app.checkout()
        .get_checkout_session(pb::GetCheckoutSessionRequest { session_id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap()
}

async fn a_checkout_accepted_during_an_outage_is_pending_then_real(backend: Backend) {
    billing_provider_api::http::install_crypto_provider();
    let stripe = MockServer::start().await;
    let outage = Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&stripe)
        .await;
    let app = app_billed_by(backend, &stripe).await;
    provision_business(&app, "biz-2").await;
    attach_card(&app, "biz-2", "pm_card_visa").await;

    // Accepted while Stripe is down: the buyer is told it is pending.
    let (first, location) = accept_checkout(&app, "biz-1").await;
    assert!(location.contains("status=pending"), "{location}");
    assert!(location.contains("subscription_id=sub_"), "{location}");
    assert!(!location.contains("error="), "{location}");
    let pending = session(&app, &first).await;
    assert_eq!(pending.status(), pb::CheckoutSessionStatus::Pending);
    assert!(!entitled(&app, "marketing").await);

    // The outage ends: the job charges and the session completes.
    drop(outage);
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(provider_fixture("stripe", "payment_intent_succeeded.json")),
        )
        .mount(&stripe)
        .await;
    advance_through_failures(&app, "2026-03-10T09:05:00Z").await;
    let completed = session(&app, &first).await;
    assert_eq!(completed.status(), pb::CheckoutSessionStatus::Completed);
    assert_eq!(
        lifecycle(&app, &completed.result_subscription_id).await,
        ["subscription.started"],
        "started once, when paid"
    );
    assert_eq!(completed.result_subscription_id, pending.result_subscription_id);
    assert!(entitled(&app, "marketing").await);

    // A decline found later fails the session: nothing was bought.
    stripe.reset().await;
    mount_stripe_customer_and_card(&stripe).await;
    mount_stripe_no_earlier_attempt(&stripe).await;
    let second_outage = Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(503))
        .mount_as_scoped(&stripe)
        .await;
    let (second, location) = accept_checkout(&app, "biz-2").await;
    assert!(location.contains("status=pending"), "{location}");
    drop(second_outage);
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(402).set_body_string(provider_fixture("stripe", "card_declined.json")))
        .mount(&stripe)
        .await;
    advance_through_failures(&app, "2026-03-10T09:10:00Z").await;
    let failed = session(&app, &second).await;
    assert_eq!(failed.status(), pb::CheckoutSessionStatus::Failed);
    assert_eq!(failed.error_reason, "INCOMPLETE_EXPIRED");
}
