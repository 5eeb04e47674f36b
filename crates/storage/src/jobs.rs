//! The job queue: at most one row per subscription, due when work is next
//! due for it. Workers claim due rows with a lease; on Postgres the claim
//! skips rows other workers hold (`FOR UPDATE SKIP LOCKED`), so any number of
//! replicas can work the queue without running a job twice.
//!
//! Each claim carries a token of its own. The worker extends its lease while
//! it works ([`JobStore::extend`]), and every transaction it writes for the
//! job first checks the token is still on the row ([`JobStore::fence`]): a
//! worker whose lease ran out and was taken over writes nothing more.

use std::sync::atomic::{AtomicU64, Ordering};

use billing_domain::ids::SubscriptionId;
use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::Backend;
use crate::entity::jobs;
use crate::error::{StorageError, storable};
use crate::rows::RowContext;

/// A claimed job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueJob {
    pub subscription_id: SubscriptionId,
    pub due_time: DateTime<Utc>,
    /// Claims so far, this one included.
    pub attempts: i32,
    /// This claim's token: the job is the claimant's while the row has it.
    pub lease_token: String,
}

/// Claims made by this process so far; with the owner's name (unique per
/// worker) it makes every claim's token unique.
static CLAIMS: AtomicU64 = AtomicU64::new(0);

pub struct JobStore<'a, C> {
    conn: &'a C,
    backend: Backend,
}

impl<'a, C: ConnectionTrait> JobStore<'a, C> {
    pub(crate) fn new(conn: &'a C, backend: Backend) -> Self {
        JobStore { conn, backend }
    }

    /// Sets when work is next due for a subscription (`None`: never), and
    /// releases any lease on it.
    pub async fn schedule(
        &self,
        subscription_id: &SubscriptionId,
        due: Option<DateTime<Utc>>,
    ) -> Result<(), StorageError> {
        let Some(due_time) = due else {
            jobs::Entity::delete_by_id(subscription_id.as_str().to_owned())
                .exec(self.conn)
                .await?;
            return Ok(());
        };
        let row = jobs::ActiveModel {
            subscription_id: Set(subscription_id.as_str().to_owned()),
            due_time: Set(storable(due_time)?),
            lease_owner: Set(None),
            lease_expires: Set(None),
            lease_token: Set(None),
            attempts: Set(0),
            last_error: Set(String::new()),
        };
        let on_conflict = OnConflict::column(jobs::Column::SubscriptionId)
            .update_columns([
                jobs::Column::DueTime,
                jobs::Column::LeaseOwner,
                jobs::Column::LeaseExpires,
                jobs::Column::LeaseToken,
                jobs::Column::Attempts,
                jobs::Column::LastError,
            ])
            .to_owned();
        jobs::Entity::insert(row)
            .on_conflict(on_conflict)
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// Leases up to `limit` jobs due at `now` (earliest first) to `owner`
    /// until `now + lease`. A lease that ran out (its worker died) can be
    /// claimed again.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<DueJob>, StorageError> {
        let lock = self.backend.skip_locked();
        let token = format!("{owner}:{}", CLAIMS.fetch_add(1, Ordering::Relaxed));
        let sql = format!(
            "UPDATE jobs SET lease_owner = $1, lease_expires = $2, attempts = attempts + 1, lease_token = $5 \
             WHERE subscription_id IN ( \
               SELECT subscription_id FROM jobs \
               WHERE due_time <= $3 AND (lease_expires IS NULL OR lease_expires <= $3) \
               ORDER BY due_time, subscription_id LIMIT $4 {lock}) \
             RETURNING subscription_id, due_time, attempts"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let statement = self.backend.statement(
            sql,
            [
                owner.into(),
                storable(now + lease)?.into(),
                now.into(),
                limit.into(),
                token.as_str().into(),
            ],
        );
        let rows = self.conn.query_all_raw(statement).await?;
        let mut claimed = rows
            .into_iter()
            .map(|row| {
                let subscription_id: String = row.try_get("", "subscription_id")?;
                let due_time: DateTime<Utc> = row.try_get("", "due_time")?;
                let attempts: i32 = row.try_get("", "attempts")?;
                let subscription_id = SubscriptionId::parse(&subscription_id)
                    .map_err(|error| RowContext::new("jobs", &subscription_id).corrupt(error))?;
                Ok(DueJob {
                    subscription_id,
                    due_time,
                    attempts,
                    lease_token: token.clone(),
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        // RETURNING does not keep the subquery's order.
        claimed.sort_by(|a, b| (a.due_time, a.subscription_id.as_str()).cmp(&(b.due_time, b.subscription_id.as_str())));
        Ok(claimed)
    }

    /// Makes a job due at `due` and leased under `claim` until
    /// `lease_until`: the worker is still at work on it (a charge after a
    /// renewal), and only if it dies does the job fall to another when the
    /// lease ends.
    pub async fn hold(
        &self,
        subscription_id: &SubscriptionId,
        owner: &str,
        claim: &DueJob,
        due: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        jobs::Entity::update_many()
            .col_expr(jobs::Column::DueTime, storable(due)?.into())
            .col_expr(jobs::Column::LeaseOwner, owner.into())
            .col_expr(jobs::Column::LeaseExpires, storable(lease_until)?.into())
            .col_expr(jobs::Column::LeaseToken, claim.lease_token.as_str().into())
            .filter(jobs::Column::SubscriptionId.eq(subscription_id.as_str()))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// Extends `claim`'s lease to `lease_until`; `false` when the claim is
    /// gone (its lease ran out and another worker took the job, or the job
    /// was rescheduled).
    pub async fn extend(&self, claim: &DueJob, lease_until: DateTime<Utc>) -> Result<bool, StorageError> {
        let result = jobs::Entity::update_many()
            .col_expr(jobs::Column::LeaseExpires, storable(lease_until)?.into())
            .filter(jobs::Column::SubscriptionId.eq(claim.subscription_id.as_str()))
            .filter(jobs::Column::LeaseToken.eq(claim.lease_token.as_str()))
            .exec(self.conn)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Inside the transaction that writes for `claim`: whether the claim
    /// still holds the job, locking its row until the transaction ends (so
    /// no one can take it over before the commit).
    ///
    /// On Postgres the subscription's row is locked first, as every request
    /// that reschedules the job locks it before the job's row: in the other
    /// order a request recording its charge and a job claimed for the same
    /// invoice deadlocked (broken by Postgres after `deadlock_timeout`).
    pub async fn fence(&self, claim: &DueJob) -> Result<bool, StorageError> {
        let lock = match self.backend {
            crate::Backend::Postgres => "FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        if self.backend == crate::Backend::Postgres {
            let subscription = self.backend.statement(
                "SELECT 1 AS locked FROM subscriptions WHERE id = $1 FOR UPDATE",
                [claim.subscription_id.as_str().into()],
            );
            self.conn.query_one_raw(subscription).await?;
        }
        let statement = self.backend.statement(
            format!("SELECT 1 AS held FROM jobs WHERE subscription_id = $1 AND lease_token = $2 {lock}"),
            [claim.subscription_id.as_str().into(), claim.lease_token.as_str().into()],
        );
        Ok(self.conn.query_one_raw(statement).await?.is_some())
    }

    /// Gives back jobs `owner` claimed but never started (a worker that is
    /// stopping): free to claim at once, their claim not counted as an
    /// attempt.
    pub async fn unclaim(&self, subscription_ids: &[SubscriptionId], owner: &str) -> Result<u64, StorageError> {
        if subscription_ids.is_empty() {
            return Ok(0);
        }
        let result = jobs::Entity::update_many()
            .col_expr(jobs::Column::LeaseOwner, Option::<String>::None.into())
            .col_expr(jobs::Column::LeaseExpires, Option::<DateTime<Utc>>::None.into())
            .col_expr(jobs::Column::LeaseToken, Option::<String>::None.into())
            .col_expr(
                jobs::Column::Attempts,
                sea_orm::sea_query::ExprTrait::sub(sea_orm::sea_query::Expr::col(jobs::Column::Attempts), 1),
            )
            .filter(jobs::Column::SubscriptionId.is_in(subscription_ids.iter().map(SubscriptionId::as_str)))
            .filter(jobs::Column::LeaseOwner.eq(owner))
            .exec(self.conn)
            .await?;
        Ok(result.rows_affected)
    }

    /// Gives a job back after a failure, due again at `retry_at`; `false`
    /// (nothing written) when the claim is gone.
    pub async fn release(&self, claim: &DueJob, retry_at: DateTime<Utc>, error: &str) -> Result<bool, StorageError> {
        let result = jobs::Entity::update_many()
            .col_expr(jobs::Column::LeaseOwner, Option::<String>::None.into())
            .col_expr(jobs::Column::LeaseExpires, Option::<DateTime<Utc>>::None.into())
            .col_expr(jobs::Column::LeaseToken, Option::<String>::None.into())
            .col_expr(jobs::Column::DueTime, storable(retry_at)?.into())
            .col_expr(jobs::Column::LastError, error.into())
            .filter(jobs::Column::SubscriptionId.eq(claim.subscription_id.as_str()))
            .filter(jobs::Column::LeaseToken.eq(claim.lease_token.as_str()))
            .exec(self.conn)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// The earliest due time at or before `until` of a job nobody holds.
    pub async fn next_due_time(&self, until: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StorageError> {
        let due: Option<DateTime<Utc>> = jobs::Entity::find()
            .select_only()
            .column(jobs::Column::DueTime)
            .filter(jobs::Column::DueTime.lte(until))
            .filter(jobs::Column::LeaseOwner.is_null())
            .order_by_asc(jobs::Column::DueTime)
            .into_tuple()
            .one(self.conn)
            .await?;
        Ok(due)
    }

    /// When work is next due for a subscription, if ever.
    pub async fn due_time_of(&self, subscription_id: &SubscriptionId) -> Result<Option<DateTime<Utc>>, StorageError> {
        let job = jobs::Entity::find_by_id(subscription_id.as_str().to_owned())
            .one(self.conn)
            .await?;
        Ok(job.map(|job| job.due_time))
    }
}
