//! Idempotency keys: the first outcome of a request, kept per caller and key.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use crate::Backend;
use crate::entity::idempotency_keys;
use crate::error::{StorageError, is_lock_timeout};

/// A request's idempotency key and what identifies its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Who sent it: keys are scoped per caller.
    pub caller: String,
    pub request_id: String,
    /// The RPC, e.g. `CreateSubscription`.
    pub operation: String,
    /// A digest of the request body.
    pub request_hash: String,
}

/// What a key already holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOutcome {
    pub operation: String,
    pub request_hash: String,
    /// The encoded response of a success.
    pub response: Option<Vec<u8>>,
    /// The encoded error of a failure.
    pub error: Option<String>,
    /// The answer as committed while the request still waited on a charge:
    /// what a repeat gets if the first attempt died before its outcome.
    pub provisional_response: Option<Vec<u8>>,
    pub create_time: DateTime<Utc>,
}

impl From<idempotency_keys::Model> for StoredOutcome {
    fn from(row: idempotency_keys::Model) -> Self {
        StoredOutcome {
            operation: row.operation,
            request_hash: row.request_hash,
            response: row.response,
            error: row.error,
            provisional_response: row.provisional_response,
            create_time: row.create_time,
        }
    }
}

/// The result of claiming a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: this transaction runs the request and records its outcome.
    Claimed,
    /// An earlier request with this key committed this outcome.
    Existing(StoredOutcome),
    /// A request with this key is still running (it held the key longer than
    /// this one was willing to wait). The transaction is unusable: drop it.
    InUse,
}

pub struct IdempotencyStore<'a, C> {
    conn: &'a C,
    backend: Backend,
}

impl<'a, C: ConnectionTrait> IdempotencyStore<'a, C> {
    pub(crate) fn new(conn: &'a C, backend: Backend) -> Self {
        IdempotencyStore { conn, backend }
    }

    /// Claims `key` inside the caller's transaction. On Postgres, a
    /// concurrent transaction that claimed the same key first makes this one
    /// wait, up to `wait`, until it commits (and then see its outcome) or
    /// rolls back (and then claim it), so concurrent duplicates produce one
    /// effect and one answer. (SQLite runs one transaction at a time.)
    pub async fn claim(&self, key: &IdempotencyKey, now: DateTime<Utc>, wait: Duration) -> Result<Claim, StorageError> {
        if self.backend == Backend::Postgres {
            let millis = wait.as_millis().max(1);
            self.conn
                .execute_unprepared(&format!("SET LOCAL lock_timeout = '{millis}ms'"))
                .await?;
        }
        match self.insert_or_read(key, now).await {
            Err(error) if is_lock_timeout(&error) => Ok(Claim::InUse),
            other => Ok(other?),
        }
    }

    async fn insert_or_read(&self, key: &IdempotencyKey, now: DateTime<Utc>) -> Result<Claim, DbErr> {
        let row = idempotency_keys::ActiveModel {
            caller: Set(key.caller.clone()),
            request_id: Set(key.request_id.clone()),
            operation: Set(key.operation.clone()),
            request_hash: Set(key.request_hash.clone()),
            response: Set(None),
            error: Set(None),
            provisional_response: Set(None),
            create_time: Set(now),
        };
        let on_conflict = OnConflict::columns([idempotency_keys::Column::Caller, idempotency_keys::Column::RequestId])
            .do_nothing()
            .to_owned();
        let inserted = idempotency_keys::Entity::insert(row)
            .on_conflict(on_conflict)
            .exec_without_returning(self.conn)
            .await?;
        if inserted == 1 {
            return Ok(Claim::Claimed);
        }
        let existing = idempotency_keys::Entity::find_by_id((key.caller.clone(), key.request_id.clone()))
            .one(self.conn)
            .await?;
        // The conflicting row is gone only if its transaction rolled back
        // between our insert and read: the key is free again, but this
        // statement's snapshot cannot claim it, so report it as busy.
        let Some(existing) = existing else {
            return Ok(Claim::InUse);
        };
        Ok(Claim::Existing(existing.into()))
    }

    /// What a key holds, if it exists (a read that takes no lock).
    pub async fn find(&self, caller: &str, request_id: &str) -> Result<Option<StoredOutcome>, StorageError> {
        let row = idempotency_keys::Entity::find_by_id((caller.to_owned(), request_id.to_owned()))
            .one(self.conn)
            .await?;
        Ok(row.map(StoredOutcome::from))
    }

    /// Records the outcome of a claimed key (in the same transaction as the
    /// effect, so both or neither are kept).
    pub async fn complete(
        &self,
        key: &IdempotencyKey,
        response: Option<Vec<u8>>,
        error: Option<String>,
    ) -> Result<(), StorageError> {
        idempotency_keys::Entity::update_many()
            .col_expr(idempotency_keys::Column::Response, response.into())
            .col_expr(idempotency_keys::Column::Error, error.into())
            .filter(idempotency_keys::Column::Caller.eq(key.caller.as_str()))
            .filter(idempotency_keys::Column::RequestId.eq(key.request_id.as_str()))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// Records the answer as committed, before the outcome it waits for.
    pub async fn complete_provisionally(&self, key: &IdempotencyKey, response: Vec<u8>) -> Result<(), StorageError> {
        idempotency_keys::Entity::update_many()
            .col_expr(idempotency_keys::Column::ProvisionalResponse, Some(response).into())
            .filter(idempotency_keys::Column::Caller.eq(key.caller.as_str()))
            .filter(idempotency_keys::Column::RequestId.eq(key.request_id.as_str()))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// Forgets keys created before `before` (keys are kept at least 24 h).
    pub async fn delete_older_than(&self, before: DateTime<Utc>) -> Result<u64, StorageError> {
        let deleted = idempotency_keys::Entity::delete_many()
            .filter(idempotency_keys::Column::CreateTime.lt(before))
            .exec(self.conn)
            .await?;
        Ok(deleted.rows_affected)
    }
}
