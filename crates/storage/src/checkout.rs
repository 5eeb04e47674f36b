//! Checkout sessions, found by id or by the hash of their token.

use billing_domain::checkout::{
    CheckoutFailure, CheckoutKind, CheckoutSession, CheckoutStatus, Decision, Order, ReturnUrl,
};
use billing_domain::ids::{CheckoutSessionId, SubscriptionId};
use billing_domain::subscription::ComponentQuantityDraft;
use billing_domain::text::{Code, ExternalId};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait};
use serde::{Deserialize, Serialize};

use crate::Backend;
use crate::entity::checkout_sessions;
use crate::error::StorageError;
use crate::rows::RowContext;

/// A requested component quantity as a session stores it (a draft: the
/// quantity is checked when the order is carried out).
#[derive(Serialize, Deserialize)]
struct ComponentDraftJson {
    code: String,
    quantity: i64,
}

pub struct CheckoutStore<'a, C> {
    conn: &'a C,
    backend: Backend,
}

impl<'a, C: ConnectionTrait> CheckoutStore<'a, C> {
    pub(crate) fn new(conn: &'a C, backend: Backend) -> Self {
        CheckoutStore { conn, backend }
    }

    pub async fn insert_session(&self, session: &CheckoutSession) -> Result<(), StorageError> {
        checkout_sessions::Entity::insert(to_row(session)?)
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// Writes every field of a session that exists.
    pub async fn update_session(&self, session: &CheckoutSession) -> Result<(), StorageError> {
        checkout_sessions::Entity::update(to_row(session)?)
            .exec(self.conn)
            .await?;
        Ok(())
    }

    /// The session with this id; with `for_update`, locked on Postgres like
    /// [`Self::find_by_token_hash`].
    pub async fn get_session(
        &self,
        id: &CheckoutSessionId,
        for_update: bool,
    ) -> Result<Option<CheckoutSession>, StorageError> {
        let lock = for_update && self.backend == Backend::Postgres;
        checkout_sessions::Entity::find_by_id(id.as_str().to_owned())
            .apply_if(lock.then_some(()), |query, ()| query.lock_exclusive())
            .one(self.conn)
            .await?
            .map(from_row)
            .transpose()
    }

    /// The sessions waiting on `subscription_id`'s first charge, locked
    /// until the transaction ends on Postgres.
    pub async fn pending_for(&self, subscription_id: &SubscriptionId) -> Result<Vec<CheckoutSession>, StorageError> {
        let lock = self.backend == Backend::Postgres;
        checkout_sessions::Entity::find()
            .filter(checkout_sessions::Column::ResultSubscriptionId.eq(subscription_id.as_str()))
            .filter(checkout_sessions::Column::Status.eq(CheckoutStatus::Pending.as_str()))
            .apply_if(lock.then_some(()), |query, ()| query.lock_exclusive())
            .all(self.conn)
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }

    /// The session whose token hashes to `token_hash`; with `for_update`, on
    /// Postgres the row stays locked until the transaction ends, so two
    /// answers to one session are taken one after the other.
    pub async fn find_by_token_hash(
        &self,
        token_hash: &str,
        for_update: bool,
    ) -> Result<Option<CheckoutSession>, StorageError> {
        let lock = for_update && self.backend == Backend::Postgres;
        checkout_sessions::Entity::find()
            .filter(checkout_sessions::Column::TokenHash.eq(token_hash))
            .apply_if(lock.then_some(()), |query, ()| query.lock_exclusive())
            .one(self.conn)
            .await?
            .map(from_row)
            .transpose()
    }
}

fn to_row(session: &CheckoutSession) -> Result<checkout_sessions::ActiveModel, StorageError> {
    let order = &session.order;
    let components: Vec<ComponentDraftJson> = order
        .components()
        .iter()
        .map(|component| ComponentDraftJson {
            code: component.component_code.clone(),
            quantity: component.quantity,
        })
        .collect();
    let components = serde_json::to_value(components)
        .map_err(|error| RowContext::new("checkout_sessions", &session.id.to_string()).corrupt(error.to_string()))?;
    Ok(checkout_sessions::ActiveModel {
        id: Set(session.id.to_string()),
        token_hash: Set(session.token_hash.clone()),
        form_nonce: Set(session.form_nonce.clone()),
        business_id: Set(session.business_id.to_string()),
        buyer_id: Set(session.buyer_id.to_string()),
        kind: Set(session.order.kind().as_str().to_owned()),
        offering_code: Set(order.offering_code().map(Code::to_string)),
        subscription_id: Set(order.subscription_id().map(SubscriptionId::to_string)),
        currency_code: Set(order.currency_code().map(str::to_owned)),
        coupon_code: Set(order.coupon_code().map(Code::to_string)),
        components: Set(components),
        return_url: Set(session.return_url.as_str().to_owned()),
        status: Set(session.status.as_str().to_owned()),
        decision: Set(session.decision.map(|decision| decision.as_str().to_owned())),
        result_subscription_id: Set(session.result_subscription_id.as_ref().map(SubscriptionId::to_string)),
        error_reason: Set(session.failure.as_ref().map(|failure| failure.reason.clone())),
        error_message: Set(session.failure.as_ref().map(|failure| failure.message.clone())),
        create_time: Set(session.create_time),
        expire_time: Set(session.expire_time),
        decide_time: Set(session.decide_time),
        complete_time: Set(session.complete_time),
    })
}

fn from_row(row: checkout_sessions::Model) -> Result<CheckoutSession, StorageError> {
    let context = RowContext::new("checkout_sessions", &row.id);
    let corrupt = |detail: String| context.corrupt(detail);
    let code = |text: &str| Code::parse(text).map_err(|error| corrupt(error.to_string()));
    let components: Vec<ComponentDraftJson> =
        serde_json::from_value(row.components.clone()).map_err(|error| corrupt(error.to_string()))?;
    let components: Vec<ComponentQuantityDraft> = components
        .into_iter()
        .map(|component| ComponentQuantityDraft {
            component_code: component.code,
            quantity: component.quantity,
        })
        .collect();
    let kind = CheckoutKind::from_text(&row.kind).ok_or_else(|| corrupt(format!("kind {:?}", row.kind)))?;
    let subscription_id = row
        .subscription_id
        .as_deref()
        .map(SubscriptionId::parse)
        .transpose()
        .map_err(|error| corrupt(error.to_string()))?;
    let order = match (kind, subscription_id, row.offering_code.as_deref()) {
        (CheckoutKind::NewSubscription, None, Some(offering_code)) => Order::Purchase {
            offering_code: code(offering_code)?,
            currency_code: row.currency_code.clone().unwrap_or_default(),
            components,
            coupon_code: row.coupon_code.as_deref().map(code).transpose()?,
        },
        (CheckoutKind::UpdateSubscription, Some(subscription_id), Some(offering_code)) => Order::PlanChange {
            subscription_id,
            offering_code: code(offering_code)?,
        },
        (CheckoutKind::UpdateSubscription, Some(subscription_id), None) => Order::Components {
            subscription_id,
            components,
        },
        _ => return Err(corrupt("the order's fields do not fit its kind".to_owned())),
    };
    let failure = match (&row.error_reason, &row.error_message) {
        (Some(reason), message) => Some(CheckoutFailure {
            reason: reason.clone(),
            message: message.clone().unwrap_or_default(),
        }),
        (None, _) => None,
    };
    Ok(CheckoutSession {
        id: CheckoutSessionId::parse(&row.id).map_err(|error| corrupt(error.to_string()))?,
        token_hash: row.token_hash.clone(),
        form_nonce: row.form_nonce.clone(),
        business_id: ExternalId::parse(&row.business_id).map_err(|error| corrupt(error.to_string()))?,
        buyer_id: ExternalId::parse(&row.buyer_id).map_err(|error| corrupt(error.to_string()))?,
        order,
        return_url: ReturnUrl::restore(&row.return_url).map_err(|error| corrupt(error.to_string()))?,
        status: CheckoutStatus::from_text(&row.status).ok_or_else(|| corrupt(format!("status {:?}", row.status)))?,
        decision: match row.decision.as_deref() {
            None => None,
            Some(text) => Some(Decision::from_text(text).ok_or_else(|| corrupt(format!("decision {text:?}")))?),
        },
        result_subscription_id: row
            .result_subscription_id
            .as_deref()
            .map(SubscriptionId::parse)
            .transpose()
            .map_err(|error| corrupt(error.to_string()))?,
        failure,
        create_time: row.create_time,
        expire_time: row.expire_time,
        decide_time: row.decide_time,
        complete_time: row.complete_time,
    })
}
