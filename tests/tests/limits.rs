//! Limits, end to end on SQLite and Postgres: oversized messages, fields and
//! lists are refused with their own reasons and write nothing; a slow client
//! cannot hold a request (gRPC) or a connection (HTTP) open past its
//! deadline; past `server.max_concurrent_requests` calls are shed; and the
//! server stays healthy after each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use billing_proto::v1 as pb;
use billing_tests::{
    Answer, Backend, BodySender, TestApp, assert_status, attach_card, backend_tests, buy_offering, held_open_call,
    provision_business, spawn_app_with, violated_fields,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

backend_tests!(
    oversized_messages_fields_and_lists_are_refused_and_write_nothing,
    a_client_that_holds_its_request_open_meets_the_deadline,
    calls_beyond_the_concurrency_cap_are_shed_not_queued,
    a_client_that_goes_away_mid_request_frees_its_slot,
    the_http_side_bounds_slow_clients_and_large_bodies,
);

async fn app_with_a_subscription(
    backend: Backend,
    configure: impl FnOnce(&mut billing_tests::Settings),
) -> (TestApp, String) {
    let app = spawn_app_with(backend, configure).await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let bought = buy_offering(&app, "biz-1", "pro-monthly").await.unwrap();
    (app, bought.subscription.unwrap().id)
}

async fn assert_healthy(app: &TestApp) {
    app.assert_serving().await;
    app.catalog()
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("an ordinary call still works");
}

async fn oversized_messages_fields_and_lists_are_refused_and_write_nothing(backend: Backend) {
    let (app, subscription_id) = app_with_a_subscription(backend, |_| {}).await;
    let cancel = |request_id: String, reason: String| pb::CancelRequest {
        request_id,
        subscription_id: subscription_id.clone(),
        reason,
        ..Default::default()
    };
    // Over the 1 MiB message cap: a 2 MiB reason, and a 1 MiB request id.
    for request in [
        cancel("big-reason".into(), "x".repeat(2 * 1024 * 1024)),
        cancel("k".repeat(1024 * 1024), String::new()),
    ] {
        let status = app.subscriptions().cancel(request).await.unwrap_err();
        assert_status(&status, Code::ResourceExhausted, "MESSAGE_TOO_LARGE");
    }
    // Under the cap but over a field's limit.
    let status = app
        .subscriptions()
        .cancel(cancel("long-reason".into(), "x".repeat(300 * 1024)))
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "FIELD_TOO_LONG");
    assert_eq!(violated_fields(&status), ["reason"]);
    let status = app
        .subscriptions()
        .cancel(cancel("i".repeat(256), String::new()))
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "FIELD_TOO_LONG");
    assert_eq!(violated_fields(&status), ["request_id"]);
    // 10 000 components.
    let status = app
        .subscriptions()
        .update_components(pb::UpdateComponentsRequest {
            request_id: "many".into(),
            subscription_id: subscription_id.clone(),
            components: (0..10_000)
                .map(|index| pb::ComponentQuantity {
                    component_code: format!("c{index}"),
                    quantity: 1,
                })
                .collect(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "TOO_MANY_ITEMS");
    assert_eq!(violated_fields(&status), ["components"]);

    // Nothing was canceled or changed.
    let subscription = billing_tests::get_subscription(&app, &subscription_id).await;
    assert_eq!(subscription.state(), pb::SubscriptionState::Purchased);
    let history = app
        .subscriptions()
        .list_subscription_history(pb::ListSubscriptionHistoryRequest {
            subscription_id: subscription_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(
        history.iter().all(|entry| !entry.action.contains("cancel")),
        "{history:?}"
    );
    assert_healthy(&app).await;
}

async fn a_client_that_holds_its_request_open_meets_the_deadline(backend: Backend) {
    let (app, _) = app_with_a_subscription(backend, |settings| {
        settings.server.request_timeout_seconds = Duration::from_secs(1);
    })
    .await;
    let (_sender, answer) = held_open_call(&app.channel, "/billing.v1.SubscriptionService/ListSubscriptions");
    let (status, waited) = tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .unwrap()
        .unwrap();
    assert_status(&status, Code::DeadlineExceeded, "DEADLINE_EXCEEDED");
    assert!(waited >= Duration::from_millis(900), "answered after {waited:?}");
    // The client's own, shorter deadline wins over the server's.
    let mut request = tonic::Request::new(pb::ListProductsRequest::default());
    request.set_timeout(Duration::from_secs(5));
    app.catalog().list_products(request).await.unwrap();
    assert_healthy(&app).await;
}

/// With `server.max_concurrent_requests = 1`: a held call that has the only
/// slot, proved by a probe that was shed (returned with it). The held call
/// takes the slot once the server has its headers; until then a probe may
/// get through, or take the slot first and make the held call the one shed:
/// then another is held.
async fn hold_the_only_slot(app: &TestApp) -> (BodySender, Answer, tonic::Status) {
    let (mut sender, mut answer) = held_open_call(&app.channel, "/billing.v1.CatalogService/ListProducts");
    for _ in 0..500 {
        if answer.is_finished() {
            (sender, answer) = held_open_call(&app.channel, "/billing.v1.CatalogService/ListProducts");
        }
        match app.catalog().list_products(pb::ListProductsRequest::default()).await {
            Ok(_) => tokio::task::yield_now().await,
            Err(status) => return (sender, answer, status),
        }
    }
    panic!("a call beyond the cap was never shed");
}

async fn calls_beyond_the_concurrency_cap_are_shed_not_queued(backend: Backend) {
    let (app, _) = app_with_a_subscription(backend, |settings| {
        settings.server.max_concurrent_requests = 1;
    })
    .await;
    let (sender, answer, status) = hold_the_only_slot(&app).await;
    assert_status(&status, Code::Unavailable, "SERVER_OVERLOADED");
    // Health is never shed.
    app.assert_serving().await;
    // The held call ends with an (empty, refused) message; its permit returns.
    drop(sender);
    let (ended, _) = tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(ended.code(), Code::Unavailable, "{ended:?}");
    assert_healthy(&app).await;
}

async fn a_client_that_goes_away_mid_request_frees_its_slot(backend: Backend) {
    let (app, _) = app_with_a_subscription(backend, |settings| {
        settings.server.max_concurrent_requests = 1;
    })
    .await;
    // The client holds the only slot, then vanishes: its stream is reset
    // while the server waits for its message.
    let (sender, answer, _) = hold_the_only_slot(&app).await;
    answer.abort();
    drop(sender);
    // The slot comes back: calls succeed again, none waits for a deadline.
    let started = Instant::now();
    let mut served = false;
    for _ in 0..500 {
        if app
            .catalog()
            .list_products(pb::ListProductsRequest::default())
            .await
            .is_ok()
        {
            served = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(served, "the slot of the client that went away never came back");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_healthy(&app).await;
}

async fn the_http_side_bounds_slow_clients_and_large_bodies(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.server.http_header_timeout_seconds = Duration::from_secs(1);
        settings.providers.stripe.webhook_secret = Some("whsec_limits".to_owned().into());
        settings.providers.stripe.api_key = Some("sk_test_limits".to_owned().into());
    })
    .await;
    // Headers started, never finished: the connection is closed.
    let mut slow = tokio::net::TcpStream::connect(app.http_addr).await.unwrap();
    slow.write_all(b"GET /checkout/abc HTTP/1.1\r\nHost: billing\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer))
        .await
        .expect("the server closed the slow connection")
        .ok();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A body refused early is never read, so the server closes that
    // connection: no client may reuse it.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let webhook = client
        .post(format!("{}/webhooks/stripe", app.http_base()))
        .body(vec![b'x'; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let form = client
        .post(format!("{}/checkout/abc", app.http_base()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("decision=accept&nonce={}", "n".repeat(20 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    // Still serving, both sides.
    let page = client
        .get(format!("{}/checkout/abc", app.http_base()))
        .send()
        .await
        .unwrap();
    assert!(page.status().is_client_error(), "{}", page.status());
    assert_healthy(&app).await;
}
