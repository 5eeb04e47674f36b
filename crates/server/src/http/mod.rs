//! The HTTP side, served beside gRPC on `server.http_addr`: the checkout
//! consent page and the providers' inbound webhooks.

mod checkout;
mod webhooks;

use axum::Router;
use billing_app::{Checkout, Inbox};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
pub use webhooks::WebhookSecrets;

/// What the HTTP handlers share.
#[derive(Clone, Debug)]
pub struct HttpState {
    pub checkout: Checkout,
    /// The origin of `server.public_url` (`https://billing.example.com`):
    /// forms are accepted only from it.
    pub public_origin: String,
    pub inbox: Inbox,
    pub webhooks: WebhookSecrets,
}

pub fn router(state: HttpState) -> Router {
    checkout::routes().merge(webhooks::routes()).with_state(state)
}

/// Serves until `shutdown`, then lets in-flight requests finish.
pub async fn serve(listener: TcpListener, state: HttpState, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
