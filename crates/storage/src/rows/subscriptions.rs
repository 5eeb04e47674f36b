//! Businesses, subscriptions and entitlements.

use billing_domain::Provider;
use billing_domain::catalog::{BillingInterval, OfferingType};
use billing_domain::dunning::Dunning;
use billing_domain::ids::{OfferingId, SubscriptionId};
use billing_domain::period::{BillingAnchor, Period};
use billing_domain::subscription::{
    Business, Entitlement, PaymentStatus, PaymentType, PendingChange, SubscriberStatus, Subscription, SubscriptionState,
};
use billing_domain::text::ExternalId;
use sea_orm::ActiveValue::Set;

use super::held::{held_change_from_json, held_change_json};
use super::{ComponentQuantityJson, RowContext, components_json};
use crate::error::StorageError;

pub fn subscription_from_row(row: crate::entity::subscriptions::Model) -> Result<Subscription, StorageError> {
    let context = RowContext::new("subscriptions", &row.id);
    let components: Vec<ComponentQuantityJson> =
        serde_json::from_value(row.components).map_err(|error| context.corrupt(error))?;
    let components = context.components(components)?;
    let held_change = row
        .held_change
        .map(|json| held_change_from_json(&context, json))
        .transpose()?;
    let subscription_id = |text: &str| SubscriptionId::parse(text).map_err(|error| context.corrupt(error));
    let external = |text: &str| ExternalId::parse(text).map_err(|error| context.corrupt(error));
    let pending_change = match (
        row.pending_offering_id,
        row.pending_offering_code,
        row.pending_effective_time,
    ) {
        (Some(offering_id), Some(offering_code), Some(effective_time)) => Some(PendingChange {
            offering_id: OfferingId::parse(&offering_id).map_err(|error| context.corrupt(error))?,
            offering_code: context.code(&offering_code)?,
            effective_time,
        }),
        (None, None, None) => None,
        _ => return Err(context.corrupt("a pending change is partly set")),
    };
    Ok(Subscription {
        id: subscription_id(&row.id)?,
        display_name: row.display_name,
        business_id: external(&row.business_id)?,
        buyer_id: external(&row.buyer_id)?,
        directory_id: external(&row.directory_id)?,
        offering_id: OfferingId::parse(&row.offering_id).map_err(|error| context.corrupt(error))?,
        offering_code: context.code(&row.offering_code)?,
        offering_type: context.enum_text(&row.offering_type, OfferingType::from_text)?,
        family: context.code(&row.family)?,
        state: context.enum_text(&row.state, SubscriptionState::from_text)?,
        payment_type: context.enum_text(&row.payment_type, PaymentType::from_text)?,
        purchase_price: context.money(&row.price_currency, row.price_minor)?,
        billing_interval: context.enum_text(&row.billing_interval, BillingInterval::from_text)?,
        billing_anchor: BillingAnchor::from_date(row.billing_anchor),
        components,
        coupon_code: row.coupon_code.as_deref().map(|code| context.code(code)).transpose()?,
        trial_end_time: row.trial_end_time,
        current_period: Period {
            start: row.period_start,
            end: row.period_end,
        },
        cancellation_time: row.cancellation_time,
        cancel_reason: row.cancel_reason,
        expiration_time: row.expiration_time,
        auto_renew: row.auto_renew,
        bundled_from_subscription_id: row
            .bundled_from_subscription_id
            .as_deref()
            .map(subscription_id)
            .transpose()?,
        pending_change,
        held_change,
        payment_status: PaymentStatus::from_text(&row.payment_status)
            .ok_or_else(|| context.corrupt(format!("unknown payment status {:?}", row.payment_status)))?,
        dunning: match (row.dunning_first_failure_time, row.dunning_grace_end_time) {
            (Some(first_failure_time), Some(grace_end_time)) => Some(Dunning {
                attempt_count: u32::try_from(row.dunning_attempt_count).map_err(|error| context.corrupt(error))?,
                first_failure_time,
                next_retry_time: row.dunning_next_retry_time,
                grace_end_time,
            }),
            (None, None) => None,
            _ => return Err(context.corrupt("dunning is partly set")),
        },
        coupon_periods_used: u32::try_from(row.coupon_periods_used).map_err(|error| context.corrupt(error))?,
        provider: context.enum_text(&row.provider, Provider::from_text)?,
        provider_subscription_id: row.provider_subscription_id,
        version: row.version,
        create_time: row.create_time,
        update_time: row.update_time,
    })
}

pub fn subscription_to_row(subscription: &Subscription) -> crate::entity::subscriptions::ActiveModel {
    let components = components_json(&subscription.components);
    let pending = subscription.pending_change.as_ref();
    crate::entity::subscriptions::ActiveModel {
        id: Set(subscription.id.as_str().to_owned()),
        display_name: Set(subscription.display_name.clone()),
        business_id: Set(subscription.business_id.as_str().to_owned()),
        buyer_id: Set(subscription.buyer_id.as_str().to_owned()),
        directory_id: Set(subscription.directory_id.as_str().to_owned()),
        offering_id: Set(subscription.offering_id.as_str().to_owned()),
        offering_code: Set(subscription.offering_code.as_str().to_owned()),
        offering_type: Set(subscription.offering_type.as_str().to_owned()),
        family: Set(subscription.family.as_str().to_owned()),
        state: Set(subscription.state.as_str().to_owned()),
        payment_type: Set(subscription.payment_type.as_str().to_owned()),
        price_currency: Set(subscription.purchase_price.currency().code().to_owned()),
        price_minor: Set(subscription.purchase_price.amount_minor()),
        billing_interval: Set(subscription.billing_interval.as_str().to_owned()),
        billing_anchor: Set(subscription.billing_anchor.date()),
        components: Set(serde_json::json!(components)),
        coupon_code: Set(subscription.coupon_code.as_ref().map(|code| code.as_str().to_owned())),
        trial_end_time: Set(subscription.trial_end_time),
        period_start: Set(subscription.current_period.start),
        period_end: Set(subscription.current_period.end),
        cancellation_time: Set(subscription.cancellation_time),
        cancel_reason: Set(subscription.cancel_reason.clone()),
        expiration_time: Set(subscription.expiration_time),
        auto_renew: Set(subscription.auto_renew),
        bundled_from_subscription_id: Set(subscription
            .bundled_from_subscription_id
            .as_ref()
            .map(|id| id.as_str().to_owned())),
        pending_offering_id: Set(pending.map(|change| change.offering_id.as_str().to_owned())),
        pending_offering_code: Set(pending.map(|change| change.offering_code.as_str().to_owned())),
        pending_effective_time: Set(pending.map(|change| change.effective_time)),
        held_change: Set(subscription.held_change.as_ref().map(held_change_json)),
        payment_status: Set(subscription.payment_status.as_str().to_owned()),
        dunning_attempt_count: Set(subscription
            .dunning
            .as_ref()
            .map_or(0, |dunning| i32::try_from(dunning.attempt_count).unwrap_or(i32::MAX))),
        dunning_first_failure_time: Set(subscription.dunning.as_ref().map(|dunning| dunning.first_failure_time)),
        dunning_next_retry_time: Set(subscription
            .dunning
            .as_ref()
            .and_then(|dunning| dunning.next_retry_time)),
        dunning_grace_end_time: Set(subscription.dunning.as_ref().map(|dunning| dunning.grace_end_time)),
        coupon_periods_used: Set(i32::try_from(subscription.coupon_periods_used).unwrap_or(i32::MAX)),
        provider: Set(subscription.provider.as_str().to_owned()),
        provider_subscription_id: Set(subscription.provider_subscription_id.clone()),
        version: Set(subscription.version),
        create_time: Set(subscription.create_time),
        update_time: Set(subscription.update_time),
    }
}

pub fn entitlement_from_row(row: crate::entity::entitlements::Model) -> Result<Entitlement, StorageError> {
    let context = RowContext::new("entitlements", &format!("{}/{}", row.business_id, row.product_code));
    Ok(Entitlement {
        product_code: context.code(&row.product_code)?,
        entitled: row.entitled,
        subscription_id: row
            .subscription_id
            .as_deref()
            .map(|id| SubscriptionId::parse(id).map_err(|error| context.corrupt(error)))
            .transpose()?,
        offering_code: row
            .offering_code
            .as_deref()
            .map(|code| context.code(code))
            .transpose()?,
        subscriber_status: context.enum_text(&row.subscriber_status, SubscriberStatus::from_text)?,
        in_grace_period: row.in_grace_period,
        expiration_time: row.expiration_time,
    })
}

pub fn entitlement_to_row(
    business_id: &ExternalId,
    entitlement: &Entitlement,
) -> crate::entity::entitlements::ActiveModel {
    crate::entity::entitlements::ActiveModel {
        business_id: Set(business_id.as_str().to_owned()),
        product_code: Set(entitlement.product_code.as_str().to_owned()),
        entitled: Set(entitlement.entitled),
        subscription_id: Set(entitlement.subscription_id.as_ref().map(|id| id.as_str().to_owned())),
        offering_code: Set(entitlement.offering_code.as_ref().map(|code| code.as_str().to_owned())),
        subscriber_status: Set(entitlement.subscriber_status.as_str().to_owned()),
        in_grace_period: Set(entitlement.in_grace_period),
        expiration_time: Set(entitlement.expiration_time),
    }
}

pub fn business_from_row(row: crate::entity::businesses::Model) -> Result<Business, StorageError> {
    let context = RowContext::new("businesses", &row.business_id);
    Ok(Business {
        business_id: ExternalId::parse(&row.business_id).map_err(|error| context.corrupt(error))?,
        directory_id: ExternalId::parse(&row.directory_id).map_err(|error| context.corrupt(error))?,
        create_time: row.create_time,
    })
}
