//! Subscriptions whose directory is billed by an engine provider (Maxio):
//! every change is committed here first, with the operation it owes the
//! provider written to the provider outbox in the same transaction; the
//! operation then runs outside any transaction, right after the request and
//! again from the job until it is done. A crash in between is repaired by
//! that job; operations are safe to repeat (a create carries our id as its
//! reference and finds the first one).

use std::sync::Arc;

use billing_domain::Money;
use billing_domain::catalog::Offering;
use billing_domain::ids::SubscriptionId;
use billing_domain::invoice::{InvoiceDraft, InvoiceLine, LineKind};
use billing_domain::period::{Period, utc_date};
use billing_domain::subscription::{ComponentQuantity, Subscription};
use billing_domain::{DomainError, Provider, Reason};
use billing_provider_api::{EngineSubscription, PlanChangePreview, ProviderErrorKind, SubscriptionEngine};
use billing_storage::{Delivery, InboxStatus, NewDelivery, Queue, Store, Tx};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppError;
use crate::queue::{Failure, Lease, Stopping, drain};

/// Attempts before an operation is dead (logged for people).
const MAX_ATTEMPTS: i32 = 8;

/// What the provider is owed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum EngineOp {
    Create {
        customer_reference: String,
        product_handle: String,
        price_point_handle: Option<String>,
        components: Vec<(String, u32)>,
        coupon_code: Option<String>,
    },
    ChangePlan {
        product_handle: String,
        price_point_handle: Option<String>,
        /// At the renewal rather than now.
        delayed: bool,
    },
    SetComponent {
        handle: String,
        quantity: u32,
    },
    Cancel {
        at_period_end: bool,
        reason: String,
    },
    Reactivate,
}

impl EngineOp {
    fn name(&self) -> &'static str {
        match self {
            EngineOp::Create { .. } => "create",
            EngineOp::ChangePlan { .. } => "change_plan",
            EngineOp::SetComponent { .. } => "set_component",
            EngineOp::Cancel { .. } => "cancel",
            EngineOp::Reactivate => "reactivate",
        }
    }
}

/// The offering's product handle at Maxio (`provider_refs.maxio`), and its
/// price point (`provider_refs.maxio_price_point`).
pub(crate) fn product_handles(offering: &Offering) -> Result<(String, Option<String>), AppError> {
    let handle = offering.provider_refs.get(Provider::Maxio.as_str()).cloned().ok_or_else(|| {
        AppError::from(DomainError::field(
            "offering_code",
            Reason::FieldInvalid,
            format!(
                "offering {} has no Maxio product handle (provider_refs.maxio) but this directory is billed by Maxio",
                offering.code
            ),
        ))
    })?;
    Ok((handle, offering.provider_refs.get("maxio_price_point").cloned()))
}

pub(crate) fn create_op(subscription: &Subscription, offering: &Offering) -> Result<EngineOp, AppError> {
    let (product_handle, price_point_handle) = product_handles(offering)?;
    Ok(EngineOp::Create {
        customer_reference: subscription.business_id.to_string(),
        product_handle,
        price_point_handle,
        components: subscription
            .components
            .iter()
            .map(|component| (component.component_code.to_string(), component.quantity))
            .collect(),
        coupon_code: subscription.coupon_code.as_ref().map(ToString::to_string),
    })
}

/// The allocations that turn `before` into `after` (a removed component goes
/// to zero).
pub(crate) fn component_ops(before: &[ComponentQuantity], after: &[ComponentQuantity]) -> Vec<EngineOp> {
    let mut ops: Vec<EngineOp> = after
        .iter()
        .filter(|component| !before.contains(component))
        .map(|component| EngineOp::SetComponent {
            handle: component.component_code.to_string(),
            quantity: component.quantity,
        })
        .collect();
    ops.extend(
        before
            .iter()
            .filter(|old| !after.iter().any(|new| new.component_code == old.component_code))
            .map(|old| EngineOp::SetComponent {
                handle: old.component_code.to_string(),
                quantity: 0,
            }),
    );
    ops
}

/// The invoice a provider's migration preview describes, in this service's
/// shape: a credit for the old product's unused time, a charge for the new
/// one's, and what is due after the provider's account credit.
pub(crate) fn preview_draft(
    subscription: &Subscription,
    target: &Offering,
    preview: &PlanChangePreview,
    now: DateTime<Utc>,
) -> InvoiceDraft {
    let currency = subscription.purchase_price.currency();
    let money = |minor: i64| Money::new(minor, currency);
    let remaining = Period {
        start: utc_date(now),
        end: subscription.current_period.end,
    };
    let adjustment = preview
        .charge_minor
        .saturating_sub(preview.payment_due_minor + preview.credit_applied_minor);
    let mut lines = Vec::new();
    if adjustment != 0 {
        lines.push(InvoiceLine {
            kind: LineKind::ProrationCredit,
            description: format!("Unused time on {}", subscription.display_name),
            offering_code: Some(subscription.offering_code.clone()),
            component_code: None,
            quantity: 1,
            period: remaining,
            amount: money(-adjustment),
        });
    }
    if preview.charge_minor != 0 {
        lines.push(InvoiceLine {
            kind: LineKind::ProrationCharge,
            description: format!("Remaining time on {}", target.display_name),
            offering_code: Some(target.code.clone()),
            component_code: None,
            quantity: 1,
            period: remaining,
            amount: money(preview.charge_minor),
        });
    }
    let subtotal = money(preview.charge_minor - adjustment);
    InvoiceDraft {
        currency,
        lines,
        subtotal,
        discount: Money::zero(currency),
        total: subtotal,
        credit_applied: money(preview.credit_applied_minor),
        amount_due: money(preview.payment_due_minor),
        credit_balance_after: Money::zero(currency),
        coupon_applied: false,
    }
}

/// Writes `op` for `subscription` into the outbox, in the caller's
/// transaction.
pub(crate) async fn enqueue(
    tx: &Tx,
    subscription: &SubscriptionId,
    op: &EngineOp,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let payload =
        serde_json::to_string(op).map_err(|error| AppError::fault(format!("an engine operation: {error}")))?;
    tx.provider_outbox()
        .insert(&NewDelivery {
            id: Some(format!("op_{}", Uuid::now_v7().simple())),
            provider: Provider::Maxio.as_str().to_owned(),
            event_id: subscription.to_string(),
            event_type: op.name().to_owned(),
            payload,
            received_time: now,
        })
        .await?;
    Ok(())
}

/// Runs every operation due at `now`, oldest first, until `stopping`;
/// returns (done, failed).
pub(crate) async fn run_due(
    store: &Store,
    engine: Option<&Arc<dyn SubscriptionEngine>>,
    now: DateTime<Utc>,
    stopping: &Stopping<'_>,
) -> Result<(usize, usize), AppError> {
    let Some(engine) = engine else {
        return Ok((0, 0));
    };
    drain(
        store,
        Queue::ProviderOutbox,
        MAX_ATTEMPTS,
        now,
        stopping,
        |op| async move {
            run_one(store, engine.as_ref(), &op)
                .await
                .map(|note| (InboxStatus::Processed, note))
        },
    )
    .await
}

/// One operation; an error says whether retrying could help.
async fn run_one(store: &Store, engine: &dyn SubscriptionEngine, op: &Delivery) -> Result<String, Failure> {
    let permanent = |error: String| Failure { error, permanent: true };
    let operation: EngineOp =
        serde_json::from_str(&op.payload).map_err(|error| permanent(format!("unreadable operation: {error}")))?;
    let subscription_id = SubscriptionId::parse(&op.event_id).map_err(|error| permanent(error.to_string()))?;
    let subscription = store
        .subscriptions()
        .get_subscription(&subscription_id)
        .await
        .map_err(Failure::transient)?
        .ok_or_else(|| permanent(format!("subscription {subscription_id} is gone")))?;
    let provider_error = |error: billing_provider_api::ProviderError| Failure {
        error: error.to_string(),
        permanent: error.kind() == ProviderErrorKind::InvalidRequest,
    };
    if let EngineOp::Create {
        customer_reference,
        product_handle,
        price_point_handle,
        components,
        coupon_code,
    } = &operation
    {
        let state = engine
            .create_subscription(&EngineSubscription {
                reference: subscription_id.to_string(),
                customer_reference: customer_reference.clone(),
                product_handle: product_handle.clone(),
                price_point_handle: price_point_handle.clone(),
                components: components.clone(),
                coupon_code: coupon_code.clone(),
            })
            .await
            .map_err(provider_error)?;
        link(
            store,
            &subscription_id,
            &state.provider_id,
            Lease::row(Queue::ProviderOutbox, op),
        )
        .await
        .map_err(Failure::transient)?;
        return Ok(format!("created {} at {}", state.provider_id, engine.name()));
    }
    // Every other operation needs the provider's id: the create comes first.
    let Some(provider_id) = subscription.provider_subscription_id.clone() else {
        return Err(Failure::transient(format!(
            "subscription {subscription_id} is not created at {} yet",
            engine.name()
        )));
    };
    match operation {
        EngineOp::Create { .. } => Ok(String::new()),
        EngineOp::ChangePlan {
            product_handle,
            price_point_handle,
            delayed: false,
        } => {
            engine
                .change_plan(&provider_id, &product_handle, price_point_handle.as_deref())
                .await
                .map_err(provider_error)?;
            Ok(format!("migrated {provider_id} to {product_handle}"))
        }
        EngineOp::ChangePlan {
            product_handle,
            delayed: true,
            ..
        } => {
            engine
                .schedule_plan_change(&provider_id, &product_handle)
                .await
                .map_err(provider_error)?;
            Ok(format!("{provider_id} moves to {product_handle} at renewal"))
        }
        EngineOp::SetComponent { handle, quantity } => {
            engine
                .set_component_quantity(&provider_id, &handle, quantity)
                .await
                .map_err(provider_error)?;
            Ok(format!("{provider_id}: {handle} = {quantity}"))
        }
        EngineOp::Cancel { at_period_end, reason } => {
            engine
                .cancel(&provider_id, at_period_end, &reason)
                .await
                .map_err(provider_error)?;
            Ok(format!(
                "{provider_id} canceled{}",
                if at_period_end { " at period end" } else { "" }
            ))
        }
        EngineOp::Reactivate => {
            engine.reactivate(&provider_id).await.map_err(provider_error)?;
            Ok(format!("{provider_id} reactivated"))
        }
    }
}

/// Remembers the provider's id of a subscription (and of nothing else: it
/// is not a change of the subscription, so no version, event or audit).
async fn link(store: &Store, id: &SubscriptionId, provider_id: &str, lease: Lease<'_>) -> Result<(), AppError> {
    let tx = store.begin().await?;
    if !lease.holds(&tx).await? {
        return Ok(());
    }
    if let Some(mut subscription) = tx.subscriptions().get_subscription_for_update(id).await?
        && subscription.provider_subscription_id.as_deref() != Some(provider_id)
    {
        subscription.provider_subscription_id = Some(provider_id.to_owned());
        tx.subscriptions().update_subscription(&subscription).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use billing_domain::text::Code;

    use super::*;

    fn seats(quantity: u32) -> ComponentQuantity {
        ComponentQuantity {
            component_code: Code::parse("seat").unwrap(),
            quantity,
        }
    }

    #[test]
    fn components_become_allocations_of_what_changed() {
        assert_eq!(
            component_ops(&[seats(2)], &[seats(5)]),
            [EngineOp::SetComponent {
                handle: "seat".into(),
                quantity: 5
            }]
        );
        assert_eq!(
            component_ops(&[seats(2)], &[]),
            [EngineOp::SetComponent {
                handle: "seat".into(),
                quantity: 0
            }]
        );
        assert!(component_ops(&[seats(2)], &[seats(2)]).is_empty());
    }

    #[test]
    fn operations_round_trip_through_the_outbox_payload() {
        let op = EngineOp::Cancel {
            at_period_end: true,
            reason: "leaving".into(),
        };
        let text = serde_json::to_string(&op).unwrap();
        assert_eq!(text, r#"{"op":"cancel","at_period_end":true,"reason":"leaving"}"#);
        assert_eq!(serde_json::from_str::<EngineOp>(&text).unwrap(), op);
    }
}
