//! The one HTTP executor every remote provider uses: timeouts, retries with
//! exponential backoff and full jitter on 429, 5xx and connection failures
//! (honouring `Retry-After`), one idempotency key per logical operation sent
//! unchanged on every retry, a tracing span per call whose W3C trace
//! context travels in `traceparent`, a count and a duration per call for the
//! service's metrics, and credentials that never reach a log.

use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::propagation::Injector;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use tracing::Instrument;

use crate::{ProviderError, ProviderErrorKind};

/// How a provider is reached and how hard to try.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// `https://api.stripe.com`, `https://acme.chargify.com`; no trailing `/`.
    pub base_url: String,
    /// Per attempt, connect to last byte.
    pub timeout: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The first retry waits up to this long; each later one twice as long.
    pub base_delay: Duration,
    /// No wait is longer, `Retry-After` included.
    pub max_delay: Duration,
}

impl HttpSettings {
    pub fn new(base_url: impl Into<String>) -> Self {
        HttpSettings {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            timeout: Duration::from_secs(10),
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

/// How requests authenticate. Both forms are kept secret and sent in a
/// header marked sensitive, so neither `Debug` nor tracing prints them.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `Authorization: Bearer …` (Stripe).
    Bearer(SecretString),
    /// HTTP Basic with the key as user name (Maxio: password `x`).
    Basic { user: SecretString, password: SecretString },
}

/// A request body.
#[derive(Clone, Debug)]
pub enum Body {
    None,
    /// `application/x-www-form-urlencoded`, in order.
    Form(Vec<(String, String)>),
    Json(serde_json::Value),
}

/// One logical operation.
#[derive(Clone, Debug)]
pub struct Call {
    /// For spans and errors: `create_payment_intent`, `migrate_subscription`.
    pub operation: &'static str,
    pub method: Method,
    /// Below the base URL, with its query: `/v1/payment_intents`.
    pub path: String,
    pub body: Body,
    /// Sent as `Idempotency-Key` on every attempt.
    pub idempotency_key: Option<String>,
}

impl Call {
    pub fn new(operation: &'static str, method: Method, path: impl Into<String>) -> Self {
        Call {
            operation,
            method,
            path: path.into(),
            body: Body::None,
            idempotency_key: None,
        }
    }

    pub fn form(mut self, pairs: Vec<(String, String)>) -> Self {
        self.body = Body::Form(pairs);
        self
    }

    pub fn json(mut self, value: serde_json::Value) -> Self {
        self.body = Body::Json(value);
        self
    }

    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// The answer that ended a call: any status but 429 and 5xx (which are
/// retried and, once attempts run out, become `Unavailable`).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, or `Internal` naming the operation.
    pub fn json(&self, operation: &str) -> Result<serde_json::Value, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|error| {
            ProviderError::new(
                ProviderErrorKind::Internal,
                format!(
                    "{operation}: the provider answered {} with a body that is not JSON: {error}",
                    self.status
                ),
            )
        })
    }
}

#[derive(Clone, Debug)]
pub struct HttpExecutor {
    provider: &'static str,
    client: reqwest::Client,
    settings: HttpSettings,
    auth: Auth,
}

impl HttpExecutor {
    pub fn new(provider: &'static str, settings: HttpSettings, auth: Auth) -> Result<Self, ProviderError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("billing-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ProviderError::new(ProviderErrorKind::Internal, format!("HTTP client: {error}")))?;
        Ok(HttpExecutor {
            provider,
            client,
            settings,
            auth,
        })
    }

    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Sends `call`, retrying what may succeed later.
    pub async fn execute(&self, call: &Call) -> Result<Reply, ProviderError> {
        let span = tracing::info_span!(
            "provider.call",
            otel.kind = "client",
            otel.name = format!("{} {}", self.provider, call.operation),
            provider = self.provider,
            operation = call.operation,
            http.request.method = %call.method,
            url.path = %path_only(&call.path),
            http.response.status_code = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let started = Instant::now();
        let mut tally = Tally::default();
        let result = self.execute_in_span(call, &mut tally).instrument(span.clone()).await;
        // Recorded once, at the end: an exported span keeps every value a
        // field was ever given.
        span.record("attempts", tally.attempts);
        if let Some(status) = tally.last_status {
            span.record("http.response.status_code", status);
        }
        record_call(self.provider, call.operation, &result, started.elapsed());
        result
    }

    async fn execute_in_span(&self, call: &Call, tally: &mut Tally) -> Result<Reply, ProviderError> {
        let max_attempts = self.settings.max_attempts.max(1);
        let mut last_failure = String::new();
        for attempt in 1..=max_attempts {
            tally.attempts = i64::from(attempt);
            let wait = match self.request(call).send().await {
                Ok(response) => {
                    let status = response.status();
                    tally.last_status = Some(i64::from(status.as_u16()));
                    if !retryable(status) {
                        let body = response.bytes().await.map_err(|error| {
                            unavailable(self.provider, call, format!("reading the answer failed: {error}"))
                        })?;
                        return Ok(Reply {
                            status: status.as_u16(),
                            body: body.to_vec(),
                        });
                    }
                    last_failure = format!("answered {status}");
                    retry_after(response.headers())
                }
                Err(error) => {
                    last_failure = if error.is_timeout() {
                        format!("timed out after {:?}", self.settings.timeout)
                    } else {
                        format!("could not be reached ({})", error_kind(&error))
                    };
                    None
                }
            };
            if attempt == max_attempts {
                break;
            }
            let delay = wait
                .unwrap_or_else(|| backoff(self.settings.base_delay, attempt))
                .min(self.settings.max_delay);
            tracing::warn!(attempt, delay_ms = delay.as_millis() as u64, failure = %last_failure, "provider call will be retried");
            tokio::time::sleep(delay).await;
        }
        Err(unavailable(
            self.provider,
            call,
            format!("{last_failure} ({max_attempts} attempts)"),
        ))
    }

    fn request(&self, call: &Call) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.settings.base_url, call.path);
        let mut headers = HeaderMap::new();
        let authorization = match &self.auth {
            Auth::Bearer(token) => format!("Bearer {}", token.expose_secret()),
            Auth::Basic { user, password } => {
                use base64::Engine;
                let pair = format!("{}:{}", user.expose_secret(), password.expose_secret());
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
            }
        };
        if let Ok(mut value) = HeaderValue::from_str(&authorization) {
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(key) = &call.idempotency_key
            && let Ok(value) = HeaderValue::from_str(key)
        {
            headers.insert("Idempotency-Key", value);
        }
        headers.insert(reqwest::header::ACCEPT, HeaderValue::from_static("application/json"));
        // The call's span is current: the provider's logs can join our trace.
        let context = opentelemetry::Context::current();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut HeaderInjector(&mut headers));
        });
        let builder = self.client.request(call.method.clone(), url).headers(headers);
        match &call.body {
            Body::None => builder,
            Body::Form(pairs) => builder
                .header(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                )
                .body(form_encode(pairs)),
            Body::Json(value) => builder
                .header(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )
                .body(value.to_string()),
        }
    }
}

/// How far a call got: for its span.
#[derive(Default)]
struct Tally {
    attempts: i64,
    last_status: Option<i64>,
}

/// W3C trace context written into a request's headers (provider calls, and
/// the server's in-process calls).
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}

/// Counts the call in `billing.provider.calls` and times it in
/// `billing.provider.call.duration`, by provider, operation and outcome:
/// `ok` (2xx), `refused` (any other answer), `unavailable` (no answer after
/// every attempt) or `error`. Instruments come from the global meter
/// provider the server installs at start; without one they count nothing.
fn record_call(provider: &'static str, operation: &'static str, result: &Result<Reply, ProviderError>, took: Duration) {
    let outcome = match result {
        Ok(reply) if reply.is_success() => "ok",
        Ok(_) => "refused",
        Err(error) if error.kind() == ProviderErrorKind::Unavailable => "unavailable",
        Err(_) => "error",
    };
    let attributes = [
        KeyValue::new("provider", provider),
        KeyValue::new("operation", operation),
        KeyValue::new("outcome", outcome),
    ];
    let meter = opentelemetry::global::meter("billing-service");
    meter
        .u64_counter("billing.provider.calls")
        .with_description("Calls to a billing provider's API, retries included in one call")
        .build()
        .add(1, &attributes);
    meter
        .f64_histogram("billing.provider.call.duration")
        .with_unit("s")
        .with_description("How long a provider call took, retries and their waits included")
        .with_boundaries(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
        .build()
        .record(took.as_secs_f64(), &attributes);
}

/// Makes ring the process's TLS crypto provider, which every
/// `reqwest::Client` of this workspace needs (reqwest is built without one).
/// A provider installed earlier stays; calling again does nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `text` made safe as one segment of a URL path.
pub fn path_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `a=1&b%5Bc%5D=2`.
pub fn form_encode(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// `Retry-After` in seconds (an HTTP date is treated as "soon": the
/// backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Full jitter: a random wait up to `base × 2^(attempt−1)`.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1_u32 << attempt.saturating_sub(1).min(16));
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(fastrand::u64(millis / 2..=millis))
}

fn error_kind(error: &reqwest::Error) -> &'static str {
    if error.is_connect() {
        "connection refused or reset"
    } else if error.is_request() {
        "request failed"
    } else {
        "transport error"
    }
}

/// The path without its query, which may carry lookup values.
fn path_only(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

fn unavailable(provider: &str, call: &Call, detail: String) -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::Unavailable,
        format!("{provider} {}: {detail}", call.operation),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter() {
        let base = Duration::from_millis(100);
        for attempt in 1..=4 {
            let ceiling = 100 * (1 << (attempt - 1));
            for _ in 0..50 {
                let wait = backoff(base, attempt).as_millis();
                assert!(wait >= ceiling / 2 && wait <= ceiling, "attempt {attempt}: {wait}");
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn forms_encode_nested_keys() {
        let pairs = vec![
            ("amount".to_owned(), "1999".to_owned()),
            ("metadata[invoice_id]".to_owned(), "inv_1 &2".to_owned()),
        ];
        assert_eq!(form_encode(&pairs), "amount=1999&metadata%5Binvoice_id%5D=inv_1+%262");
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let executor = HttpExecutor::new(
            "stripe",
            HttpSettings::new("http://127.0.0.1:1"),
            Auth::Bearer(SecretString::from("sk_test_secret")),
        )
        .unwrap();
        assert!(!format!("{executor:?}").contains("sk_test_secret"));
    }
}
