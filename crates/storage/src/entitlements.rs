//! Entitlements served from memory: `CheckEntitlement` is asked on every
//! page a platform's apps serve, so each replica keeps recently asked
//! businesses' entitlements in a cache bounded in bytes, with these rules:
//!
//! - **Read-your-writes on the committing replica.** A transaction that
//!   rewrites a business's entitlements ([`crate::Tx::replace_entitlements`])
//!   drops that business from this replica's cache when it commits, before
//!   the caller can answer; the next read loads the table.
//! - **Other replicas within a second (Postgres).** The same transaction
//!   notifies [`ENTITLEMENTS_CHANNEL`] with the business id; every replica's
//!   listener drops it. A listener that loses its connection, or whose
//!   connection stops answering a ping within [`PING_TIMEOUT`] after
//!   [`QUIET`] without traffic, stops serving from memory at once (reads go
//!   to the database) until it listens again and has emptied the cache.
//! - **A miss reads the database**, so a cold or disabled cache answers the
//!   same, only slower. A load that raced an invalidation is not kept.
//!
//! SQLite serves one process, so its cache is in sync from the start.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use billing_domain::subscription::Entitlement;
use billing_domain::text::{Code, ExternalId};
use sea_orm::sqlx::postgres::PgListener;

use crate::error::StorageError;
use crate::{Backend, Store};

/// The Postgres channel a commit that rewrote a business's entitlements
/// notifies, with the business id as payload.
pub const ENTITLEMENTS_CHANNEL: &str = "billing_entitlements";

/// How long the listener waits without a notification before it pings.
const QUIET: Duration = Duration::from_millis(250);
/// How long a ping may take before the connection counts as lost.
const PING_TIMEOUT: Duration = Duration::from_millis(500);
/// The ping, recognisable in `pg_stat_activity`.
const PING: &str = "SELECT 1 /* billing entitlements listener */";

type Entries = quick_cache::sync::Cache<String, Arc<[Entitlement]>, Weight>;

/// The cache of one replica (one [`Store`] and its clones).
pub(crate) struct EntitlementCache {
    /// `None` when configured off (a budget of zero bytes).
    entries: Option<Entries>,
    /// Bumped by every invalidation: a load that saw another number before
    /// it read the database may hold an older answer and is not kept.
    epoch: AtomicU64,
    /// Whether invalidations are reaching this replica; when not, reads
    /// bypass the cache.
    synced: AtomicBool,
}

/// Weighs an entry by the bytes it holds, roughly.
#[derive(Clone, Copy)]
struct Weight;

impl quick_cache::Weighter<String, Arc<[Entitlement]>> for Weight {
    fn weight(&self, key: &String, entitlements: &Arc<[Entitlement]>) -> u64 {
        entry_bytes(key, entitlements)
    }
}

/// The bytes an entry takes: the key, each entitlement with its strings,
/// and the cache's own bookkeeping.
fn entry_bytes(key: &str, entitlements: &[Entitlement]) -> u64 {
    const OVERHEAD: usize = 96;
    let strings: usize = entitlements
        .iter()
        .map(|entitlement| {
            entitlement.product_code.as_str().len()
                + entitlement.offering_code.as_ref().map_or(0, |code| code.as_str().len())
                + entitlement.subscription_id.as_ref().map_or(0, |id| id.as_str().len())
        })
        .sum();
    (OVERHEAD + key.len() + std::mem::size_of_val(entitlements) + strings) as u64
}

impl EntitlementCache {
    pub(crate) fn new(budget_bytes: u64, backend: Backend) -> Self {
        let entries = (budget_bytes > 0).then(|| {
            // quick_cache sizes its table from an estimate of the entries.
            let estimated = usize::try_from(budget_bytes / 512).unwrap_or(usize::MAX).max(16);
            Entries::with_weighter(estimated, budget_bytes, Weight)
        });
        EntitlementCache {
            entries,
            epoch: AtomicU64::new(0),
            synced: AtomicBool::new(backend == Backend::Sqlite),
        }
    }

    /// The cache when it may be used.
    fn usable(&self) -> Option<&Entries> {
        self.entries.as_ref().filter(|_| self.synced.load(Ordering::Acquire))
    }

    /// Forgets a business (its entitlements changed).
    pub(crate) fn invalidate(&self, business_id: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.remove(business_id);
        }
    }

    /// Stops serving from memory: invalidations may be missed.
    fn desync(&self) {
        self.synced.store(false, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Starts serving from memory again, empty: whatever changed while
    /// invalidations were missed is read afresh.
    fn resync(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.clear();
        }
        self.synced.store(true, Ordering::Release);
    }
}

/// What a replica's cache holds, for tests and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheUsage {
    /// Businesses held.
    pub businesses: usize,
    /// Their weight in bytes (estimated).
    pub bytes: u64,
    /// The budget in bytes.
    pub budget_bytes: u64,
    /// Whether reads are served from memory now.
    pub synced: bool,
}

impl Store {
    /// Whether `business_id` may use `product_code`: from memory when this
    /// replica holds the business, else from the database (all the
    /// business's entitlements in one read, kept for next time).
    pub async fn entitlement(
        &self,
        business_id: &ExternalId,
        product_code: &Code,
    ) -> Result<Option<Entitlement>, StorageError> {
        let find = |all: &[Entitlement]| {
            all.iter()
                .find(|entitlement| &entitlement.product_code == product_code)
                .cloned()
        };
        let cache = &self.entitlements;
        let Some(entries) = cache.usable() else {
            return self.subscriptions().get_entitlement(business_id, product_code).await;
        };
        if let Some(all) = entries.get(business_id.as_str()) {
            return Ok(find(&all));
        }
        let epoch = cache.epoch.load(Ordering::Acquire);
        let all: Arc<[Entitlement]> = self.subscriptions().business_entitlements(business_id).await?.into();
        entries.insert(business_id.as_str().to_owned(), all.clone());
        // An invalidation (or a lost listener) since the read began may
        // mean the read is older than the change: do not keep it. Checked
        // after the insert, so an invalidation landing in between either
        // sees the entry and removes it or is seen here.
        if cache.epoch.load(Ordering::Acquire) != epoch || !cache.synced.load(Ordering::Acquire) {
            entries.remove(business_id.as_str());
        }
        Ok(find(&all))
    }

    /// What this replica's entitlement cache holds.
    pub fn entitlement_cache_usage(&self) -> CacheUsage {
        let cache = &self.entitlements;
        CacheUsage {
            businesses: cache.entries.as_ref().map_or(0, Entries::len),
            bytes: cache.entries.as_ref().map_or(0, Entries::weight),
            budget_bytes: cache.entries.as_ref().map_or(0, Entries::capacity),
            synced: cache.synced.load(Ordering::Acquire),
        }
    }

    /// Keeps this replica's entitlement cache in step with commits on every
    /// replica until `stop` completes (Postgres; on SQLite it only waits).
    /// Reconnects after a lost connection, serving from the database
    /// meanwhile.
    pub async fn keep_entitlements_fresh(&self, stop: impl Future<Output = ()>) {
        if self.backend != Backend::Postgres || self.entitlements.entries.is_none() {
            return stop.await;
        }
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                lost = self.follow_invalidations() => {
                    self.entitlements.desync();
                    tracing::warn!(error = %lost, "entitlement notifications lost: serving entitlements from the database until listening again");
                    tokio::select! {
                        () = &mut stop => return,
                        () = tokio::time::sleep(QUIET) => {}
                    }
                }
            }
        }
    }

    /// Listens, then serves from memory while the connection lives;
    /// returns why it stopped.
    async fn follow_invalidations(&self) -> StorageError {
        let pool = self.db.get_postgres_connection_pool();
        let mut listener = match PgListener::connect_with(pool).await {
            Ok(listener) => listener,
            Err(error) => return lost(error),
        };
        // Reconnecting behind our back would hide missed notifications.
        listener.eager_reconnect(false);
        if let Err(error) = listener.listen(ENTITLEMENTS_CHANNEL).await {
            return lost(error);
        }
        // Listening from here on: what changed before is read afresh.
        self.entitlements.resync();
        tracing::debug!("entitlement cache following commits");
        loop {
            match tokio::time::timeout(QUIET, listener.try_recv()).await {
                Ok(Ok(Some(notification))) => self.entitlements.invalidate(notification.payload()),
                Ok(Ok(None)) => return lost("connection lost"),
                Ok(Err(error)) => return lost(error),
                Err(_quiet) => {
                    match tokio::time::timeout(PING_TIMEOUT, sea_orm::sqlx::query(PING).execute(&mut listener)).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(error)) => return lost(error),
                        Err(_) => return lost("ping unanswered"),
                    }
                }
            }
        }
    }
}

/// The listener's connection is gone, or as good as gone.
fn lost(why: impl std::fmt::Display) -> StorageError {
    StorageError::connection_lost(format!("entitlement listener: {why}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use billing_domain::ids::SubscriptionId;
    use billing_domain::subscription::SubscriberStatus;

    use super::*;

    fn entitlement(product: &str) -> Entitlement {
        Entitlement {
            product_code: Code::parse(product).unwrap(),
            entitled: true,
            subscription_id: Some(SubscriptionId::from_uuid(uuid::Uuid::now_v7())),
            offering_code: Some(Code::parse("pro").unwrap()),
            subscriber_status: SubscriberStatus::FirstTime,
            in_grace_period: false,
            expiration_time: None,
        }
    }

    #[test]
    fn the_byte_budget_holds_with_100k_businesses() {
        let budget = 1024 * 1024;
        let cache = EntitlementCache::new(budget, Backend::Sqlite);
        let entries = cache.entries.as_ref().unwrap();
        let all: Arc<[Entitlement]> = vec![entitlement("website"), entitlement("store")].into();
        for index in 0..100_000 {
            entries.insert(format!("business-{index}"), all.clone());
        }
        assert!(entries.weight() <= budget, "{} > {budget}", entries.weight());
        let per_entry = entry_bytes("business-99999", &all);
        assert!(
            entries.len() as u64 >= budget / per_entry / 2,
            "{} entries of {per_entry} bytes in {budget}",
            entries.len()
        );
        // The most recent are the ones kept.
        assert!(entries.get("business-99999").is_some());
    }

    #[test]
    fn an_invalidation_forgets_and_a_lost_listener_bypasses() {
        let cache = EntitlementCache::new(1 << 20, Backend::Postgres);
        assert!(cache.usable().is_none(), "Postgres starts unsynced");
        cache.resync();
        let entries = cache.usable().unwrap();
        entries.insert("acme".to_owned(), vec![entitlement("website")].into());
        let before = cache.epoch.load(Ordering::Acquire);
        cache.invalidate("acme");
        assert!(entries.get("acme").is_none());
        assert!(cache.epoch.load(Ordering::Acquire) > before);
        entries.insert("acme".to_owned(), vec![entitlement("website")].into());
        cache.desync();
        assert!(cache.usable().is_none());
        cache.resync();
        assert_eq!(cache.usable().unwrap().len(), 0, "a resync starts empty");
    }

    #[test]
    fn a_zero_budget_turns_the_cache_off() {
        let cache = EntitlementCache::new(0, Backend::Sqlite);
        assert!(cache.usable().is_none());
    }
}
