//! What a browser (or anything else) may post to a checkout page: arbitrary
//! bytes, content types, field names and values, with the page's own origin.
//! Every answer is a 4xx page, never a 5xx, and none of them answers the
//! session; the page's real form still works afterwards.
//!
//! The seed is printed; `CHECKOUT_FUZZ_SEED=<n>` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

use billing_proto::v1 as pb;
use billing_server::config::ClockMode;
use billing_tests::{Backend, attach_card, backend_tests, provision_business, spawn_app_with};
use reqwest::header::{CONTENT_TYPE, ORIGIN};

backend_tests!(arbitrary_posts_to_a_checkout_page_are_refused_cleanly);

const CASES: usize = 300;

/// A connection per request: a refused oversized body closes its
/// connection, which a pooled client would otherwise reuse.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// A body: random bytes, or a form with random, repeated, missing or
/// oversized fields.
fn body(rng: &mut fastrand::Rng) -> (String, Vec<u8>) {
    let content_type = match rng.u8(0..4) {
        0 => "application/x-www-form-urlencoded",
        1 => "multipart/form-data; boundary=x",
        2 => "application/json",
        _ => "text/plain",
    }
    .to_owned();
    let bytes = match rng.u8(0..3) {
        0 => (0..rng.usize(0..2048)).map(|_| rng.u8(..)).collect(),
        1 => {
            let names = ["decision", "csrf", "decision[]", "", "%", "csrf%00"];
            let values = ["accept", "reject", "", "%ZZ", "a%00b", "\u{1F600}"];
            let fields: Vec<String> = (0..rng.usize(0..6))
                .map(|_| {
                    let name = names[rng.usize(0..names.len())];
                    let value = if rng.u8(0..10) == 0 {
                        "x".repeat(rng.usize(1..40_000))
                    } else {
                        values[rng.usize(0..values.len())].to_owned()
                    };
                    format!("{name}={value}")
                })
                .collect();
            fields.join("&").into_bytes()
        }
        _ => {
            let mut text = b"decision=accept&csrf=".to_vec();
            text.extend((0..rng.usize(0..64)).map(|_| rng.u8(..)));
            text
        }
    };
    (content_type, bytes)
}

async fn arbitrary_posts_to_a_checkout_page_are_refused_cleanly(backend: Backend) {
    let seed = std::env::var("CHECKOUT_FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("CHECKOUT_FUZZ_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let app = spawn_app_with(backend, |settings| {
        settings.clock.mode = ClockMode::Manual;
        settings.clock.start_time = Some("2026-03-10T09:00:00Z".parse().unwrap());
        settings.checkout.allowed_return_hosts = vec!["app.example.com".into()];
    })
    .await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let opened = app
        .checkout()
        .create_checkout_session(pb::CreateCheckoutSessionRequest {
            business_id: "biz-1".into(),
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
    let client = client();
    for _ in 0..CASES {
        let (content_type, bytes) = body(&mut rng);
        let answer = client
            .post(&opened.url)
            .header(ORIGIN, app.http_base())
            .header(CONTENT_TYPE, content_type.as_str())
            .body(bytes.clone())
            .send()
            .await;
        let status = match answer {
            Ok(answer) => answer.status(),
            // Past the form limit the server answers 413 and closes the
            // connection while the client may still be sending.
            Err(_) if bytes.len() > billing_server::http::MAX_FORM_BYTES => continue,
            Err(error) => panic!("{error} for {content_type} {:?}", String::from_utf8_lossy(&bytes)),
        };
        assert!(
            status.is_client_error(),
            "{status} for {content_type} {:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
    // None of it answered the session; the page's own form still does.
    let session_id = opened.session.unwrap().id;
    let still = app
        .checkout()
        .get_checkout_session(pb::GetCheckoutSessionRequest {
            session_id: session_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap();
    assert_eq!(still.status(), pb::CheckoutSessionStatus::Open);
    billing_tests::page::accept(&app, &opened.url).await;
}
