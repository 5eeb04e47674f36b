//! `grpc.health.v1.Health`: every service (readiness) starts NOT_SERVING,
//! turns SERVING once the database answers, and goes back to NOT_SERVING
//! while it does not (and for good once shutdown begins). [`LIVENESS`] is
//! SERVING from start to exit.

use std::time::Duration;

use billing_storage::Store;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The liveness probe's service name: SERVING while the process works,
/// whatever the database does, so a database outage restarts no pod.
pub const LIVENESS: &str = "liveness";

/// The services whose readiness is reported; "" is the server as a whole.
pub const SERVICE_NAMES: &[&str] = &[
    "",
    "billing.v1.CatalogService",
    "billing.v1.CheckoutService",
    "billing.v1.EventService",
    "billing.v1.InvoiceService",
    "billing.v1.OperationsService",
    "billing.v1.PaymentMethodService",
    "billing.v1.SubscriptionService",
];

pub async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    for name in SERVICE_NAMES {
        reporter.set_service_status(name, status).await;
    }
}

/// Pings the database every `interval` until `shutdown`, reporting each
/// change of status.
pub async fn monitor(store: Store, reporter: HealthReporter, interval: Duration, shutdown: CancellationToken) {
    let mut current = ServingStatus::NotServing;
    loop {
        let next = match store.ping().await {
            Ok(()) => ServingStatus::Serving,
            Err(error) => {
                if current == ServingStatus::Serving {
                    tracing::error!(error = %error, "database stopped answering; reporting NOT_SERVING");
                }
                ServingStatus::NotServing
            }
        };
        if next != current {
            set_all(&reporter, next).await;
            tracing::info!(status = ?next, "health changed");
            current = next;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
