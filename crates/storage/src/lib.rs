//! Persistence for the billing service on SQLite (the embedded default) and
//! Postgres (production), behind types that speak the domain's language.
//!
//! Row types are private. A [`Store`] owns the connection pool; a [`Tx`] is
//! one transaction, and every state change happens inside exactly one. Both
//! hand out the same repositories (e.g. [`CatalogStore`]), so a read works the
//! same inside and outside a transaction.

mod billing;
mod catalog;
mod checkout;
mod entitlements;
mod entity;
mod error;
mod events;
mod failing;
mod gauges;
mod idempotency;
mod inbox;
mod jobs;
mod rows;
#[cfg(feature = "testing")]
pub mod seed;
mod statement;
mod subscriptions;
#[cfg(feature = "testing")]
pub mod testing;
mod transaction;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

pub use billing::{BillingStore, InvoiceFilter, StoredPaymentMethod};
use billing_migrations::{Migrator, MigratorTrait};
pub use catalog::{CatalogStore, OfferingFilter, OfferingKey};
pub use checkout::CheckoutStore;
pub use entitlements::{CacheUsage, ENTITLEMENTS_CHANNEL};
pub use error::StorageError;
pub use events::{EVENTS_CHANNEL, EventFilter, EventListener, NUMBER_EVENTS, PUBLISHER_LOCK, PublishedEvent};
pub use failing::{FailingWork, WorkKind};
pub use gauges::{Gauges, QueueGauge};
pub use idempotency::{Claim, IdempotencyKey, IdempotencyStore, StoredOutcome};
pub use inbox::{Delivery, InboxStatus, InboxStore, NewDelivery, Queue, StoredDelivery};
pub use jobs::{DueJob, JobStore};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
pub use subscriptions::{AuditEntry, NewEvent, StoredEvent, SubscriptionFilter, SubscriptionStore};
pub use transaction::Tx;
pub use webhooks::{AttemptResult, DeliveryStatus, Endpoint, WebhookDelivery, WebhookStore};

/// Which database engine a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The dialect raw statements are written in.
    pub(crate) fn dialect(self) -> DatabaseBackend {
        match self {
            Backend::Postgres => DatabaseBackend::Postgres,
            Backend::Sqlite => DatabaseBackend::Sqlite,
        }
    }

    /// OpenTelemetry's `db.system.name`.
    pub(crate) fn system_name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgresql",
            Backend::Sqlite => "sqlite",
        }
    }

    /// The clause that lets concurrent workers claim disjoint rows (SQLite
    /// runs one transaction at a time and needs none).
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        }
    }
}

/// The Postgres advisory lock key migrations run under (`billing` in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x62_696c_6c69_6e67;

/// How to connect. Its `Debug` leaves the URL out: it may hold a password.
#[derive(Clone)]
pub struct StoreOptions {
    /// `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    pub url: String,
    /// Pool size on Postgres. SQLite always uses one connection: a single
    /// writer never meets SQLITE_BUSY, and the embedded default needs no more.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before failing as
    /// unavailable.
    pub acquire_timeout: Duration,
    /// How many bytes of entitlements each replica keeps in memory
    /// (`entitlements.rs`); 0 reads every check from the database.
    pub entitlement_cache_bytes: u64,
}

/// The entitlement cache's default budget: some 50 000 businesses.
pub const DEFAULT_ENTITLEMENT_CACHE_BYTES: u64 = 16 * 1024 * 1024;

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            entitlement_cache_bytes: DEFAULT_ENTITLEMENT_CACHE_BYTES,
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.url.split_once(':').map_or("?", |(scheme, _)| scheme);
        formatter
            .debug_struct("StoreOptions")
            .field("url", &format_args!("{scheme}:<redacted>"))
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("entitlement_cache_bytes", &self.entitlement_cache_bytes)
            .finish()
    }
}

/// The connection pool. Its `Debug` names only the backend: the driver's
/// connect options hold the password.
#[derive(Clone)]
pub struct Store {
    db: DatabaseConnection,
    backend: Backend,
    entitlements: Arc<entitlements::EntitlementCache>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub async fn connect(options: &StoreOptions) -> Result<Self, StorageError> {
        let backend = if options.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut connect = ConnectOptions::new(options.url.clone());
        // No idle timeout and no maximum lifetime: with either, sqlx 0.9.0
        // runs a sweeper that a race can send into a loop that never yields,
        // at 100% CPU, starving the pool (launchbadge/sqlx#3645, fixed
        // upstream by #4289, not yet released; it hung a test here). A
        // Postgres connection idle for a while is checked before use instead
        // (below), and a SQLite one is a file handle that needs no renewing.
        connect
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            .idle_timeout(None)
            .max_lifetime(None)
            .sqlx_logging(false);
        match backend {
            Backend::Sqlite => {
                connect
                    .max_connections(1)
                    .min_connections(1)
                    .map_sqlx_sqlite_opts(|sqlite| {
                        sqlite
                            .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                            .foreign_keys(true)
                            .busy_timeout(Duration::from_secs(5))
                    });
            }
            Backend::Postgres => {
                // A connection idle for a while may have been cut (a restart,
                // a proxy); a busy one is not pinged on every checkout, which
                // would be one more round trip per transaction.
                connect
                    .max_connections(options.max_connections)
                    .test_before_acquire_if_idle_for(Duration::from_secs(1));
            }
        }
        let db = Database::connect(connect)
            .await
            .map_err(|error| error::explain_missing_database(error, &options.url))?;
        Ok(Store {
            db,
            backend,
            entitlements: Arc::new(entitlements::EntitlementCache::new(
                options.entitlement_cache_bytes,
                backend,
            )),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Brings the schema up to date.
    /// Applies every pending migration. On Postgres, concurrent callers
    /// (replicas starting together, a deploy job) take turns behind one
    /// advisory lock held by the migrating transaction: the first applies
    /// each migration once, the others then find nothing left to do. DDL is
    /// transactional there, so a failure leaves the schema as it was.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        match self.backend {
            Backend::Postgres => {
                let txn = self.db.begin().await?;
                txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))
                    .await?;
                Migrator::up(&txn, None).await?;
                txn.commit().await?;
            }
            // One connection, one writer: SQLite needs no lock.
            Backend::Sqlite => Migrator::up(&self.db, None).await?,
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.db.ping().await?;
        Ok(())
    }

    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Tx, StorageError> {
        // A child of whatever the caller is doing (an RPC, a job), lasting
        // as long as the transaction.
        let span = tracing::info_span!(
            "db.transaction",
            otel.kind = "client",
            db.system.name = self.backend.system_name(),
            db.transaction.outcome = tracing::field::Empty,
        );
        let txn = match self.backend {
            // The write lock up front: a transaction that read first and
            // wrote second could otherwise find another connection (a second
            // process on the file) wrote in between, and fail "database is
            // locked" without waiting for the busy timeout.
            Backend::Sqlite => {
                let options = TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..TransactionOptions::default()
                };
                self.db.begin_with_options(options).await?
            }
            Backend::Postgres => self.db.begin().await?,
        };
        // Beside sea-orm's statements at debug level (its `debug-print`):
        // where each transaction starts and ends.
        tracing::debug!(target: "billing_storage::transaction", "BEGIN");
        Ok(Tx {
            txn,
            backend: self.backend,
            span,
            entitlements: self.entitlements.clone(),
            rewritten: Arc::default(),
            wrote_events: Arc::default(),
            savepoint: false,
        })
    }

    pub fn catalog(&self) -> CatalogStore<'_, DatabaseConnection> {
        CatalogStore::new(&self.db, self.backend)
    }

    pub fn subscriptions(&self) -> SubscriptionStore<'_, DatabaseConnection> {
        SubscriptionStore::new(&self.db, self.backend)
    }

    pub fn billing(&self) -> BillingStore<'_, DatabaseConnection> {
        BillingStore::new(&self.db, self.backend)
    }

    pub fn checkout(&self) -> CheckoutStore<'_, DatabaseConnection> {
        CheckoutStore::new(&self.db, self.backend)
    }

    pub fn webhooks(&self) -> WebhookStore<'_, DatabaseConnection> {
        WebhookStore::new(&self.db, self.backend)
    }

    pub fn jobs(&self) -> JobStore<'_, DatabaseConnection> {
        JobStore::new(&self.db, self.backend)
    }

    pub fn queue(&self, queue: Queue) -> InboxStore<'_, DatabaseConnection> {
        InboxStore::new(&self.db, self.backend, queue)
    }

    pub fn inbox(&self) -> InboxStore<'_, DatabaseConnection> {
        self.queue(Queue::WebhookInbox)
    }

    pub fn provider_outbox(&self) -> InboxStore<'_, DatabaseConnection> {
        self.queue(Queue::ProviderOutbox)
    }

    pub fn idempotency(&self) -> IdempotencyStore<'_, DatabaseConnection> {
        IdempotencyStore::new(&self.db, self.backend)
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(self) -> Result<(), StorageError> {
        self.db.close().await?;
        Ok(())
    }
}

#[cfg(test)]
mod debug_tests {
    use super::StoreOptions;

    #[test]
    fn options_debug_leaves_the_password_out() {
        let options = StoreOptions::new("postgres://billing:hunter2@db.internal/billing");
        let printed = format!("{options:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("db.internal"),
            "{printed}"
        );
        assert!(printed.contains("postgres:<redacted>"), "{printed}");
    }
}
