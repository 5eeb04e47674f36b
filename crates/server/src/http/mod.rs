//! The HTTP side: the checkout consent page (later: inbound webhooks and
//! metrics), served beside gRPC on `server.http_addr`.

mod checkout;

use axum::Router;
use billing_app::Checkout;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the HTTP handlers share.
#[derive(Clone, Debug)]
pub struct HttpState {
    pub checkout: Checkout,
    /// The origin of `server.public_url` (`https://billing.example.com`):
    /// forms are accepted only from it.
    pub public_origin: String,
}

pub fn router(state: HttpState) -> Router {
    checkout::routes().with_state(state)
}

/// Serves until `shutdown`, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, state: HttpState, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
