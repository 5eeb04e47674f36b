//! `GET /metrics`: every metric of the process in the Prometheus text format,
//! the gauges sampled from the database for this scrape.

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use super::HttpState;

pub const PATH: &str = "/metrics";

pub fn routes() -> Router<HttpState> {
    Router::new().route(PATH, get(metrics))
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    state.metrics.sample(&state.store, state.inbox.now()).await;
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.prometheus_text(),
    )
}
