//! `webhook-lag-bench --rate 500 --seconds 20`
//!
//! Outbox lag from outside: starts the release `billingd` on a fresh
//! Postgres database, registers a webhook endpoint pointing at a receiver in
//! this process, then drives a sustained `--rate` of changes (Cancel and
//! Reactivate of many businesses' subscriptions, open loop) over gRPC. Each
//! change publishes one event; the receiver measures the lag from the
//! event's time (taken inside the change's transaction) to its arrival.
//! Prints the lag's percentiles and, as the baseline measured in the same
//! run, the latency of the Cancel / Reactivate calls themselves: the lag as
//! a ratio to a change's own p99.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use billing_proto::v1 as pb;
use billing_proto::v1::event_service_client::EventServiceClient;
use billing_proto::v1::subscription_service_client::SubscriptionServiceClient;
use billing_storage::Backend;
use billing_storage::testing::TestDatabase;
use clap::Parser;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser)]
struct Args {
    /// Changes per second, sustained.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Businesses whose subscriptions the changes go round.
    #[arg(long, default_value_t = 400)]
    businesses: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let billingd = std::env::current_exe()?
        .parent()
        .context("the bench's directory")?
        .join("billingd");
    ensure!(
        billingd.exists(),
        "{} is missing: cargo build --release -p billing-server",
        billingd.display()
    );
    let database = TestDatabase::create(Backend::Postgres).await;
    let demo = tokio::process::Command::new(&billingd)
        .arg("load-demo")
        .env("BILLING__DATABASE__URL", database.url())
        .output()
        .await?;
    ensure!(demo.status.success(), "load-demo: {demo:?}");

    // The receiver: the lag of each arrival, in milliseconds.
    let lags: Arc<Mutex<Vec<f64>>> = Arc::default();
    let recorded = lags.clone();
    let receiver = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |body: axum::body::Bytes| {
            let recorded = recorded.clone();
            async move {
                let arrived = chrono::Utc::now();
                if let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body)
                    && let Some(time) = event["timestamp"].as_str()
                    && let Ok(time) = chrono::DateTime::parse_from_rfc3339(time)
                {
                    let lag = (arrived - time.with_timezone(&chrono::Utc))
                        .num_microseconds()
                        .unwrap_or(0);
                    recorded
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(lag as f64 / 1_000.0);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let (grpc_port, http_port) = (free_port()?, free_port()?);
    let mut server = tokio::process::Command::new(&billingd)
        .arg("serve")
        .env("BILLING__DATABASE__URL", database.url())
        .env("BILLING__SERVER__GRPC_ADDR", format!("127.0.0.1:{grpc_port}"))
        .env("BILLING__SERVER__HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("BILLING__SERVER__MAX_CONCURRENT_REQUESTS", "1024")
        .env("BILLING__TELEMETRY__LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut log = BufReader::new(server.stdout.take().context("its stdout")?).lines();
    while let Some(line) = log.next_line().await? {
        if line.contains("billingd serving") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc_port}"))?
        .connect()
        .await?;
    let subscriptions = SubscriptionServiceClient::new(channel.clone());

    // Businesses with their free package: the subscriptions to change.
    let mut targets = Vec::with_capacity(args.businesses);
    for n in 0..args.businesses {
        let provisioned = subscriptions
            .clone()
            .provision_business(pb::ProvisionBusinessRequest {
                request_id: format!("provision-{n}"),
                business_id: format!("biz-{n}"),
                directory_id: "demo".into(),
                buyer_id: "owner".into(),
            })
            .await?
            .into_inner();
        let free = provisioned
            .default_subscriptions
            .first()
            .context("a default subscription")?;
        targets.push(free.id.clone());
    }
    EventServiceClient::new(channel.clone())
        .create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
            request_id: "bench-hook".into(),
            url: hook_url,
            event_types: vec!["subscription.canceled".into(), "subscription.reactivated".into()],
            ..Default::default()
        })
        .await?;

    // Open loop: one change every 1/rate s, whatever the answers do. Each
    // subscription alternates Cancel, Reactivate, so every change is one
    // event.
    let total = u64::from(args.rate) * args.seconds;
    let every = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut calls = Vec::with_capacity(total as usize);
    for change in 0..total {
        ticker.tick().await;
        let index = (change as usize) % targets.len();
        let round = (change as usize) / targets.len();
        let subscription_id = targets[index].clone();
        let mut client = subscriptions.clone();
        let latencies = latencies.clone();
        calls.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answered = if round.is_multiple_of(2) {
                client
                    .cancel(pb::CancelRequest {
                        request_id: format!("cancel-{change}"),
                        subscription_id,
                        ..Default::default()
                    })
                    .await
                    .map(drop)
            } else {
                client
                    .reactivate(pb::ReactivateRequest {
                        request_id: format!("reactivate-{change}"),
                        subscription_id,
                        etag: String::new(),
                    })
                    .await
                    .map(drop)
            };
            latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(sent.elapsed().as_secs_f64() * 1_000.0);
            answered
        }));
    }
    let mut failed = 0;
    for call in calls {
        if !matches!(call.await, Ok(Ok(()))) {
            failed += 1;
        }
    }
    let driven = started.elapsed();
    let acknowledged = total - failed;
    // Wait for the stragglers.
    let waiting = Instant::now();
    while (lags.lock().unwrap_or_else(PoisonError::into_inner).len() as u64) < acknowledged
        && waiting.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().await.ok();

    let mut lag = lags.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let mut call = latencies.lock().unwrap_or_else(PoisonError::into_inner).clone();
    lag.sort_by(f64::total_cmp);
    call.sort_by(f64::total_cmp);
    println!(
        "{total} changes in {:.1} s ({:.0}/s), {failed} refused; {} events received",
        driven.as_secs_f64(),
        total as f64 / driven.as_secs_f64(),
        lag.len()
    );
    println!(
        "outbox lag ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        percentile(&lag, 50.0),
        percentile(&lag, 90.0),
        percentile(&lag, 99.0),
        lag.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "change latency ms (baseline): p50 {:.1}  p99 {:.1}",
        percentile(&call, 50.0),
        percentile(&call, 99.0)
    );
    println!(
        "lag p99 / change p99 = {:.2}",
        percentile(&lag, 99.0) / percentile(&call, 99.0)
    );
    ensure!(lag.len() as u64 >= acknowledged, "events were lost");
    Ok(())
}
