//! One span and one duration sample per RPC, outside everything else, so
//! refusals by the gate are traced and measured too.
//!
//! The span is named `billing.v1.Service/Method`, carries OpenTelemetry's
//! RPC attributes, and continues the caller's trace when the request has a
//! W3C `traceparent`. Health checks are measured but not traced: probes
//! every few seconds per pod would bury the traces that matter.

use std::task::{Context, Poll};
use std::time::Instant;

use opentelemetry::propagation::Extractor;
use tonic::Code;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::metrics::Metrics;

#[derive(Clone, Debug)]
pub struct RpcLayer {
    metrics: Metrics,
}

impl RpcLayer {
    pub fn new(metrics: Metrics) -> Self {
        RpcLayer { metrics }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RpcService<S> {
    inner: S,
    metrics: Metrics,
}

type BoxFuture<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<Body>> for RpcService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let started = Instant::now();
        let (service, method) = service_and_method(request.uri().path());
        let span = if service == "grpc.health.v1.Health" {
            tracing::Span::none()
        } else {
            server_span(&request, &service, &method)
        };
        let served = span.in_scope(|| self.inner.call(request));
        let metrics = self.metrics.clone();
        Box::pin(
            async move {
                let response = served.await;
                let code = match &response {
                    Ok(response) => status_code(response.headers()),
                    Err(_) => Code::Unknown,
                };
                let current = tracing::Span::current();
                current.record("rpc.grpc.status_code", code as i32);
                if is_server_error(code) {
                    current.record("otel.status_code", "ERROR");
                }
                metrics.rpc(service, method, code as i32, started.elapsed());
                response
            }
            .instrument(span),
        )
    }
}

/// A server span, the child of the caller's span when the request carries
/// W3C trace context.
fn server_span(request: &http::Request<Body>, service: &str, method: &str) -> tracing::Span {
    let span = tracing::info_span!(
        "rpc",
        otel.name = format!("{service}/{method}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(request.headers()))
    });
    // Without a usable `traceparent` the context is empty and the span
    // starts a trace of its own.
    let _ = span.set_parent(parent);
    span
}

/// `/billing.v1.CatalogService/GetOffering` → (`billing.v1.CatalogService`, `GetOffering`).
fn service_and_method(path: &str) -> (String, String) {
    match path.trim_start_matches('/').split_once('/') {
        Some((service, method)) => (service.to_owned(), method.to_owned()),
        None => ("unknown".to_owned(), path.to_owned()),
    }
}

/// The status a response carries in its headers (an error answered
/// trailers-only); a unary success sends it in the trailers, after the
/// headers: absent here means OK.
fn status_code(headers: &http::HeaderMap) -> Code {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map_or(Code::Ok, Code::from_i32)
}

/// The codes OpenTelemetry's RPC conventions mark a server span as failed for.
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// Reads W3C trace context from HTTP headers (gRPC metadata is HTTP/2
/// headers).
pub struct HeaderExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            service_and_method("/billing.v1.CatalogService/GetOffering"),
            ("billing.v1.CatalogService".to_owned(), "GetOffering".to_owned())
        );
        assert_eq!(
            service_and_method("/nonsense"),
            ("unknown".to_owned(), "/nonsense".to_owned())
        );
    }

    #[test]
    fn the_status_is_read_from_headers_and_absent_means_ok() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(status_code(&headers), Code::Ok);
        headers.insert("grpc-status", http::HeaderValue::from_static("7"));
        assert_eq!(status_code(&headers), Code::PermissionDenied);
        assert!(!is_server_error(Code::PermissionDenied));
        assert!(is_server_error(Code::Unavailable));
    }
}
