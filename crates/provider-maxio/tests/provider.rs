//! The Maxio adapter against a wiremock Maxio.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use billing_provider_api::http::HttpSettings;
use billing_provider_api::{EngineSubscription, ProviderErrorKind, SubscriptionEngine};
use billing_provider_maxio::MaxioProvider;
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn maxio(server: &MockServer) -> MaxioProvider {
    let settings = HttpSettings {
        base_delay: Duration::from_millis(1),
        ..HttpSettings::new(server.uri())
    };
    MaxioProvider::new("maxio_key".to_owned().into(), settings).unwrap()
}

fn new_subscription() -> EngineSubscription {
    EngineSubscription {
        reference: "sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b".into(),
        customer_reference: "biz-1".into(),
        product_handle: "pro-monthly".into(),
        price_point_handle: None,
        components: Vec::new(),
        coupon_code: None,
    }
}

#[tokio::test]
async fn create_then_a_lost_answer_finds_the_first_by_reference() {
    let server = MockServer::start().await;
    // "maxio_key:x" in base64.
    Mock::given(method("POST"))
        .and(path("/subscriptions.json"))
        .and(header("Authorization", "Basic bWF4aW9fa2V5Ong="))
        .respond_with(ResponseTemplate::new(201).set_body_string(fixture("subscription.json")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/subscriptions.json"))
        .respond_with(ResponseTemplate::new(422).set_body_string(fixture("reference_taken.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/subscriptions/lookup.json"))
        .and(query_param("reference", "sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("subscription.json")))
        .mount(&server)
        .await;
    let engine = maxio(&server);
    let first = engine.create_subscription(&new_subscription()).await.unwrap();
    assert_eq!(
        (first.provider_id.as_str(), first.state.as_str()),
        ("15236915", "active")
    );
    let again = engine.create_subscription(&new_subscription()).await.unwrap();
    assert_eq!(again, first);
}

#[tokio::test]
async fn plan_changes_components_cancels_and_reactivation() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/subscriptions/15236915/migrations/preview.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("migration_preview.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/subscriptions/15236915/migrations.json"))
        .and(body_json(json!({"migration": {
            "product_handle": "pro-yearly", "preserve_period": true, "include_coupons": true,
            "include_trial": false, "include_initial_charge": false,
        }})))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("subscription.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/subscriptions/15236915/components/handle:seat/allocations.json"))
        .respond_with(ResponseTemplate::new(201).set_body_string(fixture("allocation.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/subscriptions/15236915/delayed_cancel.json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(r#"{"message": "This subscription will be canceled at the end of the period."}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/subscriptions/15236915.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("subscription.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/subscriptions/15236915/delayed_cancel.json"))
        .respond_with(ResponseTemplate::new(422).set_body_string(r#"{"errors": ["not pending cancellation"]}"#))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/subscriptions/15236915/reactivate.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("subscription.json")))
        .expect(1)
        .mount(&server)
        .await;
    let engine = maxio(&server);
    let preview = engine
        .preview_plan_change("15236915", "pro-yearly", None)
        .await
        .unwrap();
    assert_eq!(preview.payment_due_minor, 1016);
    engine.change_plan("15236915", "pro-yearly", None).await.unwrap();
    engine.set_component_quantity("15236915", "seat", 5).await.unwrap();
    engine.cancel("15236915", true, "at period end").await.unwrap();
    engine.cancel("15236915", false, "now").await.unwrap();
    engine.reactivate("15236915").await.unwrap();
    assert_eq!(
        engine.cancel("not-an-id", false, "x").await.unwrap_err().kind(),
        ProviderErrorKind::InvalidRequest
    );
}

#[tokio::test]
async fn an_unknown_reference_is_none_and_outages_are_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/subscriptions/lookup.json"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .expect(3)
        .mount(&server)
        .await;
    let engine = maxio(&server);
    assert_eq!(engine.find_subscription("sub_x").await.unwrap(), None);
    assert_eq!(
        engine
            .create_subscription(&new_subscription())
            .await
            .unwrap_err()
            .kind(),
        ProviderErrorKind::Unavailable
    );
}
