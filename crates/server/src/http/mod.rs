//! The HTTP side, served beside gRPC on `server.http_addr`: the checkout
//! consent page and the providers' inbound webhooks.
//!
//! Its limits: a client has `server.http_header_timeout_seconds` to send its
//! request headers (else the connection is closed), a request has
//! `server.request_timeout_seconds` to be answered (else `408`), and bodies
//! are capped per route (`413` beyond): webhooks 256 KiB, forms 16 KiB.

mod checkout;
mod webhooks;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use billing_app::{Checkout, Inbox};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
pub use webhooks::WebhookSecrets;

/// The largest webhook delivery accepted.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;
/// The largest form post (the consent page's buttons) accepted.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Time limits of the HTTP side.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

/// What the HTTP handlers share.
#[derive(Clone, Debug)]
pub struct HttpState {
    pub checkout: Checkout,
    /// The origin of `server.public_url` (`https://billing.example.com`):
    /// forms are accepted only from it.
    pub public_origin: String,
    pub inbox: Inbox,
    pub webhooks: WebhookSecrets,
}

pub fn router(state: HttpState, request_timeout: Duration) -> Router {
    checkout::routes()
        .merge(webhooks::routes())
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
}

/// Serves until `shutdown`, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    limits: HttpLimits,
    state: HttpState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(state, limits.request_timeout);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let connections = GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(error = %error, "http accept failed");
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()))
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "http connection ended with an error");
            }
        });
    }
    connections.shutdown().await;
    Ok(())
}
