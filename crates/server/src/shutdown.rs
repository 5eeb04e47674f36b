//! A rollout's stop, in bounded stages: on SIGTERM health turns NOT_SERVING
//! at once (liveness stays SERVING) and the job worker stops claiming; the
//! server keeps serving for `server.shutdown_delay_seconds` while endpoints
//! drain; then it refuses new connections and gives in-flight requests and
//! the job in hand `server.shutdown_grace_seconds` to finish.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::health;

/// A token cancelled `delay` after `shutdown`, once health has turned
/// NOT_SERVING: the moment to stop accepting connections.
pub fn stop_accepting_after(
    shutdown: &CancellationToken,
    reporter: HealthReporter,
    delay: Duration,
) -> CancellationToken {
    let stop_accepting = CancellationToken::new();
    let (shutdown, token) = (shutdown.clone(), stop_accepting.clone());
    tokio::spawn(async move {
        shutdown.cancelled().await;
        health::set_all(&reporter, ServingStatus::NotServing).await;
        tracing::info!(
            delay_seconds = delay.as_secs(),
            "shutting down: reporting NOT_SERVING, serving on while endpoints drain"
        );
        tokio::time::sleep(delay).await;
        tracing::info!("shutting down: refusing new connections, finishing in-flight work");
        token.cancel();
    });
    stop_accepting
}

/// Waits for `task` at most `limit`; past it, the task is abandoned (and
/// logged) so that the process still exits in bounded time.
pub async fn join_within<T>(what: &str, task: JoinHandle<T>, limit: Duration) -> Option<T> {
    match tokio::time::timeout(limit, task).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            tracing::error!(task = what, error = %error, "task ended abnormally");
            None
        }
        Err(_) => {
            tracing::warn!(
                task = what,
                limit_seconds = limit.as_secs(),
                "task outlived the shutdown grace period"
            );
            None
        }
    }
}
