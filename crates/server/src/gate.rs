//! The gate every gRPC request passes before a service sees it, one tower
//! layer in front of all of them: authentication and the RPC × role table,
//! the cap on concurrent RPCs, the per-RPC deadline, the message-size cap and
//! the field limits. An admitted RPC runs in a task of its own: its deadline
//! or its client's disconnect ends the wait for it, never its work. Each refusal is a precise status with an `ErrorInfo`
//! reason, and nothing has been read or written by then.
//!
//! Health and reflection pass untouched: probes and grpcurl need no token,
//! and a saturated server must still answer its probes.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use billing_domain::{DomainError, Reason};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use prost_reflect::MessageDescriptor;
use tokio::sync::Semaphore;
use tonic::Status;
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::auth::{Authenticator, rules};
use crate::grpc::status::{invalid, refused};
use crate::limits::RequestShapes;

/// The gRPC frame header: a compression flag and a 4-byte length.
const FRAME_HEADER_LEN: usize = 5;

pub struct GateSettings {
    pub authenticator: Authenticator,
    pub request_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub max_message_bytes: usize,
}

#[derive(Clone)]
pub struct GateLayer {
    gate: Arc<Gate>,
}

struct Gate {
    authenticator: Authenticator,
    shapes: RequestShapes,
    permits: Arc<Semaphore>,
    request_timeout: Duration,
    max_message_bytes: usize,
}

impl GateLayer {
    pub fn new(settings: GateSettings) -> anyhow::Result<Self> {
        Ok(GateLayer {
            gate: Arc::new(Gate {
                authenticator: settings.authenticator,
                shapes: RequestShapes::new()?,
                permits: Arc::new(Semaphore::new(settings.max_concurrent_requests)),
                request_timeout: settings.request_timeout,
                max_message_bytes: settings.max_message_bytes,
            }),
        })
    }

    /// The caller behind a request's headers, as the gate decides it for
    /// every RPC.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<billing_domain::access::Caller, Status> {
        self.gate.authenticator.authenticate(headers).map_err(invalid)
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = GateService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GateService {
            inner,
            gate: self.gate.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GateService<S> {
    inner: S,
    gate: Arc<Gate>,
}

type BoxFuture<T, E> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, E>> + Send>>;

impl<S> Service<http::Request<Body>> for GateService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
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
        // The clone is not ready; the one polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if rules::is_open(request.uri().path()) {
            return Box::pin(inner.call(request));
        }
        let gate = self.gate.clone();
        Box::pin(async move {
            match gate.admit(request).await {
                Ok(Admitted {
                    request,
                    permit,
                    deadline,
                }) => {
                    // The work runs to its outcome in a task of its own: a
                    // deadline that passes or a client that goes away ends
                    // the wait, never a change half made (a charge taken
                    // but not recorded). It holds its permit until done.
                    let work = tokio::spawn(
                        async move {
                            let response = inner.call(request).await;
                            drop(permit);
                            response
                        }
                        .in_current_span(),
                    );
                    match tokio::time::timeout(deadline, work).await {
                        Ok(Ok(response)) => response,
                        Ok(Err(failed)) => {
                            tracing::error!(error = %failed, "an RPC handler failed");
                            Ok(Status::internal("internal error").into_http())
                        }
                        Err(_) => Ok(deadline_exceeded(deadline).into_http()),
                    }
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

struct Admitted {
    request: http::Request<Body>,
    permit: tokio::sync::OwnedSemaphorePermit,
    deadline: Duration,
}

impl Gate {
    async fn admit(&self, request: http::Request<Body>) -> Result<Admitted, Status> {
        let caller = self.authenticator.authenticate(request.headers()).map_err(invalid)?;
        let path = request.uri().path().to_owned();
        // A path that is no RPC of the contract reaches no service: tonic
        // answers it UNIMPLEMENTED. Every RPC of the contract needs a rule.
        let input = self.shapes.input_of(&path);
        if input.is_some() && !rules::allows(&path, caller.role()) {
            return Err(refused(
                Reason::PermissionDenied,
                format!("a {} token may not call {path}", caller.role().as_str()),
            ));
        }
        let permit = self.permits.clone().try_acquire_owned().map_err(|_| {
            refused(
                Reason::ServerOverloaded,
                "the server is at its limit of concurrent requests; retry with backoff",
            )
        })?;
        let deadline =
            client_deadline(request.headers()).map_or(self.request_timeout, |client| client.min(self.request_timeout));
        let (mut parts, body) = request.into_parts();
        // Reading the body counts against the deadline: a client that holds
        // it open cannot hold a permit for longer.
        let payload = tokio::time::timeout(deadline, self.read_message(input.as_ref(), body))
            .await
            .map_err(|_| deadline_exceeded(deadline))??;
        parts.extensions.insert(caller);
        Ok(Admitted {
            request: http::Request::from_parts(parts, Body::new(Full::new(payload))),
            permit,
            deadline,
        })
    }

    /// The whole request body, refused when its message is larger than
    /// allowed or a field of `input` (the RPC's request message) breaks its
    /// limit.
    async fn read_message(&self, input: Option<&MessageDescriptor>, body: Body) -> Result<Bytes, Status> {
        let too_large = || {
            refused(
                Reason::MessageTooLarge,
                format!("the request message is larger than {} bytes", self.max_message_bytes),
            )
        };
        let bytes = Limited::new(body, self.max_message_bytes + FRAME_HEADER_LEN)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    Status::cancelled("the request body could not be read")
                }
            })?
            .to_bytes();
        // One uncompressed frame is what our clients send; anything else is
        // passed on for tonic to judge.
        let Some((&[0], rest)) = bytes.split_first_chunk::<1>() else {
            return Ok(bytes);
        };
        let Some((length, payload)) = rest.split_first_chunk::<4>() else {
            return Ok(bytes);
        };
        if u32::from_be_bytes(*length) as usize > self.max_message_bytes {
            return Err(too_large());
        }
        if let Some(input) = input {
            self.shapes.check(input, payload).map_err(invalid)?;
        }
        Ok(bytes)
    }
}

fn deadline_exceeded(deadline: Duration) -> Status {
    invalid(DomainError::new(
        Reason::DeadlineExceeded,
        format!("the request did not finish within {} ms", deadline.as_millis()),
    ))
}

/// The client's `grpc-timeout` (`<digits><unit>`, unit one of H M S m u n).
fn client_deadline(headers: &http::HeaderMap) -> Option<Duration> {
    let text = headers.get("grpc-timeout")?.to_str().ok()?;
    let split = text.len().checked_sub(1)?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value * 3600),
        "M" => Duration::from_secs(value * 60),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(timeout: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", timeout.parse().unwrap());
        headers
    }

    #[test]
    fn grpc_timeouts_are_read_in_every_unit() {
        assert_eq!(client_deadline(&headers("2H")), Some(Duration::from_secs(7200)));
        assert_eq!(client_deadline(&headers("3M")), Some(Duration::from_secs(180)));
        assert_eq!(client_deadline(&headers("5S")), Some(Duration::from_secs(5)));
        assert_eq!(client_deadline(&headers("250m")), Some(Duration::from_millis(250)));
        assert_eq!(client_deadline(&headers("7u")), Some(Duration::from_micros(7)));
        assert_eq!(client_deadline(&headers("9n")), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "5", "5x", "123456789S", "-1S"] {
            let mut map = http::HeaderMap::new();
            if let Ok(value) = bad.parse() {
                map.insert("grpc-timeout", value);
            }
            assert_eq!(client_deadline(&map), None, "{bad:?}");
        }
    }
}
