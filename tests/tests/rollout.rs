//! A rollout's stop, against the real `billingd` process on SQLite and
//! Postgres: SIGTERM turns readiness NOT_SERVING at once while liveness
//! stays SERVING, the server keeps serving through
//! `server.shutdown_delay_seconds`, a request in flight completes, the
//! listener closes, and the process exits 0 — each stage bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use billing_proto::v1 as pb;
use billing_storage::testing::TestDatabase;
use billing_tests::process::Billingd;
use billing_tests::{Backend, backend_tests, held_open_call};
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
