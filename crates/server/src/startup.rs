//! Building and running the server on an already-bound listener, so tests can
//! bind port 0 and production binds the configured address the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use billing_app::charging::Charger;
use billing_app::webhooks::AllowedHosts;
use billing_app::{
    Access, Billing, Catalog, Checkout, CheckoutSettings, Clock, Events, Inbox, JobRunner, ManualClock, Operations,
    Providers, Subscriptions, SystemClock, TestClock, Webhooks,
};
use billing_proto::v1::catalog_service_server::CatalogServiceServer;
use billing_proto::v1::checkout_service_server::CheckoutServiceServer;
use billing_proto::v1::event_service_server::EventServiceServer;
use billing_proto::v1::invoice_service_server::InvoiceServiceServer;
use billing_proto::v1::operations_service_server::OperationsServiceServer;
use billing_proto::v1::payment_method_service_server::PaymentMethodServiceServer;
use billing_proto::v1::subscription_service_server::SubscriptionServiceServer;
use billing_proto::v1::test_clock_service_server::TestClockServiceServer;
use billing_provider_api::http::HttpSettings;
use billing_provider_api::{PaymentProvider, SubscriptionEngine};
use billing_provider_local::LocalProvider;
use billing_provider_maxio::MaxioProvider;
use billing_provider_stripe::StripeProvider;
use billing_storage::{Store, StoreOptions};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tower::Layer;

use crate::auth::Authenticator;
use crate::config::{ClockMode, DatabaseSettings, ProviderSettings, Settings};
use crate::gate::{GateLayer, GateSettings};
use crate::grpc::catalog::CatalogGrpc;
use crate::grpc::checkout::CheckoutGrpc;
use crate::grpc::event::EventGrpc;
use crate::grpc::invoice::InvoiceGrpc;
use crate::grpc::operations::OperationsGrpc;
use crate::grpc::payment_method::PaymentMethodGrpc;
use crate::grpc::subscription::SubscriptionGrpc;
use crate::grpc::test_clock::TestClockGrpc;
use crate::http::rest::Rpcs;
use crate::http::{HttpLimits, HttpShared, HttpState, WebhookSecrets};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::rpc::RpcLayer;
use crate::webhook_sender::HttpWebhookSender;
use crate::{health, shutdown};

/// The service's clock: wall time, or the manual clock tests move.
#[derive(Clone, Debug)]
pub enum ClockHandle {
    System(Arc<SystemClock>),
    Manual(Arc<ManualClock>),
}

impl ClockHandle {
    pub fn clock(&self) -> Arc<dyn Clock> {
        match self {
            ClockHandle::System(clock) => clock.clone(),
            ClockHandle::Manual(clock) => clock.clone(),
        }
    }
}

pub struct Application {
    settings: Settings,
    store: Store,
    metrics: Metrics,
    clock: ClockHandle,
    grpc_listener: TcpListener,
    grpc_addr: SocketAddr,
    http_listener: TcpListener,
    http_addr: SocketAddr,
}

impl Application {
    /// Connects to the database (and migrates it, unless switched off).
    pub async fn build(
        settings: Settings,
        grpc_listener: TcpListener,
        http_listener: TcpListener,
    ) -> anyhow::Result<Self> {
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;
        // First: provider calls count into the meter provider this sets up.
        let metrics = Metrics::new().context("metrics")?;
        let store = connect_store(&settings.database).await?;
        let clock = build_clock(&settings);
        Ok(Application {
            settings,
            store,
            metrics,
            clock,
            grpc_listener,
            grpc_addr,
            http_listener,
            http_addr,
        })
    }

    /// The address the HTTP side is served on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address gRPC is served on (the real port when bound to port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Serves until `shutdown` is cancelled, then stops in the bounded
    /// stages of [`crate::shutdown`].
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            settings,
            store,
            metrics,
            clock,
            grpc_listener,
            grpc_addr,
            http_listener,
            http_addr,
        } = self;

        let (reporter, health_service) = tonic_health::server::health_reporter();
        health::set_all(&reporter, ServingStatus::NotServing).await;
        // Liveness: SERVING while the process works, whatever the database
        // does, so an outage does not restart every pod.
        reporter
            .set_service_status(health::LIVENESS, ServingStatus::Serving)
            .await;
        let stop_accepting =
            shutdown::stop_accepting_after(&shutdown, reporter.clone(), settings.server.shutdown_delay_seconds);
        let monitor = tokio::spawn(health::monitor(
            store.clone(),
            reporter.clone(),
            settings.server.health_check_interval_seconds,
            shutdown.clone(),
        ));
        let (wake_watchers, event_wakeups) = tokio::sync::watch::channel(0_u64);
        let listener = tokio::spawn(crate::grpc::event::listen_for_events(
            store.clone(),
            wake_watchers,
            shutdown.clone(),
        ));
        let cache_follower = tokio::spawn({
            let store = store.clone();
            let shutdown = shutdown.clone();
            async move { store.keep_entitlements_fresh(shutdown.cancelled()).await }
        });
        let sampler = tokio::spawn(sample_metrics(
            metrics.clone(),
            store.clone(),
            clock.clock(),
            settings.telemetry.metrics_sample_seconds,
            shutdown.clone(),
        ));

        let manual_clock = match &clock {
            ClockHandle::Manual(manual) => Some(manual.clone()),
            ClockHandle::System(_) => None,
        };
        let reflection_v1 = crate::reflection::builder(manual_clock.is_some())
            .build_v1()
            .context("build reflection v1")?;
        let reflection_v1alpha = crate::reflection::builder(manual_clock.is_some())
            .build_v1alpha()
            .context("build reflection v1alpha")?;
        let access = Access::new(store.clone());
        let gate = GateLayer::new(GateSettings {
            authenticator: Authenticator::from_settings(&settings.auth).context("auth")?,
            request_timeout: settings.server.request_timeout_seconds,
            max_concurrent_requests: settings.server.max_concurrent_requests,
            max_message_bytes: settings.server.max_message_bytes,
        })?;
        let max_message_bytes = settings.server.max_message_bytes;
        let catalog = CatalogGrpc::new(Catalog::new(store.clone(), clock.clock()), access.clone());
        let providers = build_providers(&settings.providers)?;
        let billing = Billing::new(store.clone(), clock.clock(), providers.clone());
        let policy = settings.billing.dunning.policy().context("billing.dunning")?;
        let charger = Charger::new(store.clone(), providers, policy);
        let subscriptions = Subscriptions::new(store.clone(), clock.clock(), charger.clone());
        let checkout = Checkout::new(
            store.clone(),
            clock.clock(),
            subscriptions.clone(),
            CheckoutSettings {
                token_ttl: chrono::Duration::from_std(settings.checkout.token_ttl).context("checkout.token_ttl")?,
                allowed_return_hosts: settings.checkout.allowed_return_hosts.clone(),
                public_url: settings.server.public_url.clone(),
            },
        );
        let public_origin = url::Url::parse(&settings.server.public_url)
            .context("server.public_url")?
            .origin()
            .ascii_serialization();
        let subscriptions = SubscriptionGrpc::new(subscriptions, access.clone());
        let webhooks = Webhooks::new(
            store.clone(),
            clock.clock(),
            Arc::new(HttpWebhookSender::new().context("the webhook sender")?),
            AllowedHosts::new(settings.events.allowed_hosts.clone()),
        )
        .with_retention_days(settings.events.retention_days)
        .with_lease(settings.jobs.lease_seconds)
        .with_public_url(&settings.server.public_url);
        let runner = JobRunner::new(store.clone(), clock.clock(), charger)
            .with_lease(settings.jobs.lease_seconds)
            .with_workers(settings.job_workers())
            .with_webhooks(webhooks.clone());
        // With the manual clock, jobs run inside AdvanceClock; otherwise a
        // worker polls for due jobs.
        let (test_clock, worker) = match manual_clock {
            Some(manual) => (
                Some(
                    TestClockServiceServer::new(TestClockGrpc::new(Arc::new(TestClock::new(manual, runner))))
                        .max_decoding_message_size(max_message_bytes),
                ),
                None,
            ),
            None => (
                None,
                Some(tokio::spawn(work_jobs(
                    runner,
                    metrics.clone(),
                    clock.clock(),
                    settings.jobs.poll_interval_seconds,
                    event_wakeups.clone(),
                    shutdown.clone(),
                ))),
            ),
        };

        // The gate refuses oversized messages with its own reason first; the
        // services' limits are the backstop.
        let mut routes = Routes::new(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(CatalogServiceServer::new(catalog).max_decoding_message_size(max_message_bytes))
            .add_service(SubscriptionServiceServer::new(subscriptions).max_decoding_message_size(max_message_bytes))
            .add_service(
                PaymentMethodServiceServer::new(PaymentMethodGrpc::new(billing.clone(), access.clone()))
                    .max_decoding_message_size(max_message_bytes),
            )
            .add_service(
                InvoiceServiceServer::new(InvoiceGrpc::new(billing, access.clone()))
                    .max_decoding_message_size(max_message_bytes),
            )
            .add_service(
                CheckoutServiceServer::new(CheckoutGrpc::new(checkout.clone(), access.clone()))
                    .max_decoding_message_size(max_message_bytes),
            )
            .add_service(
                OperationsServiceServer::new(OperationsGrpc::new(Operations::new(store.clone(), clock.clock())))
                    .max_decoding_message_size(max_message_bytes),
            )
            .add_service(
                EventServiceServer::new(EventGrpc::new(
                    Events::new(store.clone()).with_public_url(&settings.server.public_url),
                    webhooks,
                    access.clone(),
                    stop_accepting.clone(),
                    event_wakeups,
                ))
                .max_decoding_message_size(max_message_bytes),
            );
        if let Some(test_clock) = test_clock {
            routes = routes.add_service(test_clock);
        }
        let routes = routes.prepare();
        // The JSON endpoints call the services through the same layers.
        let rpc_layer = RpcLayer::new(metrics.clone());
        let rpcs = Rpcs::new(
            rpc_layer.layer(gate.layer(routes.clone())),
            gate.clone(),
            settings.server.request_timeout_seconds,
        )
        .context("the JSON endpoints")?;
        let http = tokio::spawn(crate::http::serve(
            http_listener,
            HttpLimits {
                header_timeout: settings.server.http_header_timeout_seconds,
                request_timeout: settings.server.request_timeout_seconds,
            },
            HttpState::new(HttpShared {
                checkout,
                public_origin,
                inbox: Inbox::new(store.clone(), clock.clock()),
                webhooks: WebhookSecrets {
                    stripe: settings.providers.stripe.webhook_secret.clone(),
                    stripe_tolerance_seconds: i64::try_from(
                        settings.providers.stripe.webhook_tolerance_seconds.as_secs(),
                    )
                    .unwrap_or(300),
                    maxio: settings.providers.maxio.webhook_secret.clone(),
                    platform: settings.platform.webhook_secret.clone(),
                },
                metrics: metrics.clone(),
                store: store.clone(),
                rpcs,
            }),
            stop_accepting.clone(),
        ));
        let server = Server::builder()
            .layer(rpc_layer)
            .layer(gate)
            .add_routes(routes)
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY a reply's frames wait for the
                // client's delayed ACK: 40 ms tails on quick RPCs.
                tonic::transport::server::TcpIncoming::from(grpc_listener).with_nodelay(Some(true)),
                stop_accepting.clone().cancelled_owned(),
            );

        tracing::info!(grpc_addr = %grpc_addr, http_addr = %http_addr, clock = ?settings.clock.mode, "billingd serving");
        let grace = settings.server.shutdown_grace_seconds;
        let grace_expired = async {
            stop_accepting.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            served = server => served.context("gRPC server failed")?,
            () = grace_expired => tracing::warn!(grace_seconds = grace.as_secs(), "in-flight requests outlived the shutdown grace period"),
        }
        // Whatever stopped the server stops everything else too.
        shutdown.cancel();
        stop_accepting.cancel();
        monitor.await.ok();
        sampler.await.ok();
        listener.await.ok();
        cache_follower.await.ok();
        if let Some(Err(error)) = shutdown::join_within("http", http, grace).await {
            tracing::error!(error = %error, "HTTP server failed");
        }
        if let Some(worker) = worker {
            shutdown::join_within("job worker", worker, grace).await;
        }
        store.close().await.ok();
        tracing::info!("stopped");
        Ok(())
    }
}

/// The providers directories are billed by, from `providers.*`.
pub fn build_providers(settings: &ProviderSettings) -> anyhow::Result<Providers> {
    let local: Arc<dyn PaymentProvider> = Arc::new(LocalProvider::new());
    let http = |base_url: String| HttpSettings {
        timeout: settings.timeout_seconds,
        max_attempts: settings.max_attempts,
        ..HttpSettings::new(base_url)
    };
    let stripe = match &settings.stripe.api_key {
        Some(api_key) => Some(Arc::new(
            StripeProvider::new(api_key.clone(), http(settings.stripe.base_url.clone())).context("providers.stripe")?,
        ) as Arc<dyn PaymentProvider>),
        None => None,
    };
    let maxio = match (&settings.maxio.api_key, settings.maxio.base_url()) {
        (Some(api_key), Some(base_url)) => Some(Arc::new(
            MaxioProvider::new(api_key.clone(), http(base_url)).context("providers.maxio")?,
        ) as Arc<dyn SubscriptionEngine>),
        _ => None,
    };
    Ok(Providers::new(
        settings.default,
        settings.by_directory.clone(),
        local,
        stripe,
        maxio,
    ))
}

/// Opens the pool and applies migrations when configured to.
pub async fn connect_store(settings: &DatabaseSettings) -> anyhow::Result<Store> {
    let mut options = StoreOptions::new(settings.url.expose_secret());
    options.max_connections = settings.max_connections;
    options.acquire_timeout = settings.acquire_timeout_seconds;
    options.entitlement_cache_bytes = u64::from(settings.entitlement_cache_mib) * 1024 * 1024;
    let store = Store::connect(&options)
        .await
        .context("connect to the database (database.url)")?;
    if settings.run_migrations {
        store.migrate().await.context("apply database migrations")?;
    }
    Ok(store)
}

pub fn build_clock(settings: &Settings) -> ClockHandle {
    match settings.clock.mode {
        ClockMode::System => ClockHandle::System(Arc::new(SystemClock)),
        ClockMode::Manual => {
            let start = settings.clock.start_time.unwrap_or_else(|| SystemClock.now());
            ClockHandle::Manual(Arc::new(ManualClock::new(start)))
        }
    }
}

/// Runs due jobs every `interval` until `shutdown`, and hourly forgets
/// idempotency keys past their retention. A job claimed when shutdown comes
/// finishes first; one not yet claimed waits for the next replica (or start).
async fn work_jobs(
    runner: JobRunner,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    interval: std::time::Duration,
    mut event_wakeups: tokio::sync::watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    let mut last_housekeeping: Option<chrono::DateTime<chrono::Utc>> = None;
    loop {
        let now = clock.now();
        let stopping = || shutdown.is_cancelled();
        match runner.run_due_until(now, &stopping).await {
            Ok(stats) => metrics.jobs(&stats),
            Err(error) => tracing::error!(error = %error, "job worker round failed"),
        }
        if last_housekeeping.is_none_or(|last| now - last >= chrono::Duration::hours(1)) {
            match runner.forget_old_idempotency_keys(now).await {
                Ok(forgotten) => tracing::debug!(forgotten, "forgot old idempotency keys"),
                Err(error) => tracing::warn!(error = %error, "could not forget old idempotency keys"),
            }
            last_housekeeping = Some(now);
        }
        // Between rounds, a commit that wrote events (Postgres NOTIFY, from
        // any replica) sends the webhooks at once rather than at the next
        // round.
        let next_round = tokio::time::sleep(interval);
        tokio::pin!(next_round);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = &mut next_round => break,
                changed = event_wakeups.changed() => {
                    if changed.is_err() {
                        // The listener ends only at shutdown.
                        return;
                    }
                    let stopping = || shutdown.is_cancelled();
                    if let Err(error) = runner.deliver_webhooks(clock.now(), &stopping).await {
                        tracing::warn!(error = %error, "webhook round failed");
                    }
                }
            }
        }
    }
}

/// Samples the database's gauges now and every `interval` until `shutdown`.
async fn sample_metrics(
    metrics: Metrics,
    store: Store,
    clock: Arc<dyn Clock>,
    interval: std::time::Duration,
    shutdown: CancellationToken,
) {
    loop {
        metrics.sample(&store, clock.now()).await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
