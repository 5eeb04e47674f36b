//! The published event stream. Events are written by the transaction of
//! the change they describe, unpublished; [`Store::publish_events`] then
//! numbers committed events in one sequence, one publisher at a time
//! (a Postgres advisory lock across replicas), so the published order is
//! the order events became visible: a reader that has seen sequence `n`
//! never finds a new event below `n`, even when an older transaction
//! committed late.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Statement};

use crate::entity::outbox_events;
use crate::error::StorageError;
use crate::{Backend, Store};

/// Which events a reader wants; empty fields filter nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub business_id: String,
    pub directory_id: String,
    pub subscription_id: String,
    /// Event types (`subscription.started`, …); empty: all.
    pub types: Vec<String>,
}

/// An event as readers see it.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedEvent {
    /// Its place in the stream, from 1, without gaps.
    pub sequence: i64,
    pub id: String,
    pub event_type: String,
    pub business_id: String,
    pub directory_id: String,
    pub subscription_id: String,
    pub occur_time: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// The Postgres channel every commit that wrote events notifies, so readers
/// on any replica wake at once (they also poll, which is all SQLite has).
pub const EVENTS_CHANNEL: &str = "billing_events";

/// Wake-ups from [`EVENTS_CHANNEL`] (Postgres only).
pub struct EventListener(sea_orm::sqlx::postgres::PgListener);

impl EventListener {
    /// Waits for the next commit that wrote events. After an error the
    /// listener reconnects on the next call; wake-ups meanwhile are lost
    /// (readers poll too).
    pub async fn next(&mut self) -> Result<(), StorageError> {
        self.0.recv().await.map(drop).map_err(StorageError::connection_lost)
    }
}

/// The key publishers take turns on (Postgres advisory lock).
pub const PUBLISHER_LOCK: i64 = 0x6269_6c6c_6576_7473; // "billevts"

/// Numbers up to `$1` unpublished events after the last published one, in
/// the order they were written. Only the holder of the publishers' turn runs
/// it.
pub const NUMBER_EVENTS: &str = "UPDATE outbox_events SET published_sequence = numbered.published \
     FROM ( \
       SELECT sequence, \
         (SELECT COALESCE(MAX(published_sequence), 0) FROM outbox_events) \
           + ROW_NUMBER() OVER (ORDER BY sequence) AS published \
       FROM outbox_events WHERE published_sequence IS NULL \
       ORDER BY sequence LIMIT $1 \
     ) AS numbered \
     WHERE outbox_events.sequence = numbered.sequence";

/// Most events a committing transaction numbers.
pub(crate) const PUBLISH_AT_COMMIT: u64 = 1_000;

/// Whether a publisher waits for its turn or leaves the work to whoever
/// has it.
pub(crate) enum Turn {
    Wait,
    IfFree,
}

/// Numbers up to `limit` committed (or written by `conn`'s own
/// transaction), unpublished events after the last published one, holding
/// the publisher's turn until `conn`'s transaction ends; returns how many.
/// With [`Turn::IfFree`] it numbers nothing while another transaction holds
/// the turn (that one, or the next background round, numbers them).
pub(crate) async fn publish_in(
    conn: &impl ConnectionTrait,
    backend: Backend,
    turn: Turn,
    limit: u64,
) -> Result<u64, StorageError> {
    if backend == Backend::Postgres {
        // Its own statement: the numbering below must see (in a snapshot
        // taken after the turn was granted) what the previous holder
        // numbered.
        let sql = match turn {
            Turn::Wait => "SELECT pg_advisory_xact_lock($1) IS NOT NULL AS mine",
            Turn::IfFree => "SELECT pg_try_advisory_xact_lock($1) AS mine",
        };
        let row = conn
            .query_one_raw(backend.statement(sql, [PUBLISHER_LOCK.into()]))
            .await?;
        let mine = match row {
            Some(row) => row.try_get::<bool>("", "mine")?,
            None => false,
        };
        if !mine {
            return Ok(0);
        }
    }
    // SQLite has one writer: its transaction is the turn.
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let published = conn
        .execute_raw(backend.statement(NUMBER_EVENTS, [limit.into()]))
        .await?
        .rows_affected();
    Ok(published)
}

impl Store {
    /// On Postgres, a listener for commits that wrote events; `None` on
    /// SQLite (one process: readers poll).
    pub async fn listen_events(&self) -> Result<Option<EventListener>, StorageError> {
        if self.backend() != Backend::Postgres {
            return Ok(None);
        }
        let pool = self.db.get_postgres_connection_pool();
        let unavailable = StorageError::connection_lost;
        let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(pool)
            .await
            .map_err(unavailable)?;
        listener.listen(EVENTS_CHANNEL).await.map_err(unavailable)?;
        Ok(Some(EventListener(listener)))
    }

    /// Numbers up to `limit` committed, unpublished events, oldest first,
    /// after the last published one; returns how many.
    pub async fn publish_events(&self, limit: u64) -> Result<u64, StorageError> {
        // A read first: most calls find nothing to publish, and a write
        // transaction (SQLite's single writer) is only taken when there is.
        let waiting = self
            .db
            .query_one_raw(Statement::from_string(
                self.backend().dialect(),
                "SELECT 1 AS waiting FROM outbox_events WHERE published_sequence IS NULL LIMIT 1",
            ))
            .await?;
        if waiting.is_none() {
            return Ok(0);
        }
        let tx = self.begin().await?;
        let published = publish_in(&tx.txn, self.backend(), Turn::Wait, limit).await?;
        tx.commit().await?;
        Ok(published)
    }

    /// A transaction that holds the publishers' turn until it ends (tests:
    /// a publisher at work elsewhere).
    #[cfg(feature = "testing")]
    pub async fn hold_publishers_turn(&self) -> Result<crate::Tx, StorageError> {
        let tx = self.begin().await?;
        publish_in(&tx.txn, self.backend(), Turn::Wait, PUBLISH_AT_COMMIT).await?;
        Ok(tx)
    }

    /// The last published sequence (0 before the first).
    pub async fn last_published_sequence(&self) -> Result<i64, StorageError> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.backend().dialect(),
                "SELECT COALESCE(MAX(published_sequence), 0) AS last FROM outbox_events",
            ))
            .await?;
        Ok(match row {
            Some(row) => row.try_get("", "last")?,
            None => 0,
        })
    }

    /// A published event by id.
    pub async fn get_event(&self, id: &str) -> Result<Option<PublishedEvent>, StorageError> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let row = outbox_events::Entity::find()
            .filter(outbox_events::Column::Id.eq(id))
            .one(&self.db)
            .await?;
        Ok(row.and_then(published))
    }

    /// Published events by id (those that exist), in sequence order.
    pub async fn events_by_id(&self, ids: &[String]) -> Result<Vec<PublishedEvent>, StorageError> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let rows = outbox_events::Entity::find()
            .filter(outbox_events::Column::Id.is_in(ids.iter().cloned()))
            .filter(outbox_events::Column::PublishedSequence.is_not_null())
            .order_by_asc(outbox_events::Column::PublishedSequence)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(published).collect())
    }

    /// Published events after `after`, in sequence order, at most `limit`.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
        after: i64,
        limit: u64,
    ) -> Result<Vec<PublishedEvent>, StorageError> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait};
        let column = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        let rows = outbox_events::Entity::find()
            .filter(outbox_events::Column::PublishedSequence.gt(after))
            .apply_if(column(&filter.business_id), |query, id| {
                query.filter(outbox_events::Column::BusinessId.eq(id))
            })
            .apply_if(column(&filter.directory_id), |query, id| {
                query.filter(outbox_events::Column::DirectoryId.eq(id))
            })
            .apply_if(column(&filter.subscription_id), |query, id| {
                query.filter(outbox_events::Column::SubscriptionId.eq(id))
            })
            .apply_if(
                (!filter.types.is_empty()).then(|| filter.types.clone()),
                |query, types| query.filter(outbox_events::Column::EventType.is_in(types)),
            )
            .order_by_asc(outbox_events::Column::PublishedSequence)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().filter_map(published).collect())
    }
}

fn published(row: outbox_events::Model) -> Option<PublishedEvent> {
    Some(PublishedEvent {
        sequence: row.published_sequence?,
        id: row.id,
        event_type: row.event_type,
        business_id: row.business_id,
        directory_id: row.directory_id,
        subscription_id: row.subscription_id,
        occur_time: row.occur_time,
        payload: row.payload,
    })
}
