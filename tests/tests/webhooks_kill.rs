//! Webhooks from the real `billingd` on Postgres: sent as soon as the
//! change commits (a NOTIFY wakes the worker, not its next round), and,
//! when the process is killed (SIGKILL) while a receiver holds a delivery,
//! sent again after a restart (at least once) and recorded DELIVERED.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_proto::v1 as pb;
use billing_proto::v1::event_service_client::EventServiceClient;
use billing_storage::Backend;
use billing_storage::testing::TestDatabase;
use billing_tests::process::{Billingd, load_demo, provision_over};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

/// Holds the first request for three seconds (the sender is killed
/// meanwhile), answers the rest at once; remembers every `webhook-id`.
#[derive(Clone, Default)]
struct SlowFirst {
    calls: Arc<AtomicUsize>,
    ids: Arc<Mutex<Vec<String>>>,
}

impl Respond for SlowFirst {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let id = request.headers["webhook-id"].to_str().unwrap().to_owned();
        self.ids.lock().unwrap().push(id);
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return ResponseTemplate::new(200).set_delay(Duration::from_secs(3));
        }
        ResponseTemplate::new(200)
    }
}

async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_by_a_crash_is_delivered_after_the_restart() {
    let database = TestDatabase::create(Backend::Postgres).await;
    load_demo(database.url()).await;
    let receiver = SlowFirst::default();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(receiver.clone())
        .mount(&server)
        .await;
    let env = [("BILLING__JOBS__LEASE_SECONDS", "3")];

    let first = Billingd::start(database.url(), &env).await;
    let channel = first.channel().await;
    let endpoint = EventServiceClient::new(channel.clone())
        .create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
            request_id: "hook".into(),
            url: format!("{}/hooks", server.uri()),
            event_types: vec!["subscription.started".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    // The business's free package starts: one event to deliver.
    provision_over(&channel, "biz-1").await;
    wait_until(
        "the first attempt reaches the receiver",
        Duration::from_secs(10),
        || receiver.calls.load(Ordering::SeqCst) >= 1,
    )
    .await;
    first.kill().await;

    let second = Billingd::start(database.url(), &env).await;
    // The dead worker's lease runs out, then the delivery is sent again.
    wait_until("the event is delivered again", Duration::from_secs(60), || {
        receiver.calls.load(Ordering::SeqCst) >= 2
    })
    .await;
    let ids = receiver.ids.lock().unwrap().clone();
    assert_eq!(ids[0], ids[1], "the same event, the same webhook-id");
    let mut events = EventServiceClient::new(second.channel().await);
    let start = Instant::now();
    loop {
        let delivered = events
            .list_deliveries(pb::ListDeliveriesRequest {
                endpoint_id: endpoint.id.clone(),
                status: pb::DeliveryStatus::Delivered.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .deliveries;
        if delivered.len() == 1 {
            assert_eq!(delivered[0].event_id, ids[0]);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "recorded DELIVERED");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_sends_its_webhooks_at_once_not_at_the_next_round() {
    let database = TestDatabase::create(Backend::Postgres).await;
    load_demo(database.url()).await;
    let receiver = SlowFirst::default();
    receiver.calls.store(1, Ordering::SeqCst); // no slow first answer here
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks"))
        .respond_with(receiver.clone())
        .mount(&server)
        .await;
    // Rounds a minute apart: only the commit's NOTIFY can be quick.
    let billingd = Billingd::start(database.url(), &[("BILLING__JOBS__POLL_INTERVAL_SECONDS", "60")]).await;
    let channel = billingd.channel().await;
    EventServiceClient::new(channel.clone())
        .create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
            request_id: "hook".into(),
            url: format!("{}/hooks", server.uri()),
            event_types: vec!["subscription.started".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    // Let the worker's first round pass, so the next is a minute away.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let committed = Instant::now();
    provision_over(&channel, "biz-1").await;
    wait_until("the webhook is sent", Duration::from_secs(5), || {
        !receiver.ids.lock().unwrap().is_empty()
    })
    .await;
    assert!(committed.elapsed() < Duration::from_secs(5));
    billingd.terminate();
}
