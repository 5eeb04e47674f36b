//! A rollout's stop, against the real `billingd` process on SQLite and
//! Postgres: SIGTERM turns readiness NOT_SERVING at once while liveness
//! stays SERVING, the server keeps serving through
//! `server.shutdown_delay_seconds`, a request in flight completes, the
//! listener closes, and the process exits 0 — each stage bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use billing_proto::v1 as pb;
use billing_storage::testing::TestDatabase;
use billing_tests::{Backend, backend_tests, billingd, held_open_call};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_stream::StreamExt;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

backend_tests!(sigterm_drains_in_bounded_stages_and_exits_zero);

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
    let (grpc_port, http_port) = (free_port(), free_port());
    let scratch = tempfile::tempdir().unwrap();
    let mut server = tokio::process::Command::new(billingd())
        .arg("serve")
        .current_dir(scratch.path())
        .env_clear()
        .env("BILLING__DATABASE__URL", database.url())
        .env("BILLING__SERVER__GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
        .env("BILLING__SERVER__HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("BILLING__SERVER__SHUTDOWN_DELAY_SECONDS", "1")
        .env("BILLING__SERVER__SHUTDOWN_GRACE_SECONDS", "10")
        .env("BILLING__TELEMETRY__LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Ready when it says so (its log), then when health says so.
    let mut log = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut early = Vec::new();
    loop {
        let line = log.next_line().await.unwrap();
        let Some(line) = line else {
            panic!("billingd exited before serving:\n{}", early.join("\n"));
        };
        if line.contains("billingd serving") {
            break;
        }
        early.push(line);
    }
    let log_task = tokio::spawn(async move {
        let mut lines = Vec::new();
        while let Ok(Some(line)) = log.next_line().await {
            lines.push(line);
        }
        lines
    });
    let channel = Endpoint::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut readiness = HealthClient::new(channel.clone())
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    while readiness.next().await.unwrap().unwrap().status != ServingStatus::Serving as i32 {}
    assert_eq!(status_of(&channel, "liveness").await, ServingStatus::Serving as i32);

    // A request in flight: its headers are in, its message is not.
    let (body, answer) = held_open_call(&channel, "/billing.v1.CatalogService/ListProducts");
    let pid = server.id().unwrap().to_string();
    let terminated = Instant::now();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );

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

    let exit = tokio::time::timeout(Duration::from_secs(20), server.wait())
        .await
        .expect("billingd exits within the grace period")
        .unwrap();
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
    let lines = log_task.await.unwrap().join("\n");
    for stage in ["reporting NOT_SERVING", "refusing new connections", "\"stopped\""] {
        assert!(lines.contains(stage), "no {stage:?} in the log:\n{lines}");
    }
}
