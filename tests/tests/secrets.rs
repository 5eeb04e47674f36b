//! Secrets never reach the log: one end-to-end run with every secret in
//! play — the JWT secret and bearer tokens, Stripe and Maxio keys and
//! webhook secrets, the database password, a checkout token, a card number
//! sent where a token belongs — logged as JSON at debug level, then a scan of
//! the whole log for each value.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, TEST_JWT_SECRET, assert_status, backend_tests, business_token, mint_token, mount_stripe_customer_and_card,
    provider_fixture, provision_business, spawn_jwt_app,
};
use tonic::Code;

backend_tests!(no_secret_reaches_the_debug_log);

const STRIPE_KEY: &str = "sk_test_secret_key_never_logged_51";
const STRIPE_WEBHOOK_SECRET: &str = "whsec_stripe_secret_never_logged";
const MAXIO_KEY: &str = "maxio-api-key-never-logged";
const MAXIO_WEBHOOK_SECRET: &str = "maxio-shared-key-never-logged";
const DATABASE_PASSWORD: &str = "db-password-never-logged";
const CARD_NUMBER: &str = "4242 4242 4242 4242";

/// Everything every test of this binary logs, as the server's JSON format
/// writes it, at debug level for every crate (the fake Stripe's own logs
/// excepted: it is not part of the service).
fn captured_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug,wiremock=off"))
            .with_writer(move || CaptureWriter(writer.clone()))
            .init();
        buffer
    })
    .clone()
}

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn no_secret_reaches_the_debug_log(backend: Backend) {
    let log = captured_log();
    let stripe = wiremock::MockServer::start().await;
    mount_stripe_customer_and_card(&stripe).await;
    let stripe_url = stripe.uri();
    let app = spawn_jwt_app(backend, |settings| {
        settings.providers.default = billing_domain::Provider::Stripe;
        settings.providers.stripe.api_key = Some(STRIPE_KEY.to_owned().into());
        settings.providers.stripe.webhook_secret = Some(STRIPE_WEBHOOK_SECRET.to_owned().into());
        settings.providers.stripe.base_url = stripe_url.clone();
        settings
            .providers
            .by_directory
            .insert("partner".into(), billing_domain::Provider::Maxio);
        settings.providers.maxio.api_key = Some(MAXIO_KEY.to_owned().into());
        settings.providers.maxio.webhook_secret = Some(MAXIO_WEBHOOK_SECRET.to_owned().into());
        settings.providers.maxio.base_url = Some(stripe_url);
        // Postgres here trusts local connections, so a password in the URL
        // is carried everywhere the URL goes and checked nowhere.
        let url = secrecy::ExposeSecret::expose_secret(&settings.database.url).to_owned();
        if let Some(rest) = url.strip_prefix("postgres://postgres@") {
            settings.database.url = format!("postgres://postgres:{DATABASE_PASSWORD}@{rest}").into();
        }
    })
    .await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    let business_bearer = business_token("biz-1");
    let business = app.as_caller(&business_bearer);

    // A card through Stripe (the API key goes out), and a card number where
    // a token belongs: refused, not echoed.
    business
        .payment_methods()
        .attach_payment_method(pb::AttachPaymentMethodRequest {
            request_id: "card".into(),
            business_id: "biz-1".into(),
            token: "pm_card_visa".into(),
        })
        .await
        .unwrap();
    let status = business
        .payment_methods()
        .attach_payment_method(pb::AttachPaymentMethodRequest {
            request_id: "pan".into(),
            business_id: "biz-1".into(),
            token: CARD_NUMBER.into(),
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "FIELD_INVALID");
    assert!(!status.message().contains("4242"), "{status:?}");

    // A checkout token: shown, opened, answered.
    let session = business
        .checkout()
        .create_checkout_session(pb::CreateCheckoutSessionRequest {
            request_id: "checkout".into(),
            business_id: "biz-1".into(),
            buyer_id: "owner".into(),
            kind: pb::CheckoutKind::NewSubscription.into(),
            offering_code: "pro-monthly".into(),
            currency_code: "USD".into(),
            return_url: "http://localhost:3000/done".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let page = reqwest::get(&session.url).await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    business
        .checkout()
        .complete_checkout(pb::CompleteCheckoutRequest {
            token: session.token.clone(),
            decision: pb::CheckoutDecision::Reject.into(),
        })
        .await
        .unwrap();

    // Tokens refused for every reason.
    let expired = mint_token(serde_json::json!({"sub": "x", "role": "service", "exp": 1}));
    let forged = billing_tests::mint_token_with(
        "not-the-secret-not-the-secret-000",
        serde_json::json!({"sub": "x", "role": "service"}),
    );
    for token in [&expired, &forged] {
        let status = app
            .as_caller(token)
            .catalog()
            .list_products(pb::ListProductsRequest::default())
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
    }

    // Signed webhooks from both providers.
    let client = reqwest::Client::new();
    let stripe_event = provider_fixture("stripe", "event_payment_intent_succeeded.json");
    let signature = billing_provider_stripe::webhook::sign(
        stripe_event.as_bytes(),
        STRIPE_WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
    );
    let answer = client
        .post(format!("{}/webhooks/stripe", app.http_base()))
        .header("stripe-signature", signature)
        .body(stripe_event)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    let maxio_event = provider_fixture("maxio", "webhook_state_change.txt");
    let answer = client
        .post(format!("{}/webhooks/maxio", app.http_base()))
        .header(
            billing_provider_maxio::webhook::SIGNATURE_HEADER,
            billing_provider_maxio::webhook::sign(maxio_event.as_bytes(), MAXIO_WEBHOOK_SECRET),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(maxio_event)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::OK);
    app.stop().await.unwrap();

    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains(r#""rpc.method":"AttachPaymentMethod""#),
        "the log holds the run"
    );
    assert!(text.contains(r#""level":"DEBUG""#), "the log is at debug level");
    let secrets = [
        ("JWT secret", TEST_JWT_SECRET.to_owned()),
        ("business bearer token", business_bearer),
        ("expired bearer token", expired),
        ("forged bearer token", forged),
        ("Stripe API key", STRIPE_KEY.to_owned()),
        ("Stripe webhook secret", STRIPE_WEBHOOK_SECRET.to_owned()),
        ("Maxio API key", MAXIO_KEY.to_owned()),
        ("Maxio webhook secret", MAXIO_WEBHOOK_SECRET.to_owned()),
        ("database password", DATABASE_PASSWORD.to_owned()),
        ("checkout token", session.token),
        ("card number", CARD_NUMBER.to_owned()),
        ("card number, digits only", CARD_NUMBER.replace(' ', "")),
    ];
    for (what, secret) in secrets {
        if let Some(at) = text.find(&secret) {
            let line_start = text[..at].rfind('\n').map_or(0, |index| index + 1);
            let line_end = text[at..].find('\n').map_or(text.len(), |index| at + index);
            panic!("the {what} is in the log:\n{}", &text[line_start..line_end]);
        }
    }
}
