//! A process killed (SIGKILL) between a purchase's commit and its charge's
//! outcome, against the real `billingd`: the purchase exists once, the next
//! process's job settles the charge with the same key, and repeating the
//! request answers the purchase as committed — never a second purchase, and
//! not IDEMPOTENCY_KEY_IN_USE once the first attempt is dead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use billing_proto::v1 as pb;
use billing_proto::v1::payment_method_service_client::PaymentMethodServiceClient;
use billing_proto::v1::subscription_service_client::SubscriptionServiceClient;
use billing_proto::v1::test_clock_service_client::TestClockServiceClient;
use billing_storage::testing::TestDatabase;
use billing_tests::process::{Billingd, load_demo, provision_over};
use billing_tests::{
    Backend, backend_tests, mount_stripe_customer_and_card, mount_stripe_no_earlier_attempt, provider_fixture,
    stripe_charge_keys, timestamp,
};
use tonic::transport::Channel;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(a_purchase_outlives_the_process_that_took_it);

fn purchase() -> pb::CreateSubscriptionRequest {
    pb::CreateSubscriptionRequest {
        request_id: "buy-pro".into(),
        business_id: "biz-1".into(),
        buyer_id: "owner".into(),
        offering: Some(pb::create_subscription_request::Offering::OfferingCode(
            "pro-monthly".into(),
        )),
        currency_code: "USD".into(),
        ..Default::default()
    }
}

async fn mount_stripe(stripe: &MockServer, charge_delay: Duration) {
    mount_stripe_customer_and_card(stripe).await;
    mount_stripe_no_earlier_attempt(stripe).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(provider_fixture("stripe", "payment_intent_succeeded.json"))
                .set_delay(charge_delay),
        )
        .mount(stripe)
        .await;
}

async fn start(database: &TestDatabase, stripe: &MockServer, clock_start: &str) -> Billingd {
    let stripe_url = stripe.uri();
    Billingd::start(
        database.url(),
        &[
            ("BILLING__CLOCK__MODE", "manual"),
            ("BILLING__CLOCK__START_TIME", clock_start),
            ("BILLING__PROVIDERS__DEFAULT", "stripe"),
            ("BILLING__PROVIDERS__STRIPE__API_KEY", "sk_test_crash"),
            ("BILLING__PROVIDERS__STRIPE__WEBHOOK_SECRET", "whsec_crash"),
            ("BILLING__PROVIDERS__STRIPE__BASE_URL", stripe_url.as_str()),
            ("BILLING__PROVIDERS__MAX_ATTEMPTS", "1"),
        ],
    )
    .await
}

async fn subscriptions(channel: &Channel) -> Vec<pb::Subscription> {
    SubscriptionServiceClient::new(channel.clone())
        .list_subscriptions(pb::ListSubscriptionsRequest {
            business_id: "biz-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions
        .into_iter()
        .filter(|subscription| subscription.offering_code == "pro-monthly")
        .collect()
}

async fn a_purchase_outlives_the_process_that_took_it(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    load_demo(database.url()).await;
    // Stripe takes five seconds to charge: time enough to die.
    let stripe = MockServer::start().await;
    mount_stripe(&stripe, Duration::from_secs(5)).await;
    let first = start(&database, &stripe, "2026-03-10T09:00:00Z").await;
    let channel = first.channel().await;
    provision_over(&channel, "biz-1").await;
    PaymentMethodServiceClient::new(channel.clone())
        .attach_payment_method(pb::AttachPaymentMethodRequest {
            request_id: "card".into(),
            business_id: "biz-1".into(),
            token: "pm_card_visa".into(),
        })
        .await
        .unwrap();
    let buying = tokio::spawn({
        let channel = channel.clone();
        async move {
            SubscriptionServiceClient::new(channel)
                .create_subscription(purchase())
                .await
        }
    });
    // The charge is at Stripe: the purchase has committed. Now the process dies.
    let asked = Instant::now();
    while stripe_charge_keys(&stripe).await.is_empty() {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "the charge never reached Stripe"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill().await;
    assert!(buying.await.unwrap().is_err(), "the client saw its server die");

    // The next process (its clock past the first attempt's limit) on the
    // same database, with Stripe answering at once.
    stripe.reset().await;
    mount_stripe(&stripe, Duration::ZERO).await;
    let second = start(&database, &stripe, "2026-03-10T09:05:00Z").await;
    let channel = second.channel().await;
    let committed = subscriptions(&channel).await;
    assert_eq!(committed.len(), 1, "bought once: {committed:?}");
    assert_eq!(committed[0].payment_status(), pb::PaymentStatus::Incomplete);
    // Repeating the request answers the purchase as committed.
    let repeated = SubscriptionServiceClient::new(channel.clone())
        .create_subscription(purchase())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(repeated.subscription.unwrap().id, committed[0].id);

    // The job settles the charge, with the first attempt's key.
    TestClockServiceClient::new(channel.clone())
        .advance_clock(pb::AdvanceClockRequest {
            to_time: Some(timestamp("2026-03-10T09:06:00Z")),
        })
        .await
        .unwrap();
    let settled = subscriptions(&channel).await;
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].payment_status(), pb::PaymentStatus::Ok);
    let invoices = billing_proto::v1::invoice_service_client::InvoiceServiceClient::new(channel.clone())
        .list_invoices(pb::ListInvoicesRequest {
            business_id: "biz-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invoices;
    let paid: Vec<&pb::Invoice> = invoices
        .iter()
        .filter(|invoice| invoice.status() == pb::InvoiceStatus::Paid)
        .collect();
    assert_eq!(paid.len(), 1, "{invoices:?}");
    assert_eq!(stripe_charge_keys(&stripe).await, [format!("{}:attempt:1", paid[0].id)]);
    // Nothing is left in use.
    let again = SubscriptionServiceClient::new(channel.clone())
        .create_subscription(purchase())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.subscription.unwrap().id, committed[0].id);
    second.terminate();
    let (exit, _) = second.wait(Duration::from_secs(20)).await;
    assert_eq!(exit.code(), Some(0));
}
