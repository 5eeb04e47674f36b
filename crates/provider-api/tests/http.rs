//! The HTTP executor against a wiremock server: retries, backoff,
//! `Retry-After`, timeouts, and one idempotency key across retries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use billing_provider_api::ProviderErrorKind;
use billing_provider_api::http::{Auth, Call, HttpExecutor, HttpSettings};
use reqwest::Method;
use secrecy::SecretString;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn executor(server: &MockServer, timeout: Duration) -> HttpExecutor {
    let settings = HttpSettings {
        timeout,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_secs(2),
        ..HttpSettings::new(server.uri())
    };
    HttpExecutor::new("test", settings, Auth::Bearer(SecretString::from("sk_test_123"))).unwrap()
}

fn charge() -> Call {
    Call::new("create_payment_intent", Method::POST, "/v1/payment_intents")
        .form(vec![("amount".into(), "1500".into())])
        .idempotency_key("inv_1:attempt:1")
}

#[tokio::test]
async fn a_500_is_retried_with_the_same_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("Idempotency-Key", "inv_1:attempt:1"))
        .and(header("Authorization", "Bearer sk_test_123"))
        .and(header("Content-Type", "application/x-www-form-urlencoded"))
        .and(body_string("amount=1500"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"id": "pi_1"}"#))
        .expect(1)
        .mount(&server)
        .await;
    let reply = executor(&server, Duration::from_secs(5))
        .execute(&charge())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json("test").unwrap()["id"], "pi_1");
    let keys: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|request| request.headers["Idempotency-Key"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["inv_1:attempt:1", "inv_1:attempt:1"]);
}

#[tokio::test]
async fn a_429_waits_as_long_as_retry_after_says() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&server)
        .await;
    let started = Instant::now();
    let reply = executor(&server, Duration::from_secs(5))
        .execute(&charge())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    // The backoff alone would have waited ≤ 5 ms.
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_provider_that_keeps_failing_is_unavailable_after_every_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let error = executor(&server, Duration::from_secs(5))
        .execute(&charge())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Unavailable);
    assert!(error.message().contains("503"), "{error}");
    assert!(error.message().contains("3 attempts"), "{error}");
}

#[tokio::test]
async fn a_timeout_is_retried_then_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let error = executor(&server, Duration::from_millis(200))
        .execute(&charge())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Unavailable);
    assert!(error.message().contains("timed out"), "{error}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn client_errors_are_answers_not_retries() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(402).set_body_string(r#"{"error": {"code": "card_declined"}}"#))
        .expect(1)
        .mount(&server)
        .await;
    let reply = executor(&server, Duration::from_secs(5))
        .execute(&charge())
        .await
        .unwrap();
    assert_eq!(reply.status, 402);
    assert!(!reply.is_success());
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let settings = HttpSettings {
        base_delay: Duration::from_millis(1),
        ..HttpSettings::new(format!("http://{address}"))
    };
    let executor = HttpExecutor::new("test", settings, Auth::Bearer(SecretString::from("sk"))).unwrap();
    let error = executor.execute(&charge()).await.unwrap_err();
    assert_eq!(error.kind(), ProviderErrorKind::Unavailable);
    assert!(error.message().contains("could not be reached"), "{error}");
}

#[tokio::test]
async fn basic_auth_sends_the_key_as_user() {
    let server = MockServer::start().await;
    // "key_abc:x" in base64.
    Mock::given(header("Authorization", "Basic a2V5X2FiYzp4"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .expect(1)
        .mount(&server)
        .await;
    let executor = HttpExecutor::new(
        "maxio",
        HttpSettings::new(server.uri()),
        Auth::Basic {
            user: SecretString::from("key_abc"),
            password: SecretString::from("x"),
        },
    )
    .unwrap();
    let reply = executor
        .execute(&Call::new("read_subscription", Method::GET, "/subscriptions/1.json"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
}
