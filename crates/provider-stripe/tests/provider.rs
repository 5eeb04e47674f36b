//! The Stripe adapter against a wiremock Stripe.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use billing_domain::{Currency, Money};
use billing_provider_api::http::HttpSettings;
use billing_provider_api::{ChargeOutcome, ChargeRequest, PaymentProvider, ProviderErrorKind};
use billing_provider_stripe::StripeProvider;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn provider(server: &MockServer) -> StripeProvider {
    let settings = HttpSettings {
        base_delay: Duration::from_millis(1),
        timeout: Duration::from_millis(500),
        ..HttpSettings::new(server.uri())
    };
    StripeProvider::new("sk_test_key".to_owned().into(), settings).unwrap()
}

fn charge() -> ChargeRequest {
    ChargeRequest {
        idempotency_key: "inv_1:attempt:1".into(),
        business_id: "biz-1".into(),
        payment_method: "cus_NffrFeUfNV2Hib:pm_1MqLiJLkdIwHu7ixUEgbFdYF".into(),
        amount: Money::new(3000, Currency::from_code("USD").unwrap()),
        description: "Invoice INV-000001".into(),
    }
}

#[tokio::test]
async fn attaching_creates_the_customer_once_and_attaches_the_card() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/customers/search"))
        .and(query_param("query", "metadata['business_id']:'biz-1'"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"object": "search_result", "data": []}"#))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .and(header("Idempotency-Key", "customer:biz-1"))
        .and(body_string_contains("metadata%5Bbusiness_id%5D=biz-1"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("customer.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_methods/pm_card_visa/attach"))
        .and(body_string_contains("customer=cus_NffrFeUfNV2Hib"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("payment_method_attached.json")))
        .expect(1)
        .mount(&server)
        .await;
    let method = provider(&server)
        .attach_payment_method("biz-1", "pm_card_visa")
        .await
        .unwrap();
    assert_eq!(method.reference, "cus_NffrFeUfNV2Hib:pm_1MqLiJLkdIwHu7ixUEgbFdYF");
    assert_eq!(method.last4, "4242");
}

#[tokio::test]
async fn a_charge_sends_its_key_and_a_decline_is_an_outcome() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("Idempotency-Key", "inv_1:attempt:1"))
        .and(header("Authorization", "Bearer sk_test_key"))
        .and(body_string_contains("off_session=true"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("payment_intent_succeeded.json")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(402).set_body_string(fixture("card_declined.json")))
        .mount(&server)
        .await;
    let stripe = provider(&server);
    assert!(matches!(
        stripe.charge(&charge()).await.unwrap(),
        ChargeOutcome::Succeeded { .. }
    ));
    assert_eq!(
        stripe.charge(&charge()).await.unwrap(),
        ChargeOutcome::Declined {
            code: "insufficient_funds".into(),
            message: "Your card has insufficient funds.".into()
        }
    );
}

#[tokio::test]
async fn a_500_then_success_charges_once_under_one_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(500).set_body_string(r#"{"error": {"type": "api_error"}}"#))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("payment_intent_succeeded.json")))
        .mount(&server)
        .await;
    let outcome = provider(&server).charge(&charge()).await.unwrap();
    assert!(matches!(outcome, ChargeOutcome::Succeeded { .. }));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|request| request.headers["Idempotency-Key"] == "inv_1:attempt:1")
    );
}

#[tokio::test]
async fn timeouts_and_rate_limits_end_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let error = provider(&server).charge(&charge()).await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Unavailable);

    let limited = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .expect(3)
        .mount(&limited)
        .await;
    let error = provider(&limited).charge(&charge()).await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Unavailable);
}

#[tokio::test]
async fn an_earlier_attempt_is_found_by_its_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/search"))
        .and(query_param("query", "metadata['charge_key']:'inv_1:attempt:1'"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("payment_intent_search.json")))
        .mount(&server)
        .await;
    let found = provider(&server).find_charge("inv_1:attempt:1").await.unwrap();
    assert!(matches!(found, Some(ChargeOutcome::Succeeded { .. })));
}
