//! The service's metrics: one OpenTelemetry meter provider per process,
//! read as Prometheus text on `GET /metrics` and, when an OTLP endpoint is
//! configured, pushed there too.
//!
//! | metric (Prometheus name) | labels |
//! |---|---|
//! | `rpc_server_call_duration_seconds` (histogram) | `rpc_service`, `rpc_method`, `rpc_grpc_status_code` |
//! | `billing_subscriptions` | `state`, `payment_status` |
//! | `billing_jobs_due`, `billing_jobs_leased`, `billing_jobs_failing` | |
//! | `billing_jobs_finished_total` | `outcome` = `succeeded` / `failed` |
//! | `billing_queue_pending`, `billing_queue_lag_seconds`, `billing_queue_dead` | `queue` = `webhook_inbox` / `provider_outbox` |
//! | `billing_webhooks_received_total` | `provider`, `outcome` |
//! | `billing_provider_calls_total`, `billing_provider_call_duration_seconds` | `provider`, `operation`, `outcome` |
//!
//! The gauges are sampled from the database every
//! `telemetry.metrics_sample_seconds` and again on every scrape.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, anyhow};
use billing_app::JobStats;
use billing_storage::{Gauges, Store};
use chrono::{DateTime, Utc};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, MeterProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use prometheus::{Encoder, TextEncoder};

use super::{DEFAULT_SERVICE_NAME, SCOPE};

/// The process's meter provider and the registry `/metrics` reads.
#[derive(Clone)]
pub struct MetricsHandle {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
}

static HANDLE: OnceLock<MetricsHandle> = OnceLock::new();

impl MetricsHandle {
    pub(super) fn shutdown(self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.provider.shutdown_with_timeout(timeout)
    }
}

/// Sets up the process's metrics, with an OTLP exporter when `endpoint` is
/// set, and makes them the global meter provider (which provider calls
/// count into). From [`super::init`], before anything asks for [`handle`].
pub(super) fn install(resource: Resource, endpoint: Option<&str>) -> anyhow::Result<MetricsHandle> {
    let built = build(resource, endpoint)?;
    HANDLE
        .set(built.clone())
        .map_err(|_| anyhow!("metrics were already set up"))?;
    opentelemetry::global::set_meter_provider(built.provider.clone());
    Ok(built)
}

/// The process's metrics; set up on first use (Prometheus only) when
/// [`super::init`] did not run, as in tests that build servers in process.
pub fn handle() -> anyhow::Result<&'static MetricsHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let built = build(
        Resource::builder().with_service_name(DEFAULT_SERVICE_NAME).build(),
        None,
    )?;
    if HANDLE.set(built.clone()).is_ok() {
        opentelemetry::global::set_meter_provider(built.provider);
    }
    HANDLE.get().context("metrics are not set up")
}

fn build(resource: Resource, endpoint: Option<&str>) -> anyhow::Result<MetricsHandle> {
    let registry = prometheus::Registry::new();
    let prometheus = opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .scope_info_enabled(false)
        .build()
        .context("Prometheus exporter")?;
    let mut provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(prometheus);
    if let Some(endpoint) = endpoint {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .context("OTLP metric exporter (OTEL_EXPORTER_OTLP_ENDPOINT)")?;
        provider = provider.with_reader(PeriodicReader::builder(exporter).build());
    }
    Ok(MetricsHandle {
        provider: provider.build(),
        registry,
    })
}

/// The instruments the server records into. Cloned per request (by the RPC
/// layer, the HTTP state): one shared allocation, not one reference count per
/// instrument, which profiled at a fifth of a JSON read's CPU.
#[derive(Clone)]
pub struct Metrics(Arc<Instruments>);

pub struct Instruments {
    registry: prometheus::Registry,
    rpc_duration: Histogram<f64>,
    jobs_finished: Counter<u64>,
    webhooks_received: Counter<u64>,
    subscriptions: Gauge<i64>,
    jobs_due: Gauge<i64>,
    jobs_leased: Gauge<i64>,
    jobs_failing: Gauge<i64>,
    queue_pending: Gauge<i64>,
    queue_dead: Gauge<i64>,
    queue_lag: Gauge<f64>,
    cache_businesses: Gauge<i64>,
    cache_bytes: Gauge<i64>,
    cache_synced: Gauge<i64>,
    /// Every `(state, payment_status)` reported so far: one that has no rows
    /// any more is reported as 0 rather than left at its last count.
    seen_states: Arc<Mutex<HashSet<(String, String)>>>,
}

impl std::ops::Deref for Metrics {
    type Target = Instruments;

    fn deref(&self) -> &Instruments {
        &self.0
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let handle = handle()?;
        let meter = handle.provider.meter(SCOPE);
        Ok(Metrics(Arc::new(Instruments {
            registry: handle.registry.clone(),
            rpc_duration: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("How long the server took to answer an RPC")
                .with_boundaries(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ])
                .build(),
            jobs_finished: meter
                .u64_counter("billing.jobs.finished")
                .with_description("Jobs worked (renewals, charges, expiries, webhook and outbox work) by outcome")
                .build(),
            webhooks_received: meter
                .u64_counter("billing.webhooks.received")
                .with_description("Provider webhook deliveries by how they were answered")
                .build(),
            subscriptions: meter
                .i64_gauge("billing.subscriptions")
                .with_description("Subscriptions by state and payment status")
                .build(),
            jobs_due: meter
                .i64_gauge("billing.jobs.due")
                .with_description("Jobs due and waiting for a worker")
                .build(),
            jobs_leased: meter
                .i64_gauge("billing.jobs.leased")
                .with_description("Jobs a worker holds under a lease")
                .build(),
            jobs_failing: meter
                .i64_gauge("billing.jobs.failing")
                .with_description(
                    "Jobs whose last run failed; retried at most an hour apart (OperationsService lists them)",
                )
                .build(),
            queue_dead: meter
                .i64_gauge("billing.queue.dead")
                .with_description("Webhook deliveries and provider operations that failed every attempt")
                .build(),
            queue_pending: meter
                .i64_gauge("billing.queue.pending")
                .with_description("Webhook deliveries and provider operations waiting to be processed")
                .build(),
            queue_lag: meter
                .f64_gauge("billing.queue.lag")
                .with_unit("s")
                .with_description("How long the oldest pending item of a queue has been due")
                .build(),
            cache_businesses: meter
                .i64_gauge("billing.entitlement_cache.businesses")
                .with_description("Businesses whose entitlements this replica serves from memory")
                .build(),
            cache_bytes: meter
                .i64_gauge("billing.entitlement_cache.size")
                .with_unit("By")
                .with_description(
                    "Memory the entitlement cache holds (estimated), within database.entitlement_cache_mib",
                )
                .build(),
            cache_synced: meter
                .i64_gauge("billing.entitlement_cache.synced")
                .with_description("1 while the cache follows every replica's commits; 0 while checks read the database")
                .build(),
            seen_states: Arc::default(),
        })))
    }

    /// One answered RPC. `code` is the gRPC status code.
    pub fn rpc(&self, service: String, method: String, code: i32, took: Duration) {
        self.rpc_duration.record(
            took.as_secs_f64(),
            &[
                KeyValue::new("rpc.system", "grpc"),
                KeyValue::new("rpc.service", service),
                KeyValue::new("rpc.method", method),
                KeyValue::new("rpc.grpc.status_code", i64::from(code)),
            ],
        );
    }

    /// One round of the job worker.
    pub fn jobs(&self, stats: &JobStats) {
        for (outcome, count) in [("succeeded", stats.succeeded), ("failed", stats.failed)] {
            if count > 0 {
                self.jobs_finished
                    .add(count as u64, &[KeyValue::new("outcome", outcome)]);
            }
        }
    }

    /// One webhook delivery, by the HTTP status it was answered with.
    pub fn webhook(&self, provider: &'static str, status: u16) {
        let outcome = match status {
            200..=299 => "accepted",
            400 | 413 | 415 => "invalid",
            401 => "unverified",
            404 => "no_endpoint",
            503 => "unavailable",
            _ => "error",
        };
        self.webhooks_received.add(
            1,
            &[KeyValue::new("provider", provider), KeyValue::new("outcome", outcome)],
        );
    }

    /// Records a sample of the database's gauges taken at `now`.
    pub fn record(&self, gauges: &Gauges, now: DateTime<Utc>) {
        let mut seen = self
            .seen_states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let current: HashSet<(String, String)> = gauges
            .subscriptions
            .iter()
            .map(|(state, payment, _)| (state.clone(), payment.clone()))
            .collect();
        for (state, payment) in seen.difference(&current) {
            self.subscriptions.record(0, &state_labels(state, payment));
        }
        for (state, payment, count) in &gauges.subscriptions {
            self.subscriptions.record(*count, &state_labels(state, payment));
        }
        seen.extend(current);
        self.jobs_due.record(gauges.jobs_due, &[]);
        self.jobs_leased.record(gauges.jobs_leased, &[]);
        self.jobs_failing.record(gauges.jobs_failing, &[]);
        for queue in &gauges.queues {
            let labels = [KeyValue::new("queue", queue.queue)];
            self.queue_pending.record(queue.pending, &labels);
            self.queue_dead.record(queue.dead, &labels);
            let lag = queue
                .oldest_due
                .map_or(0.0, |due| (now - due).num_milliseconds().max(0) as f64 / 1000.0);
            self.queue_lag.record(lag, &labels);
        }
    }

    /// Samples the database's gauges (a failure leaves the last sample) and
    /// this replica's entitlement cache.
    pub async fn sample(&self, store: &Store, now: DateTime<Utc>) {
        let cache = store.entitlement_cache_usage();
        self.cache_businesses
            .record(i64::try_from(cache.businesses).unwrap_or(i64::MAX), &[]);
        self.cache_bytes
            .record(i64::try_from(cache.bytes).unwrap_or(i64::MAX), &[]);
        self.cache_synced.record(i64::from(cache.synced), &[]);
        match store.gauges(now).await {
            Ok(gauges) => self.record(&gauges, now),
            Err(error) => tracing::debug!(error = %error, "metrics sample failed; keeping the last one"),
        }
    }

    /// Everything, in the Prometheus text format.
    pub fn prometheus_text(&self) -> String {
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            tracing::warn!(error = %error, "could not encode metrics");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

fn state_labels(state: &str, payment_status: &str) -> [KeyValue; 2] {
    [
        KeyValue::new("state", state.to_owned()),
        KeyValue::new("payment_status", payment_status.to_owned()),
    ]
}
