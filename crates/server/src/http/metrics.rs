//! `GET /metrics`: every metric of the process in the Prometheus text format,
//! the gauges sampled from the database for this scrape. A database that
//! does not answer within [`SAMPLE_TIMEOUT`] leaves the last sample: a scrape
//! always answers, and promptly.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use super::HttpState;

pub const PATH: &str = "/metrics";

/// Well inside a Prometheus scrape timeout (10 s by default).
pub const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<HttpState> {
    Router::new().route(PATH, get(metrics))
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let sampled = tokio::time::timeout(SAMPLE_TIMEOUT, state.metrics.sample(&state.store, state.inbox.now())).await;
    if sampled.is_err() {
        tracing::debug!("metrics sample timed out; serving the last one");
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.prometheus_text(),
    )
}
