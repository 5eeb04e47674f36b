//! The entitlement cache's rules, from outside: a change is read back at
//! once on the server that made it; on Postgres a change through server A
//! reaches server B (its own process) within a second; and killing B's
//! listening connection never lets B answer from a stale cache for longer
//! than that bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use billing_proto::v1 as pb;
use billing_proto::v1::subscription_service_client::SubscriptionServiceClient;
use billing_tests::process::Billingd;
use billing_tests::{Backend, TestApp, attach_card, backend_tests, buy_offering, provision_business, spawn_manual_app};
use tonic::transport::Channel;

backend_tests!(a_change_is_read_back_at_once_on_the_server_that_made_it);

const START: &str = "2026-03-10T09:00:00Z";
/// How soon another replica must see a change.
const BOUND: Duration = Duration::from_secs(1);

async fn app_with_subscription(backend: Backend) -> (TestApp, String) {
    let app = spawn_manual_app(backend, START).await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let pro = buy_offering(&app, "biz-1", "pro-monthly")
        .await
        .unwrap()
        .subscription
        .unwrap();
    (app, pro.id)
}

/// Cancels at period end (`cancel`) or takes the cancellation back.
async fn toggle(app: &TestApp, subscription_id: &str, round: usize, cancel: bool) {
    let request_id = format!("round-{round}");
    if cancel {
        app.subscriptions()
            .cancel(pb::CancelRequest {
                request_id,
                subscription_id: subscription_id.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    } else {
        app.subscriptions()
            .reactivate(pb::ReactivateRequest {
                request_id,
                subscription_id: subscription_id.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

/// Whether `biz-1`'s website entitlement says it ends (canceled).
async fn ends(client: &mut SubscriptionServiceClient<Channel>) -> bool {
    let entitlement = client
        .check_entitlement(pb::CheckEntitlementRequest {
            business_id: "biz-1".into(),
            product_code: "website".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(entitlement.entitled, "{entitlement:?}");
    entitlement.expiration_time.is_some()
}

async fn a_change_is_read_back_at_once_on_the_server_that_made_it(backend: Backend) {
    let (app, id) = app_with_subscription(backend).await;
    let mut client = SubscriptionServiceClient::new(app.channel.clone());
    assert!(!ends(&mut client).await);
    for round in 0..20 {
        let cancel = round % 2 == 0;
        // Twice before: the second answer comes from memory.
        assert_eq!(ends(&mut client).await, !cancel, "round {round}, before");
        assert_eq!(ends(&mut client).await, !cancel, "round {round}, cached");
        toggle(&app, &id, round, cancel).await;
        assert_eq!(
            ends(&mut client).await,
            cancel,
            "round {round}: the change was not read back"
        );
    }
}

/// A second server of its own process on the same database, on the same
/// manual clock start.
async fn second_server(app: &TestApp) -> (Billingd, SubscriptionServiceClient<Channel>) {
    let b = Billingd::start(
        app.database_url(),
        &[
            ("BILLING__CLOCK__MODE", "manual"),
            ("BILLING__CLOCK__START_TIME", START),
        ],
    )
    .await;
    let client = SubscriptionServiceClient::new(b.channel().await);
    // Until its listener is up, B reads every check from the database.
    let started = Instant::now();
    while cache_gauges(&b).await.0 != 1 {
        assert!(started.elapsed() < Duration::from_secs(10), "B never followed commits");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (b, client)
}

/// How long until `client` answers `want`, failing past `limit`.
async fn seen_within(client: &mut SubscriptionServiceClient<Channel>, want: bool, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if ends(client).await == want {
            return started.elapsed();
        }
        let waited = started.elapsed();
        assert!(waited < limit, "still answering the old entitlement after {waited:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// B's entitlement-cache gauges from its `/metrics`.
async fn cache_gauges(b: &Billingd) -> (i64, i64) {
    let text = reqwest::get(b.http_url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let gauge = |name: &str| {
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}")) as i64
    };
    (
        gauge("billing_entitlement_cache_synced"),
        gauge("billing_entitlement_cache_businesses"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_server_is_seen_on_another_within_a_second() {
    let (app, id) = app_with_subscription(Backend::Postgres).await;
    let (b, mut on_b) = second_server(&app).await;
    let mut slowest = Duration::ZERO;
    for round in 0..10 {
        let cancel = round % 2 == 0;
        // B holds the business in memory before the change.
        assert_eq!(ends(&mut on_b).await, !cancel);
        assert_eq!(cache_gauges(&b).await, (1, 1), "B serves biz-1 from memory");
        toggle(&app, &id, round, cancel).await;
        slowest = slowest.max(seen_within(&mut on_b, cancel, BOUND).await);
    }
    eprintln!("slowest propagation to the other server: {slowest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_never_serves_stale_answers_past_the_bound() {
    let (app, id) = app_with_subscription(Backend::Postgres).await;
    let (b, mut on_b) = second_server(&app).await;
    for round in 0..4 {
        let cancel = round % 2 == 0;
        assert_eq!(ends(&mut on_b).await, !cancel);
        // Every listening connection on this database goes (B's included),
        // then the change: B must not answer from what it held before.
        let killed = app
            .count_in_database(
                "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                 AND (query LIKE 'LISTEN%' OR query LIKE '%entitlements listener%')",
            )
            .await;
        assert!(killed >= 1, "no listener found to kill");
        toggle(&app, &id, round, cancel).await;
        seen_within(&mut on_b, cancel, BOUND).await;
    }
    // B listens again and serves from memory once more.
    let started = Instant::now();
    loop {
        ends(&mut on_b).await;
        if cache_gauges(&b).await == (1, 1) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "B never resynced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    toggle(&app, &id, 99, true).await;
    seen_within(&mut on_b, true, BOUND).await;
}
