//! `POST /webhooks/stripe`, `POST /webhooks/maxio` and `POST
//! /webhooks/platform` (the platform's app-subscription cancel, signed per
//! Standard Webhooks with `platform.webhook_secret`): a delivery is
//! verified before anything is stored (`401` otherwise), must be an event we
//! can read (`400`), is stored raw once per provider event id, and is
//! answered `200` once durable. A job applies it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use billing_app::Sender;
use billing_domain::Provider;
use secrecy::{ExposeSecret, SecretString};

use super::HttpState;

/// The secrets and tolerance the webhook endpoints verify with; a provider
/// without a secret has no endpoint (`404`).
#[derive(Clone, Debug, Default)]
pub struct WebhookSecrets {
    pub stripe: Option<SecretString>,
    pub stripe_tolerance_seconds: i64,
    pub maxio: Option<SecretString>,
    pub platform: Option<SecretString>,
}

/// The one event type the platform sends.
pub const PLATFORM_CANCEL: &str = "app_subscription.cancel";

pub fn routes(state: HttpState) -> Router<HttpState> {
    Router::new()
        .route("/webhooks/stripe", post(stripe))
        .route("/webhooks/maxio", post(maxio))
        .route("/webhooks/platform", post(platform))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(super::MAX_WEBHOOK_BYTES))
        .route_layer(axum::middleware::from_fn_with_state(state, counted))
}

/// Counts every delivery by provider and by how it was answered.
async fn counted(
    State(state): State<HttpState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let provider = match request.uri().path() {
        "/webhooks/stripe" => Sender::Provider(Provider::Stripe).as_str(),
        "/webhooks/maxio" => Sender::Provider(Provider::Maxio).as_str(),
        "/webhooks/platform" => Sender::Platform.as_str(),
        _ => "unknown",
    };
    let response = next.run(request).await;
    state.metrics.webhook(provider, response.status().as_u16());
    response
}

async fn stripe(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = &state.webhooks.stripe else {
        return (StatusCode::NOT_FOUND, "no Stripe webhook endpoint is configured").into_response();
    };
    let signature = headers.get("stripe-signature").and_then(|value| value.to_str().ok());
    let now = state.inbox.now().timestamp();
    if let Err(error) = billing_provider_stripe::webhook::verify(
        signature,
        &body,
        secret.expose_secret(),
        now,
        state.webhooks.stripe_tolerance_seconds,
    ) {
        tracing::warn!(reason = %error, "Stripe webhook refused");
        return (StatusCode::UNAUTHORIZED, error.to_string()).into_response();
    }
    let Some(event) = billing_provider_stripe::webhook::parse_event(&body) else {
        return (StatusCode::BAD_REQUEST, "not a Stripe event").into_response();
    };
    store(
        &state,
        Sender::Provider(Provider::Stripe),
        &event.id,
        &event.event_type,
        &body,
    )
    .await
}

async fn maxio(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = &state.webhooks.maxio else {
        return (StatusCode::NOT_FOUND, "no Maxio webhook endpoint is configured").into_response();
    };
    let signature = headers
        .get(billing_provider_maxio::webhook::SIGNATURE_HEADER)
        .and_then(|value| value.to_str().ok());
    if let Err(error) = billing_provider_maxio::webhook::verify(signature, &body, secret.expose_secret()) {
        tracing::warn!(reason = %error, "Maxio webhook refused");
        return (StatusCode::UNAUTHORIZED, error.to_string()).into_response();
    }
    let Some(event) = billing_provider_maxio::webhook::parse_event(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "not a Maxio webhook (id and event are required)",
        )
            .into_response();
    };
    store(
        &state,
        Sender::Provider(Provider::Maxio),
        &event.id,
        &event.event,
        &body,
    )
    .await
}

async fn platform(State(state): State<HttpState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = &state.webhooks.platform else {
        return (StatusCode::NOT_FOUND, "no platform webhook endpoint is configured").into_response();
    };
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    // Signatures carry the sender's real time, whatever the service clock.
    if let Err(error) = billing_app::webhooks::verify(
        secret.expose_secret(),
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        chrono::Utc::now().timestamp(),
    ) {
        tracing::warn!(reason = %error, "platform webhook refused");
        return (StatusCode::UNAUTHORIZED, error.to_string()).into_response();
    }
    let event_type = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| event["type"].as_str().map(str::to_owned));
    let Some(event_type) = event_type.filter(|kind| kind == PLATFORM_CANCEL) else {
        return (
            StatusCode::BAD_REQUEST,
            "not an app_subscription.cancel event ({\"type\", \"data\"})",
        )
            .into_response();
    };
    let Some(id) = header("webhook-id") else {
        return (StatusCode::BAD_REQUEST, "webhook-id is missing").into_response();
    };
    store(&state, Sender::Platform, id, &event_type, &body).await
}

async fn store(state: &HttpState, sender: Sender, event_id: &str, event_type: &str, body: &[u8]) -> Response {
    let Ok(payload) = String::from_utf8(body.to_vec()) else {
        return (StatusCode::BAD_REQUEST, "the body is not UTF-8").into_response();
    };
    match state.inbox.receive(sender, event_id, event_type, payload).await {
        Ok(true) => (StatusCode::OK, "stored").into_response(),
        Ok(false) => (StatusCode::OK, "duplicate").into_response(),
        Err(error) => {
            tracing::error!(sender = sender.as_str(), event_id, error = %error, "webhook could not be stored");
            (StatusCode::SERVICE_UNAVAILABLE, "not stored; deliver again later").into_response()
        }
    }
}
