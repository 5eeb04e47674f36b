//! OpenTelemetry from the real `billingd` process (telemetry is global, set
//! up once per process), exporting to a collector inside this test: a call
//! that carries a W3C `traceparent` becomes a server span of the caller's
//! trace with the RPC attributes, its Stripe call a child span whose
//! context travels to Stripe, a log line inside it names the trace, and
//! `/metrics` (and the OTLP metrics flushed at exit) show the call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use billing_proto::v1 as pb;
use billing_proto::v1::payment_method_service_client::PaymentMethodServiceClient;
use billing_proto::v1::subscription_service_client::SubscriptionServiceClient;
use billing_storage::testing::TestDatabase;
use billing_tests::process::{Billingd, free_port, load_demo};
use billing_tests::{Backend, backend_tests, mount_stripe_customer_and_card};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

backend_tests!(
    a_traced_call_reaches_the_collector_as_the_callers_child,
    a_collector_that_is_gone_changes_nothing_for_callers,
);

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";
const WEBHOOK_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const JSON_TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";

/// An OTLP/gRPC collector that keeps what it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<ResourceSpans>>>,
    metrics: Arc<Mutex<Vec<ResourceMetrics>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.spans.lock().unwrap().extend(request.into_inner().resource_spans);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.metrics
            .lock()
            .unwrap()
            .extend(request.into_inner().resource_metrics);
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn start_collector() -> (Collector, String) {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (collector, format!("http://{address}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
        .and_then(|value: &AnyValue| value.value.as_ref())
}

fn text(value: &str) -> Value {
    Value::StringValue(value.to_owned())
}

async fn a_traced_call_reaches_the_collector_as_the_callers_child(backend: Backend) {
    billing_provider_api::http::install_crypto_provider();
    let database = TestDatabase::create(backend).await;
    let (collector, endpoint) = start_collector().await;
    let stripe = wiremock::MockServer::start().await;
    // Stripe fails once, so the call retries and logs inside its span.
    Mock::given(method("GET"))
        .and(path("/v1/customers/search"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&stripe)
        .await;
    mount_stripe_customer_and_card(&stripe).await;

    load_demo(database.url()).await;
    let stripe_url = stripe.uri();
    let server = Billingd::start(
        database.url(),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=ci"),
            ("BILLING__PROVIDERS__DEFAULT", "stripe"),
            ("BILLING__PROVIDERS__STRIPE__API_KEY", "sk_test_telemetry"),
            ("BILLING__PROVIDERS__STRIPE__WEBHOOK_SECRET", "whsec_telemetry"),
            ("BILLING__PROVIDERS__STRIPE__BASE_URL", stripe_url.as_str()),
        ],
    )
    .await;
    let channel = server.channel().await;
    SubscriptionServiceClient::new(channel.clone())
        .provision_business(pb::ProvisionBusinessRequest {
            request_id: "provision".into(),
            business_id: "biz-1".into(),
            directory_id: "demo".into(),
            buyer_id: "owner".into(),
        })
        .await
        .unwrap();
    let mut attach = Request::new(pb::AttachPaymentMethodRequest {
        request_id: "attach".into(),
        business_id: "biz-1".into(),
        token: "pm_card_visa".into(),
    });
    attach.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01").parse().unwrap(),
    );
    PaymentMethodServiceClient::new(channel.clone())
        .attach_payment_method(attach)
        .await
        .unwrap();

    // An HTTP request continues its caller's trace too (here a webhook with
    // a bad signature, refused).
    let refused = reqwest::Client::new()
        .post(server.http_url("/webhooks/stripe"))
        .header("traceparent", format!("00-{WEBHOOK_TRACE_ID}-b7ad6b7169203331-01"))
        .header("stripe-signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    // A JSON read too, with the RPC it is as a child of its HTTP span.
    let read = reqwest::Client::new()
        .get(server.http_url("/v1/businesses/biz-1/subscriptions"))
        .header("traceparent", format!("00-{JSON_TRACE_ID}-c7ad6b7169203331-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), reqwest::StatusCode::OK);

    // Prometheus text, sampled for this scrape.
    let metrics = reqwest::get(server.http_url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), reqwest::StatusCode::OK);
    let metrics = metrics.text().await.unwrap();
    let series = |name: &str, labels: &[&str]| {
        metrics
            .lines()
            .any(|line| line.starts_with(name) && labels.iter().all(|label| line.contains(label)))
    };
    assert!(
        series(
            "rpc_server_call_duration_seconds_count{",
            &[
                r#"rpc_method="AttachPaymentMethod""#,
                r#"rpc_grpc_status_code="0""#,
                r#"rpc_service="billing.v1.PaymentMethodService""#
            ]
        ),
        "{metrics}"
    );
    assert!(
        series(
            "billing_provider_calls_total{",
            &[
                r#"provider="stripe""#,
                r#"outcome="ok""#,
                r#"operation="search_customers""#
            ]
        ),
        "{metrics}"
    );
    assert!(series("billing_jobs_due", &[]), "{metrics}");
    assert!(
        series(
            "billing_webhooks_received_total{",
            &[r#"provider="stripe""#, r#"outcome="unverified""#]
        ),
        "{metrics}"
    );
    assert!(
        series("billing_queue_pending{", &[r#"queue="webhook_inbox""#]),
        "{metrics}"
    );

    // The caller's trace went on to Stripe.
    let to_stripe = stripe.received_requests().await.unwrap();
    assert!(!to_stripe.is_empty());
    for request in &to_stripe {
        let traceparent = request.headers.get("traceparent").expect("traceparent sent to Stripe");
        assert!(traceparent.to_str().unwrap().contains(TRACE_ID), "{traceparent:?}");
    }

    server.terminate();
    let (exit, log) = server.wait(Duration::from_secs(20)).await;
    assert_eq!(exit.code(), Some(0));

    // The retry's warning names the trace and the provider call's span.
    let retried = log
        .iter()
        .find(|line| line.contains("provider call will be retried"))
        .unwrap_or_else(|| panic!("no retry in the log:\n{}", log.join("\n")));
    let retried: serde_json::Value = serde_json::from_str(retried).unwrap();
    assert_eq!(retried["trace_id"], TRACE_ID, "{retried}");

    // Spans were flushed at exit.
    let resource_spans = collector.spans.lock().unwrap().clone();
    let resource = resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attribute(&resource.attributes, "service.name"),
        Some(&text("billing-service"))
    );
    assert_eq!(
        attribute(&resource.attributes, "deployment.environment.name"),
        Some(&text("ci"))
    );
    let spans: Vec<Span> = resource_spans
        .iter()
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| scope.spans.clone())
        .collect();
    let by_id: HashMap<String, &Span> = spans.iter().map(|span| (hex(&span.span_id), span)).collect();
    let names = || spans.iter().map(|span| span.name.as_str()).collect::<Vec<_>>();
    let server_span = spans
        .iter()
        .find(|span| span.name == "billing.v1.PaymentMethodService/AttachPaymentMethod")
        .unwrap_or_else(|| panic!("no server span among {:?}", names()));
    assert_eq!(hex(&server_span.trace_id), TRACE_ID);
    assert_eq!(hex(&server_span.parent_span_id), CALLER_SPAN_ID);
    assert_eq!(server_span.kind, SpanKind::Server as i32);
    assert_eq!(attribute(&server_span.attributes, "rpc.system"), Some(&text("grpc")));
    assert_eq!(
        attribute(&server_span.attributes, "rpc.service"),
        Some(&text("billing.v1.PaymentMethodService"))
    );
    assert_eq!(
        attribute(&server_span.attributes, "rpc.method"),
        Some(&text("AttachPaymentMethod"))
    );
    assert_eq!(
        attribute(&server_span.attributes, "rpc.grpc.status_code"),
        Some(&Value::IntValue(0))
    );
    let descends_from_server_span = |span: &Span| {
        let mut parent = hex(&span.parent_span_id);
        while let Some(ancestor) = by_id.get(&parent) {
            if ancestor.span_id == server_span.span_id {
                return true;
            }
            parent = hex(&ancestor.parent_span_id);
        }
        false
    };
    // The search Stripe first failed, answered on its second attempt.
    let provider_call = spans
        .iter()
        .find(|span| {
            span.name == "stripe search_customers"
                && attribute(&span.attributes, "attempts") == Some(&Value::IntValue(2))
        })
        .unwrap_or_else(|| panic!("no retried provider span among {:?}", names()));
    assert_eq!(provider_call.kind, SpanKind::Client as i32);
    assert!(descends_from_server_span(provider_call));
    assert_eq!(retried["span_id"], hex(&provider_call.span_id), "{retried}");
    let transaction = spans
        .iter()
        .find(|span| span.name == "db.transaction" && descends_from_server_span(span))
        .unwrap_or_else(|| panic!("no database transaction in the call's trace among {:?}", names()));
    assert_eq!(hex(&transaction.trace_id), TRACE_ID);
    let webhook = spans
        .iter()
        .find(|span| span.name == "POST /webhooks/stripe")
        .unwrap_or_else(|| panic!("no HTTP span among {:?}", names()));
    assert_eq!(hex(&webhook.trace_id), WEBHOOK_TRACE_ID);
    assert_eq!(webhook.kind, SpanKind::Server as i32);
    assert_eq!(
        attribute(&webhook.attributes, "http.response.status_code"),
        Some(&Value::IntValue(401))
    );
    let json_read = spans
        .iter()
        .find(|span| span.name == "GET /v1/businesses/{business_id}/subscriptions")
        .unwrap_or_else(|| panic!("no JSON read span among {:?}", names()));
    assert_eq!(hex(&json_read.trace_id), JSON_TRACE_ID);
    let json_rpc = spans
        .iter()
        .find(|span| {
            span.name == "billing.v1.SubscriptionService/ListSubscriptions" && hex(&span.trace_id) == JSON_TRACE_ID
        })
        .unwrap_or_else(|| panic!("no RPC span in the JSON read's trace among {:?}", names()));
    assert_eq!(json_rpc.parent_span_id, json_read.span_id);
    // A call without trace context starts a trace of its own.
    let provision = spans
        .iter()
        .find(|span| span.name == "billing.v1.SubscriptionService/ProvisionBusiness")
        .unwrap();
    assert_ne!(hex(&provision.trace_id), TRACE_ID);
    assert!(provision.parent_span_id.is_empty());

    // Metrics too.
    let exported: Vec<String> = collector
        .metrics
        .lock()
        .unwrap()
        .iter()
        .flat_map(|resource| &resource.scope_metrics)
        .flat_map(|scope| scope.metrics.iter().map(|metric| metric.name.clone()))
        .collect();
    for name in ["rpc.server.call.duration", "billing.provider.calls", "billing.jobs.due"] {
        assert!(
            exported.iter().any(|exported| exported == name),
            "{name} not in {exported:?}"
        );
    }
}

async fn a_collector_that_is_gone_changes_nothing_for_callers(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let server = Billingd::start(database.url(), &[("OTEL_EXPORTER_OTLP_ENDPOINT", nowhere.as_str())]).await;
    let channel = server.channel().await;
    for attempt in 0..20 {
        SubscriptionServiceClient::new(channel.clone())
            .provision_business(pb::ProvisionBusinessRequest {
                request_id: format!("provision-{attempt}"),
                business_id: format!("biz-{attempt}"),
                directory_id: "demo".into(),
                buyer_id: "owner".into(),
            })
            .await
            .unwrap();
    }
    // The flush at exit gives up within its bound; the exit is still clean.
    let stopping = std::time::Instant::now();
    server.terminate();
    let (exit, _) = server.wait(Duration::from_secs(30)).await;
    assert_eq!(exit.code(), Some(0));
    assert!(stopping.elapsed() < Duration::from_secs(15), "{:?}", stopping.elapsed());
}
