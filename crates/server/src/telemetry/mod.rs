//! Logs, traces and metrics.
//!
//! Logs: pretty on a terminal, JSON lines in production, `RUST_LOG`
//! overriding the default filter; a line written inside a traced span
//! carries its `trace_id` and `span_id`. Traces: every span goes through
//! OpenTelemetry, so incoming W3C trace context is continued and passed on to
//! providers; they are exported over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set and dropped otherwise. Metrics: always
//! served as Prometheus text on `GET /metrics`, and also exported over OTLP
//! when the endpoint is set.

mod logs;
pub mod metrics;
pub mod rpc;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn,h2=warn,tower=warn,opentelemetry=warn";

/// The service name traces and metrics carry unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` names another.
pub const DEFAULT_SERVICE_NAME: &str = "billing-service";

/// The instrumentation scope of every span and instrument of ours.
pub const SCOPE: &str = "billing-service";

/// Where telemetry goes, from the standard `OTEL_*` environment variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtelSettings {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: an OTLP/gRPC collector
    /// (`http://otel-collector:4317`). Unset or empty: nothing is exported.
    pub endpoint: Option<String>,
}

impl OtelSettings {
    pub fn from_env(env: &HashMap<String, String>) -> Self {
        OtelSettings {
            endpoint: env
                .get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|endpoint| endpoint.trim().to_owned())
                .filter(|endpoint| !endpoint.is_empty()),
        }
    }
}

/// What must outlive serving: the exporters, flushed by [`Telemetry::shutdown`].
pub struct Telemetry {
    tracer: SdkTracerProvider,
    meters: metrics::MetricsHandle,
}

/// Installs the global subscriber, tracer and meter provider and the W3C
/// propagator. Call once, from `main`, inside the Tokio runtime (the OTLP
/// exporter's channel runs on it).
pub fn init(format: LogFormat, otel: &OtelSettings) -> anyhow::Result<Telemetry> {
    let resource = resource();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut tracer = SdkTracerProvider::builder().with_resource(resource.clone());
    if let Some(endpoint) = &otel.endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .context("OTLP span exporter (OTEL_EXPORTER_OTLP_ENDPOINT)")?;
        tracer = tracer.with_batch_exporter(exporter);
    }
    let tracer = tracer.build();
    opentelemetry::global::set_tracer_provider(tracer.clone());
    let meters = metrics::install(resource, otel.endpoint.as_deref())?;

    let filter = EnvFilter::try_from_default_env().or_else(|_| EnvFilter::try_new(DEFAULT_FILTER))?;
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer.tracer(SCOPE))
        .with_level(false)
        .with_target(false)
        .with_threads(false)
        .with_tracked_inactivity(false);
    let registry = tracing_subscriber::registry().with(filter).with(spans);
    match format {
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(std::io::stdout().is_terminal()),
            )
            .try_init()?,
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .map_event_format(logs::WithTraceIds),
            )
            .try_init()?,
    }
    if let Some(endpoint) = &otel.endpoint {
        tracing::info!(endpoint = %endpoint, "exporting traces and metrics over OTLP");
    }
    Ok(Telemetry { tracer, meters })
}

impl Telemetry {
    /// Sends what is still buffered and stops the exporters, waiting at most
    /// `timeout` for each. Blocking: runs on a thread of its own.
    pub async fn shutdown(self, timeout: Duration) {
        let Telemetry { tracer, meters } = self;
        let flushed = tokio::task::spawn_blocking(move || {
            let spans = tracer.shutdown_with_timeout(timeout);
            let metrics = meters.shutdown(timeout);
            (spans, metrics)
        })
        .await;
        match flushed {
            Ok((Ok(()), Ok(()))) => {}
            Ok((spans, metrics)) => {
                tracing::warn!(spans = ?spans.err(), metrics = ?metrics.err(), "telemetry was not fully flushed")
            }
            Err(error) => tracing::warn!(error = %error, "telemetry flush did not finish"),
        }
    }
}

/// `service.name` and friends from `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`, with [`DEFAULT_SERVICE_NAME`] when neither
/// names the service.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let unnamed = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_none_or(|name| name.as_str().starts_with("unknown_service"));
    if unnamed {
        Resource::builder().with_service_name(DEFAULT_SERVICE_NAME).build()
    } else {
        detected
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_comes_from_the_standard_variable() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect::<HashMap<_, _>>()
        };
        assert_eq!(OtelSettings::from_env(&env(&[])).endpoint, None);
        assert_eq!(
            OtelSettings::from_env(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")])).endpoint,
            None
        );
        assert_eq!(
            OtelSettings::from_env(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")])).endpoint,
            Some("http://collector:4317".to_owned())
        );
    }
}
