//! Businesses, subscriptions, entitlements, and the audit and outbox rows
//! written with every change.

use billing_domain::ids::SubscriptionId;
use billing_domain::subscription::{Business, Entitlement, Subscription, SubscriptionState};
use billing_domain::text::{Code, ExternalId};
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};

use crate::entity::{audit_entries, businesses, entitlements, outbox_events, subscriptions};
use crate::error::StorageError;
use crate::rows::RowContext;
use crate::{Backend, catalog, rows};

/// Rows one multi-row insert writes at most: well under SQLite's limit of
/// host parameters per statement (32 766), whatever the columns.
pub(crate) const ROWS_PER_INSERT: usize = 500;

/// Which subscriptions a list returns; unset fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionFilter {
    pub business_id: Option<ExternalId>,
    pub directory_id: Option<ExternalId>,
    /// Any of these states; empty = every state.
    pub states: Vec<SubscriptionState>,
    pub offering_code: Option<Code>,
    /// Only PURCHASED and CANCELED (not yet expired) ones.
    pub active_only: bool,
}

/// One entry of a subscription's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// `aud_…`; sorts by time.
    pub id: String,
    pub subscription_id: SubscriptionId,
    pub business_id: ExternalId,
    /// What happened, e.g. `Cancel` or `job:renew`.
    pub action: String,
    /// Who did it (the caller, or `system` for jobs).
    pub actor: String,
    /// The idempotency key of the request, if it came from one.
    pub request_id: String,
    /// What changed, for people.
    pub detail: String,
    pub create_time: DateTime<Utc>,
}

/// An event for the outbox; the database assigns its sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// `evt_…`, the id consumers dedupe by.
    pub id: String,
    pub event_type: String,
    pub business_id: String,
    pub subscription_id: String,
    pub occur_time: DateTime<Utc>,
    /// A snapshot of the resource after the change.
    pub payload: serde_json::Value,
}

/// A stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub sequence: i64,
    pub event: NewEvent,
}

pub struct SubscriptionStore<'a, C> {
    conn: &'a C,
    backend: Backend,
}

impl<'a, C: ConnectionTrait> SubscriptionStore<'a, C> {
    pub(crate) fn new(conn: &'a C, backend: Backend) -> Self {
        SubscriptionStore { conn, backend }
    }

    pub async fn insert_business(&self, business: &Business) -> Result<(), StorageError> {
        let row = businesses::ActiveModel {
            business_id: Set(business.business_id.as_str().to_owned()),
            directory_id: Set(business.directory_id.as_str().to_owned()),
            create_time: Set(business.create_time),
        };
        businesses::Entity::insert(row).exec(self.conn).await?;
        Ok(())
    }

    pub async fn get_business(&self, business_id: &ExternalId) -> Result<Option<Business>, StorageError> {
        businesses::Entity::find_by_id(business_id.as_str().to_owned())
            .one(self.conn)
            .await?
            .map(rows::business_from_row)
            .transpose()
    }

    pub async fn insert_subscription(&self, subscription: &Subscription) -> Result<(), StorageError> {
        subscriptions::Entity::insert(rows::subscription_to_row(subscription))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// Writes every field of a subscription that exists.
    pub async fn update_subscription(&self, subscription: &Subscription) -> Result<(), StorageError> {
        subscriptions::Entity::update(rows::subscription_to_row(subscription))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    pub async fn get_subscription(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StorageError> {
        self.find_subscription(id, false).await
    }

    /// Like [`Self::get_subscription`], and on Postgres locks the row until
    /// the transaction ends: every change of a subscription goes through this,
    /// so changes of one subscription never interleave.
    pub async fn get_subscription_for_update(&self, id: &SubscriptionId) -> Result<Option<Subscription>, StorageError> {
        self.find_subscription(id, true).await
    }

    async fn find_subscription(
        &self,
        id: &SubscriptionId,
        for_update: bool,
    ) -> Result<Option<Subscription>, StorageError> {
        let lock = for_update && self.backend == Backend::Postgres;
        subscriptions::Entity::find_by_id(id.as_str().to_owned())
            .apply_if(lock.then_some(()), |query, ()| query.lock_exclusive())
            .one(self.conn)
            .await?
            .map(rows::subscription_from_row)
            .transpose()
    }

    /// Every subscription the business ever had, oldest first.
    pub async fn business_subscriptions(&self, business_id: &ExternalId) -> Result<Vec<Subscription>, StorageError> {
        subscriptions::Entity::find()
            .filter(subscriptions::Column::BusinessId.eq(business_id.as_str()))
            .order_by_asc(subscriptions::Column::Id)
            .all(self.conn)
            .await?
            .into_iter()
            .map(rows::subscription_from_row)
            .collect()
    }

    /// The subscriptions `parent` bundles, locked like
    /// [`Self::get_subscription_for_update`].
    pub async fn children_for_update(&self, parent: &SubscriptionId) -> Result<Vec<Subscription>, StorageError> {
        let lock = self.backend == Backend::Postgres;
        subscriptions::Entity::find()
            .filter(subscriptions::Column::BundledFromSubscriptionId.eq(parent.as_str()))
            .order_by_asc(subscriptions::Column::Id)
            .apply_if(lock.then_some(()), |query, ()| query.lock_exclusive())
            .all(self.conn)
            .await?
            .into_iter()
            .map(rows::subscription_from_row)
            .collect()
    }

    pub async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Subscription>, StorageError> {
        let states: Vec<&str> = filter.states.iter().map(|state| state.as_str()).collect();
        let query = subscriptions::Entity::find()
            .apply_if(filter.business_id.as_ref(), |query, id| {
                query.filter(subscriptions::Column::BusinessId.eq(id.as_str()))
            })
            .apply_if(filter.directory_id.as_ref(), |query, id| {
                query.filter(subscriptions::Column::DirectoryId.eq(id.as_str()))
            })
            .apply_if((!states.is_empty()).then_some(states), |query, states| {
                query.filter(subscriptions::Column::State.is_in(states))
            })
            .apply_if(filter.offering_code.as_ref(), |query, code| {
                query.filter(subscriptions::Column::OfferingCode.eq(code.as_str()))
            })
            .apply_if(filter.active_only.then_some(()), |query, ()| {
                query.filter(subscriptions::Column::State.ne(SubscriptionState::Expired.as_str()))
            });
        catalog::keyset_page(
            self.conn,
            query,
            subscriptions::Column::Id,
            after,
            limit,
            rows::subscription_from_row,
        )
        .await
    }

    /// Replaces the business's entitlements with `entitlements`; through
    /// [`crate::Tx::replace_entitlements`], which keeps caches in step.
    pub(crate) async fn replace_entitlements(
        &self,
        business_id: &ExternalId,
        entitlements: &[Entitlement],
    ) -> Result<(), StorageError> {
        entitlements::Entity::delete_many()
            .filter(entitlements::Column::BusinessId.eq(business_id.as_str()))
            .exec(self.conn)
            .await?;
        if entitlements.is_empty() {
            return Ok(());
        }
        let rows = entitlements
            .iter()
            .map(|entitlement| rows::entitlement_to_row(business_id, entitlement));
        entitlements::Entity::insert_many(rows).exec(self.conn).await?;
        Ok(())
    }

    /// Every entitlement of one business (what the cache keeps).
    pub async fn business_entitlements(&self, business_id: &ExternalId) -> Result<Vec<Entitlement>, StorageError> {
        entitlements::Entity::find()
            .filter(entitlements::Column::BusinessId.eq(business_id.as_str()))
            .all(self.conn)
            .await?
            .into_iter()
            .map(rows::entitlement_from_row)
            .collect()
    }

    /// One primary-key read: CheckEntitlement when the cache is off.
    pub async fn get_entitlement(
        &self,
        business_id: &ExternalId,
        product_code: &Code,
    ) -> Result<Option<Entitlement>, StorageError> {
        entitlements::Entity::find_by_id((business_id.as_str().to_owned(), product_code.as_str().to_owned()))
            .one(self.conn)
            .await?
            .map(rows::entitlement_from_row)
            .transpose()
    }

    /// Writes history entries: one statement per `ROWS_PER_INSERT` of them.
    pub async fn insert_audit_entries(&self, entries: &[AuditEntry]) -> Result<(), StorageError> {
        for chunk in entries.chunks(ROWS_PER_INSERT) {
            self.insert_audit_rows(chunk).await?;
        }
        Ok(())
    }

    async fn insert_audit_rows(&self, entries: &[AuditEntry]) -> Result<(), StorageError> {
        let rows = entries.iter().map(|entry| audit_entries::ActiveModel {
            id: Set(entry.id.clone()),
            subscription_id: Set(entry.subscription_id.as_str().to_owned()),
            business_id: Set(entry.business_id.as_str().to_owned()),
            action: Set(entry.action.clone()),
            actor: Set(entry.actor.clone()),
            request_id: Set(entry.request_id.clone()),
            detail: Set(entry.detail.clone()),
            create_time: Set(entry.create_time),
        });
        audit_entries::Entity::insert_many(rows).exec(self.conn).await?;
        Ok(())
    }

    /// A subscription's history, oldest first.
    pub async fn list_audit_entries(
        &self,
        subscription_id: &SubscriptionId,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, StorageError> {
        let query =
            audit_entries::Entity::find().filter(audit_entries::Column::SubscriptionId.eq(subscription_id.as_str()));
        catalog::keyset_page(self.conn, query, audit_entries::Column::Id, after, limit, |row| {
            let context = RowContext::new("audit_entries", &row.id);
            Ok(AuditEntry {
                subscription_id: SubscriptionId::parse(&row.subscription_id).map_err(|e| context.corrupt(e))?,
                business_id: ExternalId::parse(&row.business_id).map_err(|e| context.corrupt(e))?,
                id: row.id,
                action: row.action,
                actor: row.actor,
                request_id: row.request_id,
                detail: row.detail,
                create_time: row.create_time,
            })
        })
        .await
    }

    /// Writes an event (see [`Self::insert_events`]).
    pub async fn insert_event(&self, event: &NewEvent) -> Result<(), StorageError> {
        self.insert_events(std::slice::from_ref(event)).await
    }

    /// Writes events, unpublished (see `Store::publish_events`), each with
    /// its business's directory: one statement per `ROWS_PER_INSERT` of them.
    pub async fn insert_events(&self, events: &[NewEvent]) -> Result<(), StorageError> {
        for chunk in events.chunks(ROWS_PER_INSERT) {
            self.insert_event_rows(chunk).await?;
        }
        Ok(())
    }

    async fn insert_event_rows(&self, events: &[NewEvent]) -> Result<(), StorageError> {
        // One round trip: each business's directory is looked up by the
        // insert itself, and on Postgres the wake-up rides along (delivered
        // when, and if, this transaction commits; one per transaction
        // however many events it writes).
        const COLUMNS: usize = 6;
        let rows: Vec<String> = (0..events.len())
            .map(|index| {
                let [id, kind, business, subscription, time, payload] =
                    std::array::from_fn::<usize, COLUMNS, _>(|column| index * COLUMNS + column + 1);
                format!(
                    "(${id}, ${kind}, ${business}, \
                     COALESCE((SELECT directory_id FROM businesses WHERE business_id = ${business}), ''), \
                     ${subscription}, ${time}, ${payload})"
                )
            })
            .collect();
        let insert = format!(
            "INSERT INTO outbox_events \
             (id, event_type, business_id, directory_id, subscription_id, occur_time, payload) VALUES {}",
            rows.join(", ")
        );
        let sql = match self.backend {
            Backend::Postgres => format!(
                "WITH inserted AS ({insert} RETURNING 1) \
                 SELECT pg_notify('{}', '') WHERE EXISTS (SELECT 1 FROM inserted)",
                crate::events::EVENTS_CHANNEL
            ),
            Backend::Sqlite => insert,
        };
        let values = events.iter().flat_map(|event| -> [sea_orm::Value; COLUMNS] {
            [
                event.id.as_str().into(),
                event.event_type.as_str().into(),
                event.business_id.as_str().into(),
                event.subscription_id.as_str().into(),
                event.occur_time.into(),
                event.payload.clone().into(),
            ]
        });
        self.conn.execute_raw(self.backend.statement(sql, values)).await?;
        Ok(())
    }

    /// Events of one subscription in sequence order.
    pub async fn subscription_events(
        &self,
        subscription_id: &SubscriptionId,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        self.events(outbox_events::Column::SubscriptionId.eq(subscription_id.as_str()))
            .await
    }

    /// Events about one business (its subscriptions, invoices and checkout
    /// sessions) in sequence order.
    pub async fn business_events(&self, business_id: &ExternalId) -> Result<Vec<StoredEvent>, StorageError> {
        self.events(outbox_events::Column::BusinessId.eq(business_id.as_str()))
            .await
    }

    async fn events(&self, condition: sea_orm::sea_query::SimpleExpr) -> Result<Vec<StoredEvent>, StorageError> {
        let rows = outbox_events::Entity::find()
            .filter(condition)
            .order_by_asc(outbox_events::Column::Sequence)
            .all(self.conn)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| StoredEvent {
                sequence: row.sequence,
                event: NewEvent {
                    id: row.id,
                    event_type: row.event_type,
                    business_id: row.business_id,
                    subscription_id: row.subscription_id,
                    occur_time: row.occur_time,
                    payload: row.payload,
                },
            })
            .collect())
    }

    /// How many subscriptions the business has had.
    pub async fn count_subscriptions(&self, business_id: &ExternalId) -> Result<u64, StorageError> {
        let count = subscriptions::Entity::find()
            .filter(subscriptions::Column::BusinessId.eq(business_id.as_str()))
            .count(self.conn)
            .await?;
        Ok(count)
    }

    /// When the last provider event applied to a subscription happened.
    pub async fn last_provider_event_time(
        &self,
        subscription_id: &SubscriptionId,
    ) -> Result<Option<DateTime<Utc>>, StorageError> {
        let statement = self.backend.statement(
            "SELECT last_event_time FROM provider_states WHERE subscription_id = $1",
            [subscription_id.as_str().into()],
        );
        let row = self.conn.query_one_raw(statement).await?;
        Ok(match row {
            Some(row) => Some(row.try_get("", "last_event_time")?),
            None => None,
        })
    }

    pub async fn set_last_provider_event_time(
        &self,
        subscription_id: &SubscriptionId,
        provider: &str,
        time: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let statement = self.backend.statement(
            "INSERT INTO provider_states (subscription_id, provider, last_event_time) VALUES ($1, $2, $3) \
             ON CONFLICT (subscription_id) DO UPDATE SET last_event_time = excluded.last_event_time",
            [subscription_id.as_str().into(), provider.into(), time.into()],
        );
        self.conn.execute_raw(statement).await?;
        Ok(())
    }
}
