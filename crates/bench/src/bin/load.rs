//! `load --target URL --rpc RPC [--concurrency C | --rate R] [--seconds S]`
//!
//! A gRPC load driver with a real tonic client: closed loop (C calls in
//! flight, each sent as the last one answers) or open loop (R calls a
//! second on a fixed schedule, latency counted from when each call was due,
//! so a stalled server is not hidden by the driver waiting for it). Every
//! call that changes something carries a fresh `request_id`. Latencies go
//! into an HDR histogram; one JSON line is printed:
//! `{"rpc", "mode", "calls", "errors", "rps", "p50_us", "p99_us", "max_us"}`.
//!
//! `create` needs businesses `load-0 … load-{N-1}` provisioned with a card
//! (`--prepare N` does that, untimed, and exits).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use billing_proto::v1 as pb;
use billing_proto::v1::event_service_client::EventServiceClient;
use billing_proto::v1::invoice_service_client::InvoiceServiceClient;
use billing_proto::v1::payment_method_service_client::PaymentMethodServiceClient;
use billing_proto::v1::subscription_service_client::SubscriptionServiceClient;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Rpc {
    /// grpc.health.v1.Health/Check: the baseline.
    Health,
    /// CheckEntitlement of business `--business`, product `website`.
    Entitlement,
    /// CreateSubscription of `--offering` for the next prepared business.
    Create,
    /// ListSubscriptions of `--business`, first page.
    ListSubscriptions,
    /// ListInvoices of `--business`, first page.
    ListInvoices,
    /// ListEvents of `--business`, first page.
    ListEvents,
}

#[derive(Parser)]
struct Args {
    /// The server, e.g. http://127.0.0.1:50051.
    #[arg(long)]
    target: String,
    #[arg(long, value_enum, default_value = "health")]
    rpc: Rpc,
    /// Closed loop: calls in flight.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Open loop: calls per second (overrides --concurrency).
    #[arg(long)]
    rate: Option<f64>,
    /// How long to measure.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// At most this many calls (`create` uses one business each).
    #[arg(long)]
    calls: Option<u64>,
    /// HTTP/2 connections the calls share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[arg(long, default_value = "load-0")]
    business: String,
    #[arg(long, default_value = "pro-monthly")]
    offering: String,
    /// `create`: request ids are `RUN-N` (default: a fresh name).
    #[arg(long)]
    run: Option<String>,
    /// `create`: the first prepared business to use.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Provision businesses load-0 … load-{N-1} with a card, then exit.
    #[arg(long)]
    prepare: Option<u64>,
}

#[derive(Clone)]
struct Caller {
    channel: Channel,
    rpc: Rpc,
    business: String,
    offering: String,
    next_business: Arc<AtomicU64>,
    run: String,
}

impl Caller {
    async fn call(&self) -> anyhow::Result<()> {
        let channel = self.channel.clone();
        match self.rpc {
            Rpc::Health => {
                HealthClient::new(channel)
                    .check(HealthCheckRequest { service: String::new() })
                    .await?;
            }
            Rpc::Entitlement => {
                SubscriptionServiceClient::new(channel)
                    .check_entitlement(pb::CheckEntitlementRequest {
                        business_id: self.business.clone(),
                        product_code: "website".into(),
                    })
                    .await?;
            }
            Rpc::Create => {
                let n = self.next_business.fetch_add(1, Ordering::Relaxed);
                SubscriptionServiceClient::new(channel)
                    .create_subscription(pb::CreateSubscriptionRequest {
                        request_id: format!("{}-{n}", self.run),
                        business_id: format!("load-{n}"),
                        offering: Some(pb::create_subscription_request::Offering::OfferingCode(
                            self.offering.clone(),
                        )),
                        buyer_id: "owner".into(),
                        currency_code: "USD".into(),
                        ..Default::default()
                    })
                    .await?;
            }
            Rpc::ListSubscriptions => {
                SubscriptionServiceClient::new(channel)
                    .list_subscriptions(pb::ListSubscriptionsRequest {
                        business_id: self.business.clone(),
                        page_size: 20,
                        ..Default::default()
                    })
                    .await?;
            }
            Rpc::ListInvoices => {
                InvoiceServiceClient::new(channel)
                    .list_invoices(pb::ListInvoicesRequest {
                        business_id: self.business.clone(),
                        page_size: 20,
                        ..Default::default()
                    })
                    .await?;
            }
            Rpc::ListEvents => {
                EventServiceClient::new(channel)
                    .list_events(pb::ListEventsRequest {
                        business_id: self.business.clone(),
                        page_size: 20,
                        ..Default::default()
                    })
                    .await?;
            }
        }
        Ok(())
    }
}

/// What one loop measured.
struct Tally {
    latencies: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Tally {
            latencies: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            errors: 0,
            first_error: None,
        })
    }

    fn record(&mut self, outcome: anyhow::Result<()>, took: Duration) {
        if let Err(error) = outcome {
            self.errors += 1;
            self.first_error.get_or_insert_with(|| format!("{error:#}"));
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latencies.saturating_record(micros);
    }

    fn merge(&mut self, other: Tally) -> anyhow::Result<()> {
        self.latencies.add(&other.latencies)?;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(
            Endpoint::from_shared(args.target.clone())?
                .connect()
                .await
                .with_context(|| format!("connect to {}", args.target))?,
        );
    }
    if let Some(count) = args.prepare {
        return prepare(&channels, count).await;
    }
    let next_business = Arc::new(AtomicU64::new(args.first));
    let run = args
        .run
        .clone()
        .unwrap_or_else(|| format!("load-{}", uuid::Uuid::now_v7().simple()));
    let caller = |index: usize| Caller {
        channel: channels[index % channels.len()].clone(),
        rpc: args.rpc,
        business: args.business.clone(),
        offering: args.offering.clone(),
        next_business: next_business.clone(),
        run: run.clone(),
    };
    let duration = Duration::from_secs_f64(args.seconds);
    let limit = args.calls.unwrap_or(u64::MAX);
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mode = match args.rate {
        None => {
            for index in 0..args.concurrency.max(1) {
                let caller = caller(index);
                let issued = issued.clone();
                tasks.push(tokio::spawn(async move {
                    let mut tally = Tally::new()?;
                    while started.elapsed() < duration && issued.fetch_add(1, Ordering::Relaxed) < limit {
                        let sent = Instant::now();
                        let outcome = caller.call().await;
                        tally.record(outcome, sent.elapsed());
                    }
                    anyhow::Ok(tally)
                }));
            }
            format!("closed/{}", args.concurrency.max(1))
        }
        Some(rate) => {
            if rate <= 0.0 {
                bail!("--rate must be above zero");
            }
            let interval = Duration::from_secs_f64(1.0 / rate);
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
            let mut index = 0;
            while started.elapsed() < duration && issued.fetch_add(1, Ordering::Relaxed) < limit {
                let due = ticker.tick().await;
                let caller = caller(index);
                index += 1;
                let sender = sender.clone();
                tokio::spawn(async move {
                    let outcome = caller.call().await;
                    sender.send((outcome, due.elapsed())).ok();
                });
            }
            drop(sender);
            tasks.push(tokio::spawn(async move {
                let mut tally = Tally::new()?;
                while let Some((outcome, took)) = receiver.recv().await {
                    tally.record(outcome, took);
                }
                anyhow::Ok(tally)
            }));
            format!("open/{rate}")
        }
    };
    let mut tally = Tally::new()?;
    for task in tasks {
        tally.merge(task.await??)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let calls = tally.latencies.len();
    if let Some(error) = &tally.first_error {
        eprintln!("{} of {calls} calls failed; the first: {error}", tally.errors);
    }
    let line = serde_json::json!({
        "rpc": format!("{:?}", args.rpc),
        "mode": mode,
        "calls": calls,
        "errors": tally.errors,
        "seconds": elapsed,
        "rps": calls as f64 / elapsed,
        "p50_us": tally.latencies.value_at_quantile(0.50),
        "p99_us": tally.latencies.value_at_quantile(0.99),
        "max_us": tally.latencies.max(),
    });
    println!("{line}");
    Ok(())
}

/// Businesses `load-0 …` in directory `demo`, each with a good card.
async fn prepare(channels: &[Channel], count: u64) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    for (index, channel) in channels.iter().enumerate() {
        let channel = channel.clone();
        let step = channels.len() as u64;
        tasks.push(tokio::spawn(async move {
            let mut n = index as u64;
            while n < count {
                let business_id = format!("load-{n}");
                SubscriptionServiceClient::new(channel.clone())
                    .provision_business(pb::ProvisionBusinessRequest {
                        request_id: format!("prepare-{business_id}"),
                        business_id: business_id.clone(),
                        directory_id: "demo".into(),
                        buyer_id: "owner".into(),
                    })
                    .await?;
                PaymentMethodServiceClient::new(channel.clone())
                    .attach_payment_method(pb::AttachPaymentMethodRequest {
                        request_id: format!("prepare-card-{business_id}"),
                        business_id,
                        token: "pm_card_visa".into(),
                    })
                    .await?;
                n += step;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
