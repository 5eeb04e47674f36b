//! A rollout's stop, against the real `billingd` process on SQLite and
//! Postgres: SIGTERM turns readiness NOT_SERVING at once while liveness
//! stays SERVING, the server keeps serving through
//! `server.shutdown_delay_seconds`, a request in flight completes, the
//! listener closes, and the process exits 0 — each stage bounded. And on
//! Postgres, the jobs a stopping worker had claimed but not started are
//! taken by another process at once, not when their lease runs out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use billing_domain::ids::SubscriptionId;
use billing_proto::v1 as pb;
use billing_storage::testing::TestDatabase;
use billing_storage::{Store, StoreOptions};
use billing_tests::process::Billingd;
use billing_tests::{
    Backend, attach_card, backend_tests, buy_offering, held_open_call, provision_business, spawn_manual_app,
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

backend_tests!(sigterm_drains_in_bounded_stages_and_exits_zero);

async fn status_of(channel: &Channel, service: &str) -> i32 {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

async fn sigterm_drains_in_bounded_stages_and_exits_zero(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let server = Billingd::start(
        database.url(),
        &[
            ("BILLING__SERVER__SHUTDOWN_DELAY_SECONDS", "1"),
            ("BILLING__SERVER__SHUTDOWN_GRACE_SECONDS", "10"),
        ],
    )
    .await;
    let grpc_port = server.grpc_port;
    let channel = server.channel().await;
    let mut readiness = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    while readiness.next().await.unwrap().unwrap().status != ServingStatus::Serving as i32 {}
    assert_eq!(status_of(&channel, "liveness").await, ServingStatus::Serving as i32);

    // A request in flight: its headers are in, its message is not.
    let (body, answer) = held_open_call(&channel, "/billing.v1.CatalogService/ListProducts");
    let terminated = Instant::now();
    server.terminate();

    // Readiness turns NOT_SERVING at once; liveness does not.
    while readiness.next().await.unwrap().unwrap().status != ServingStatus::NotServing as i32 {}
    // A watcher that saw NOT_SERVING goes away; an open Watch stream would be
    // an in-flight call the server waits for, up to the grace period.
    drop(readiness);
    assert_eq!(status_of(&channel, "liveness").await, ServingStatus::Serving as i32);
    // Still serving during the drain delay.
    billing_proto::v1::catalog_service_client::CatalogServiceClient::new(channel.clone())
        .list_products(pb::ListProductsRequest::default())
        .await
        .expect("served during the drain delay");

    // The request in flight completes.
    body.send(Ok(http_body::Frame::data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]))))
        .await
        .unwrap();
    drop(body);
    let (status, _) = answer.await.unwrap();
    assert_eq!(status.code(), tonic::Code::Ok, "{status:?}");

    let (exit, log) = server.wait(Duration::from_secs(20)).await;
    assert_eq!(exit.code(), Some(0));
    let stopped_after = terminated.elapsed();
    assert!(
        stopped_after >= Duration::from_millis(900) && stopped_after < Duration::from_secs(8),
        "stopped after {stopped_after:?}: before the drain delay, or waiting on something"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", grpc_port)).is_err(),
        "the listener is closed"
    );
    let lines = log.join("\n");
    for stage in ["reporting NOT_SERVING", "refusing new connections", "\"stopped\""] {
        assert!(lines.contains(stage), "no {stage:?} in the log:\n{lines}");
    }
}

/// Waits (polling, at most `within`) until `done` holds for a sample of the
/// jobs table: (due and free, leased).
async fn until_jobs(store: &Store, within: Duration, done: impl Fn(i64, i64) -> bool) -> (i64, i64) {
    let deadline = Instant::now() + within;
    loop {
        let sample = store.gauges(chrono::Utc::now()).await.unwrap();
        let jobs = (sample.jobs_due, sample.jobs_leased);
        if done(jobs.0, jobs.1) || Instant::now() > deadline {
            return jobs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_a_stopping_process_never_started_are_taken_by_another_at_once() {
    // Three subscriptions bought in January; their renewals are long due
    // on the wall clock the processes run on. The manual clock keeps this
    // in-process server from working them.
    let app = spawn_manual_app(Backend::Postgres, "2026-01-01T00:00:00Z").await;
    app.load_demo_catalog().await;
    let mut ids = Vec::new();
    for business in ["biz-1", "biz-2", "biz-3"] {
        provision_business(&app, business).await;
        attach_card(&app, business, "pm_card_visa").await;
        let bought = buy_offering(&app, business, "pro-monthly").await.unwrap();
        ids.push(SubscriptionId::parse(&bought.subscription.unwrap().id).unwrap());
    }
    let store = Store::connect(&StoreOptions::new(app.database_url())).await.unwrap();
    // Due one after another, the first earliest.
    let first_due = chrono::Utc::now() - chrono::Duration::days(30);
    for (offset, id) in ids.iter().enumerate() {
        let due = first_due + chrono::Duration::seconds(offset as i64);
        store.jobs().schedule(id, Some(due)).await.unwrap();
    }
    // The first job will wait on its subscription's row, held here.
    let holder = store.begin().await.unwrap();
    holder
        .subscriptions()
        .get_subscription_for_update(&ids[0])
        .await
        .unwrap();

    let workers = [("BILLING__JOBS__POLL_INTERVAL_SECONDS", "1")];
    let first = Billingd::start(app.database_url(), &workers).await;
    assert_eq!(
        until_jobs(&store, Duration::from_secs(10), |_, leased| leased == 3).await,
        (0, 3),
        "the first process claims all three and starts on the first"
    );
    first.terminate();
    // The job in hand may finish; the other two go back.
    drop(holder);
    let (exit, _) = first.wait(Duration::from_secs(20)).await;
    assert_eq!(exit.code(), Some(0));
    let (due, leased) = store
        .gauges(chrono::Utc::now())
        .await
        .map(|sample| (sample.jobs_due, sample.jobs_leased))
        .unwrap();
    assert_eq!(leased, 0, "nothing stays leased to a process that is gone");
    assert!(due >= 2, "the two unstarted jobs are due again: {due}");

    // A second process works them at once, though the lease was 5 minutes.
    let taken = Instant::now();
    let second = Billingd::start(app.database_url(), &workers).await;
    assert_eq!(
        until_jobs(&store, Duration::from_secs(20), |due, leased| due == 0 && leased == 0).await,
        (0, 0),
        "the second process caught every renewal up"
    );
    assert!(taken.elapsed() < Duration::from_secs(20));
    second.terminate();
    let (exit, _) = second.wait(Duration::from_secs(20)).await;
    assert_eq!(exit.code(), Some(0));
}
