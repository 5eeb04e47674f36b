//! The HTTP side, served beside gRPC on `server.http_addr`: the checkout
//! consent page, the providers' inbound webhooks, `GET /metrics`, and the
//! JSON read endpoints with their OpenAPI document (`rest`). Each
//! request runs in a server span that continues the caller's W3C trace.
//!
//! Its limits: a client has `server.http_header_timeout_seconds` to send its
//! request headers (else the connection is closed), a request has
//! `server.request_timeout_seconds` to be answered (else `408`), and bodies
//! are capped per route (`413` beyond): webhooks 256 KiB, forms 16 KiB.

mod checkout;
mod metrics;
pub mod rest;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use billing_app::{Checkout, Inbox};
use billing_storage::Store;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::telemetry::metrics::Metrics;
use crate::telemetry::rpc::HeaderExtractor;
pub use webhooks::WebhookSecrets;

/// The HTTP status for an error of `kind`: the one map every HTTP answer
/// uses, as `grpc::status::code_for` is for gRPC (Google's mapping of gRPC
/// codes to HTTP).
pub fn status_for(kind: billing_domain::ErrorKind) -> StatusCode {
    use billing_domain::ErrorKind;
    match kind {
        ErrorKind::InvalidArgument | ErrorKind::FailedPrecondition => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists | ErrorKind::Aborted => StatusCode::CONFLICT,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

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

/// What the HTTP handlers share. axum clones its state for every request:
/// this is one shared allocation, not a copy of every part (the copy
/// profiled at a fifth of a JSON read's CPU).
#[derive(Clone, Debug)]
pub struct HttpState(Arc<HttpShared>);

impl HttpState {
    pub fn new(shared: HttpShared) -> Self {
        HttpState(Arc::new(shared))
    }
}

impl std::ops::Deref for HttpState {
    type Target = HttpShared;

    fn deref(&self) -> &HttpShared {
        &self.0
    }
}

#[derive(Debug)]
pub struct HttpShared {
    pub checkout: Checkout,
    /// The origin of `server.public_url` (`https://billing.example.com`):
    /// forms are accepted only from it.
    pub public_origin: String,
    pub inbox: Inbox,
    pub webhooks: WebhookSecrets,
    pub metrics: Metrics,
    /// Read by `/metrics` for a fresh sample of the gauges.
    pub store: Store,
    /// The gRPC services, for the JSON endpoints that are RPCs.
    pub rpcs: rest::Rpcs,
}

pub fn router(state: HttpState, request_timeout: Duration) -> Router {
    checkout::routes()
        .merge(webhooks::routes(state.clone()))
        .merge(metrics::routes())
        .merge(rest::routes(state.rpcs.pool()))
        .with_state(state)
        .layer(axum::middleware::from_fn(traced))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
}

/// Runs a request in a server span named for its route, the child of the
/// caller's span when it sent `traceparent`. Scrapes of `/metrics` are not
/// traced.
async fn traced(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    if request.uri().path() == metrics::PATH {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |matched| matched.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "http",
        otel.name = format!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    let _ = span.set_parent(parent);
    let response = next.run(request).instrument(span.clone()).await;
    span.record("http.response.status_code", i64::from(response.status().as_u16()));
    response
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
        // Without TCP_NODELAY an answer's last frames wait for the client's
        // delayed ACK: 40 ms on a JSON read at one request in flight.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(error = %error, "could not set TCP_NODELAY");
        }
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

#[cfg(test)]
mod tests {
    use billing_domain::Reason;

    use super::*;

    #[test]
    fn errors_map_to_http_by_their_kind() {
        let cases = [
            (Reason::FieldInvalid, StatusCode::BAD_REQUEST),
            (Reason::PaymentDeclined, StatusCode::BAD_REQUEST),
            (Reason::CheckoutTokenInvalid, StatusCode::NOT_FOUND),
            (Reason::IdempotencyKeyInUse, StatusCode::CONFLICT),
            (Reason::AuthTokenMissing, StatusCode::UNAUTHORIZED),
            (Reason::PermissionDenied, StatusCode::FORBIDDEN),
            (Reason::MessageTooLarge, StatusCode::TOO_MANY_REQUESTS),
            (Reason::ProviderUnavailable, StatusCode::SERVICE_UNAVAILABLE),
            (Reason::DatabaseUnavailable, StatusCode::SERVICE_UNAVAILABLE),
            (Reason::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT),
            (Reason::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (reason, status) in cases {
            assert_eq!(status_for(reason.kind()), status, "{reason:?}");
        }
    }
}
