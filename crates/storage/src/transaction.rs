//! One transaction ([`Tx`]): the repositories inside it, savepoints, and a
//! commit that publishes the events it wrote and drops the entitlements it
//! rewrote from this replica's cache.

use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseTransaction, Statement, TransactionTrait};

use crate::{
    Backend, BillingStore, CatalogStore, CheckoutStore, ENTITLEMENTS_CHANNEL, IdempotencyStore, InboxStore, JobStore,
    NewEvent, Queue, StorageError, SubscriptionStore, WebhookStore, entitlements, events,
};

/// One transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    pub(crate) txn: DatabaseTransaction,
    pub(crate) backend: Backend,
    /// Ends when the transaction does; `db.transaction.outcome` is `commit`
    /// or `error`, and absent when the transaction was rolled back.
    pub(crate) span: tracing::Span,
    /// This replica's entitlement cache.
    pub(crate) entitlements: Arc<entitlements::EntitlementCache>,
    /// Businesses whose entitlements this transaction (or a savepoint of
    /// it) rewrote: forgotten by the cache at commit.
    pub(crate) rewritten: Arc<Mutex<Vec<String>>>,
    /// Whether this transaction (or a savepoint of it) wrote events: its
    /// commit then tries to publish them (see [`Tx::commit`]).
    pub(crate) wrote_events: Arc<std::sync::atomic::AtomicBool>,
    /// Whether this is a savepoint, whose commit commits nothing yet.
    pub(crate) savepoint: bool,
}

impl Tx {
    pub async fn commit(self) -> Result<(), StorageError> {
        if !self.savepoint && self.wrote_events.load(std::sync::atomic::Ordering::Relaxed) {
            // Its events are published by this commit when no publisher is
            // at work, rather than by another transaction (and, on
            // Postgres, another flush of the log) after it.
            events::publish_in(&self.txn, self.backend, events::Turn::IfFree, events::PUBLISH_AT_COMMIT).await?;
        }
        let committed = self.txn.commit().await;
        if !self.savepoint {
            tracing::debug!(target: "billing_storage::transaction", "COMMIT");
        }
        let outcome = if committed.is_ok() { "commit" } else { "error" };
        self.span.record("db.transaction.outcome", outcome);
        // Before the caller answers (read-your-writes), and also when the
        // commit's outcome is unknown. A savepoint's list is its parent's,
        // forgotten when the parent commits.
        if !self.savepoint {
            let rewritten =
                std::mem::take(&mut *self.rewritten.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
            for business_id in &rewritten {
                self.entitlements.invalidate(business_id);
            }
        }
        committed?;
        Ok(())
    }

    /// Replaces a business's entitlements, and has every replica's cache
    /// forget them once this transaction commits. Entitlements that are
    /// already so (a renewal, a paid charge) are left alone: one read instead
    /// of a rewrite, and no cache forgets what is still true.
    pub async fn replace_entitlements(
        &self,
        business_id: &billing_domain::text::ExternalId,
        entitlements: &[billing_domain::subscription::Entitlement],
    ) -> Result<(), StorageError> {
        let mut stored = self.subscriptions().business_entitlements(business_id).await?;
        let mut wanted = entitlements.to_vec();
        stored.sort_by(|a, b| a.product_code.as_str().cmp(b.product_code.as_str()));
        wanted.sort_by(|a, b| a.product_code.as_str().cmp(b.product_code.as_str()));
        if stored == wanted {
            return Ok(());
        }
        self.subscriptions()
            .replace_entitlements(business_id, entitlements)
            .await?;
        if self.backend == Backend::Postgres {
            // Delivered at commit, to every listening replica.
            let statement = Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [ENTITLEMENTS_CHANNEL.into(), business_id.as_str().into()],
            );
            self.txn.execute_raw(statement).await?;
        }
        self.rewritten
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(business_id.as_str().to_owned());
        Ok(())
    }

    /// Writes an event (see [`Self::insert_events`]).
    pub async fn insert_event(&self, event: &NewEvent) -> Result<(), StorageError> {
        self.insert_events(std::slice::from_ref(event)).await
    }

    /// Writes events, unpublished until this transaction's commit or the
    /// next publisher numbers them (see [`Store::publish_events`]).
    pub async fn insert_events(&self, events: &[NewEvent]) -> Result<(), StorageError> {
        if events.is_empty() {
            return Ok(());
        }
        self.subscriptions().insert_events(events).await?;
        self.wrote_events.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// A savepoint inside this transaction, used as a transaction of its
    /// own: what it writes is undone when it is dropped without
    /// [`Tx::commit`], while this transaction carries on. Use this
    /// transaction again only after the savepoint is gone.
    pub async fn savepoint(&self) -> Result<Tx, StorageError> {
        let txn = self.txn.begin().await?;
        Ok(Tx {
            txn,
            backend: self.backend,
            span: tracing::info_span!(parent: &self.span, "db.savepoint", db.transaction.outcome = tracing::field::Empty),
            entitlements: self.entitlements.clone(),
            rewritten: self.rewritten.clone(),
            wrote_events: self.wrote_events.clone(),
            savepoint: true,
        })
    }

    pub fn catalog(&self) -> CatalogStore<'_, DatabaseTransaction> {
        CatalogStore::new(&self.txn, self.backend)
    }

    pub fn subscriptions(&self) -> SubscriptionStore<'_, DatabaseTransaction> {
        SubscriptionStore::new(&self.txn, self.backend)
    }

    pub fn billing(&self) -> BillingStore<'_, DatabaseTransaction> {
        BillingStore::new(&self.txn, self.backend)
    }

    pub fn checkout(&self) -> CheckoutStore<'_, DatabaseTransaction> {
        CheckoutStore::new(&self.txn, self.backend)
    }

    pub fn webhooks(&self) -> WebhookStore<'_, DatabaseTransaction> {
        WebhookStore::new(&self.txn, self.backend)
    }

    pub fn jobs(&self) -> JobStore<'_, DatabaseTransaction> {
        JobStore::new(&self.txn, self.backend)
    }

    pub fn provider_outbox(&self) -> InboxStore<'_, DatabaseTransaction> {
        InboxStore::new(&self.txn, self.backend, Queue::ProviderOutbox)
    }

    pub fn queue(&self, queue: Queue) -> InboxStore<'_, DatabaseTransaction> {
        InboxStore::new(&self.txn, self.backend, queue)
    }

    pub fn idempotency(&self) -> IdempotencyStore<'_, DatabaseTransaction> {
        IdempotencyStore::new(&self.txn, self.backend)
    }

    /// Serialises this transaction with every other one that locks the same
    /// `scope` until commit or rollback, for rules that span rows which may not
    /// exist yet (e.g. one default offering per family in a directory).
    ///
    /// Postgres takes a transaction-level advisory lock; SQLite needs nothing,
    /// as its single connection runs one transaction at a time.
    pub async fn lock(&self, scope: &str) -> Result<(), StorageError> {
        if self.backend == Backend::Sqlite {
            return Ok(());
        }
        let statement = Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [scope.into()],
        );
        self.txn.execute_raw(statement).await?;
        Ok(())
    }
}
