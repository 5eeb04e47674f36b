//! Conversions between rows and domain values.
//!
//! Rows are trusted to have been written by this crate from valid domain
//! values; anything that no longer parses is reported as corrupt, never
//! papered over.

use std::collections::BTreeMap;

use billing_domain::catalog::{
    BillingAlignment, BillingInterval, Component, Coupon, CouponDuration, DirectoryOffering, Discount, Offering,
    OfferingRecord, OfferingStatus, OfferingType, PriceList, Product,
};
use billing_domain::dunning::Dunning;
use billing_domain::ids::{CouponId, OfferingId, ProductId, SubscriptionId};
use billing_domain::period::{BillingAnchor, Period};
use billing_domain::subscription::{
    Business, ComponentQuantity, Entitlement, PaymentStatus, PaymentType, PendingChange, SubscriberStatus,
    Subscription, SubscriptionState,
};
use billing_domain::text::{Code, ExternalId};
use billing_domain::{Currency, Money};
use sea_orm::ActiveValue::Set;
use serde::{Deserialize, Serialize};

use crate::entity::{coupons, directory_offerings, offerings, products};
use crate::error::StorageError;

#[derive(Serialize, Deserialize)]
struct PriceJson {
    currency_code: String,
    amount_minor: i64,
}

#[derive(Serialize, Deserialize)]
struct ComponentJson {
    code: String,
    display_name: String,
    unit_prices: Vec<PriceJson>,
}

/// Builds parse errors for one row.
struct RowContext {
    table: &'static str,
    key: String,
}

impl RowContext {
    fn new(table: &'static str, key: &str) -> Self {
        RowContext {
            table,
            key: key.to_owned(),
        }
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> StorageError {
        StorageError::Corrupt {
            table: self.table,
            key: self.key.clone(),
            detail: detail.to_string(),
        }
    }

    fn code(&self, text: &str) -> Result<Code, StorageError> {
        Code::parse(text).map_err(|error| self.corrupt(error))
    }

    fn codes(&self, json: serde_json::Value) -> Result<Vec<Code>, StorageError> {
        let texts: Vec<String> = serde_json::from_value(json).map_err(|error| self.corrupt(error))?;
        texts.iter().map(|text| self.code(text)).collect()
    }

    fn money(&self, currency_code: &str, amount_minor: i64) -> Result<Money, StorageError> {
        let currency = Currency::from_code(currency_code).map_err(|error| self.corrupt(error))?;
        Ok(Money::new(amount_minor, currency))
    }

    fn prices(&self, prices: Vec<PriceJson>) -> Result<PriceList, StorageError> {
        let prices = prices
            .iter()
            .map(|price| self.money(&price.currency_code, price.amount_minor))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PriceList::restore(prices))
    }

    fn enum_text<T>(&self, text: &str, parse: fn(&str) -> Option<T>) -> Result<T, StorageError> {
        parse(text).ok_or_else(|| self.corrupt(format!("unknown value {text:?}")))
    }
}

fn prices_json(prices: &PriceList) -> serde_json::Value {
    let prices: Vec<PriceJson> = prices
        .as_slice()
        .iter()
        .map(|price| PriceJson {
            currency_code: price.currency().code().to_owned(),
            amount_minor: price.amount_minor(),
        })
        .collect();
    serde_json::json!(prices)
}

fn codes_json(codes: &[Code]) -> serde_json::Value {
    serde_json::json!(codes.iter().map(Code::as_str).collect::<Vec<_>>())
}

pub fn product_from_row(row: products::Model) -> Result<Product, StorageError> {
    let context = RowContext::new("products", &row.id);
    Ok(Product {
        id: ProductId::parse(&row.id).map_err(|error| context.corrupt(error))?,
        code: context.code(&row.code)?,
        display_name: row.display_name,
        description: row.description,
        create_time: row.create_time,
    })
}

pub fn product_to_row(product: &Product) -> products::ActiveModel {
    products::ActiveModel {
        id: Set(product.id.as_str().to_owned()),
        code: Set(product.code.as_str().to_owned()),
        display_name: Set(product.display_name.clone()),
        description: Set(product.description.clone()),
        create_time: Set(product.create_time),
    }
}

pub fn offering_from_row(row: offerings::Model) -> Result<Offering, StorageError> {
    let context = RowContext::new("offerings", &row.id);
    let components: Vec<ComponentJson> =
        serde_json::from_value(row.components).map_err(|error| context.corrupt(error))?;
    let components = components
        .into_iter()
        .map(|component| {
            Ok(Component {
                code: context.code(&component.code)?,
                display_name: component.display_name,
                unit_prices: context.prices(component.unit_prices)?,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let prices: Vec<PriceJson> = serde_json::from_value(row.prices).map_err(|error| context.corrupt(error))?;
    let provider_refs: BTreeMap<String, String> =
        serde_json::from_value(row.provider_refs).map_err(|error| context.corrupt(error))?;
    Ok(Offering::restore(OfferingRecord {
        id: OfferingId::parse(&row.id).map_err(|error| context.corrupt(error))?,
        code: context.code(&row.code)?,
        display_name: row.display_name,
        description: row.description,
        offering_type: context.enum_text(&row.offering_type, OfferingType::from_text)?,
        family: context.code(&row.family)?,
        product_codes: context.codes(row.product_codes)?,
        prices: context.prices(prices)?,
        billing_interval: context.enum_text(&row.billing_interval, BillingInterval::from_text)?,
        billing_alignment: context.enum_text(&row.billing_alignment, BillingAlignment::from_text)?,
        trial_days: u16::try_from(row.trial_days).map_err(|error| context.corrupt(error))?,
        bundled_offering_codes: context.codes(row.bundled_offering_codes)?,
        components,
        status: context.enum_text(&row.status, OfferingStatus::from_text)?,
        provider_refs,
        has_subscriptions: row.has_subscriptions,
        create_time: row.create_time,
        update_time: row.update_time,
    }))
}

pub fn offering_to_row(offering: &Offering) -> offerings::ActiveModel {
    let components: Vec<ComponentJson> = offering
        .components
        .iter()
        .map(|component| ComponentJson {
            code: component.code.as_str().to_owned(),
            display_name: component.display_name.clone(),
            unit_prices: component
                .unit_prices
                .as_slice()
                .iter()
                .map(|price| PriceJson {
                    currency_code: price.currency().code().to_owned(),
                    amount_minor: price.amount_minor(),
                })
                .collect(),
        })
        .collect();
    offerings::ActiveModel {
        id: Set(offering.id.as_str().to_owned()),
        code: Set(offering.code.as_str().to_owned()),
        display_name: Set(offering.display_name.clone()),
        description: Set(offering.description.clone()),
        offering_type: Set(offering.offering_type.as_str().to_owned()),
        family: Set(offering.family.as_str().to_owned()),
        product_codes: Set(codes_json(&offering.product_codes)),
        prices: Set(prices_json(&offering.prices)),
        billing_interval: Set(offering.billing_interval.as_str().to_owned()),
        billing_alignment: Set(offering.billing_alignment.as_str().to_owned()),
        trial_days: Set(i32::from(offering.trial_days)),
        bundled_offering_codes: Set(codes_json(&offering.bundled_offering_codes)),
        components: Set(serde_json::json!(components)),
        status: Set(offering.status.as_str().to_owned()),
        provider_refs: Set(serde_json::json!(offering.provider_refs)),
        has_subscriptions: Set(offering.has_subscriptions),
        create_time: Set(offering.create_time),
        update_time: Set(offering.update_time),
    }
}

pub fn directory_offering_from_row(row: directory_offerings::Model) -> Result<DirectoryOffering, StorageError> {
    let context = RowContext::new(
        "directory_offerings",
        &format!("{}/{}", row.directory_id, row.offering_id),
    );
    Ok(DirectoryOffering {
        directory_id: ExternalId::parse(&row.directory_id).map_err(|error| context.corrupt(error))?,
        offering_id: OfferingId::parse(&row.offering_id).map_err(|error| context.corrupt(error))?,
        offering_code: context.code(&row.offering_code)?,
        is_default: row.is_default,
        create_time: row.create_time,
        update_time: row.update_time,
    })
}

pub fn directory_offering_to_row(assignment: &DirectoryOffering) -> directory_offerings::ActiveModel {
    directory_offerings::ActiveModel {
        directory_id: Set(assignment.directory_id.as_str().to_owned()),
        offering_id: Set(assignment.offering_id.as_str().to_owned()),
        offering_code: Set(assignment.offering_code.as_str().to_owned()),
        is_default: Set(assignment.is_default),
        create_time: Set(assignment.create_time),
        update_time: Set(assignment.update_time),
    }
}

const DURATION_ONCE: &str = "ONCE";
const DURATION_REPEATING: &str = "REPEATING";
const DURATION_FOREVER: &str = "FOREVER";

pub fn coupon_from_row(row: coupons::Model) -> Result<Coupon, StorageError> {
    let context = RowContext::new("coupons", &row.id);
    let discount = match (
        row.percent_off,
        row.amount_off_minor,
        row.amount_off_currency.as_deref(),
    ) {
        (Some(bps), None, None) => Discount::PercentOff(u16::try_from(bps).map_err(|error| context.corrupt(error))?),
        (None, Some(amount), Some(currency)) => Discount::AmountOff(context.money(currency, amount)?),
        _ => return Err(context.corrupt("exactly one of percent_off and amount_off must be set")),
    };
    let periods = u16::try_from(row.duration_periods).map_err(|error| context.corrupt(error))?;
    let duration = match row.duration.as_str() {
        DURATION_ONCE => CouponDuration::Once,
        DURATION_REPEATING => CouponDuration::Repeating { periods },
        DURATION_FOREVER => CouponDuration::Forever,
        other => return Err(context.corrupt(format!("unknown duration {other:?}"))),
    };
    Ok(Coupon {
        id: CouponId::parse(&row.id).map_err(|error| context.corrupt(error))?,
        code: context.code(&row.code)?,
        discount,
        duration,
        max_redemptions: row
            .max_redemptions
            .map(u32::try_from)
            .transpose()
            .map_err(|error| context.corrupt(error))?,
        times_redeemed: u32::try_from(row.times_redeemed).map_err(|error| context.corrupt(error))?,
        redeem_by: row.redeem_by,
        applies_to_offering_codes: context.codes(row.applies_to_offering_codes)?,
        create_time: row.create_time,
    })
}

pub fn coupon_to_row(coupon: &Coupon) -> coupons::ActiveModel {
    let (percent_off, amount_off_minor, amount_off_currency) = match coupon.discount {
        Discount::PercentOff(bps) => (Some(i32::from(bps)), None, None),
        Discount::AmountOff(money) => (
            None,
            Some(money.amount_minor()),
            Some(money.currency().code().to_owned()),
        ),
    };
    let (duration, duration_periods) = match coupon.duration {
        CouponDuration::Once => (DURATION_ONCE, 0),
        CouponDuration::Repeating { periods } => (DURATION_REPEATING, i32::from(periods)),
        CouponDuration::Forever => (DURATION_FOREVER, 0),
    };
    coupons::ActiveModel {
        id: Set(coupon.id.as_str().to_owned()),
        code: Set(coupon.code.as_str().to_owned()),
        percent_off: Set(percent_off),
        amount_off_minor: Set(amount_off_minor),
        amount_off_currency: Set(amount_off_currency),
        duration: Set(duration.to_owned()),
        duration_periods: Set(duration_periods),
        max_redemptions: Set(coupon.max_redemptions.map(i64::from)),
        times_redeemed: Set(i64::from(coupon.times_redeemed)),
        redeem_by: Set(coupon.redeem_by),
        applies_to_offering_codes: Set(codes_json(&coupon.applies_to_offering_codes)),
        create_time: Set(coupon.create_time),
    }
}

#[derive(Serialize, Deserialize)]
struct ComponentQuantityJson {
    component_code: String,
    quantity: u32,
}

fn components_json(components: &[ComponentQuantity]) -> Vec<ComponentQuantityJson> {
    components
        .iter()
        .map(|component| ComponentQuantityJson {
            component_code: component.component_code.as_str().to_owned(),
            quantity: component.quantity,
        })
        .collect()
}

impl RowContext {
    fn components(&self, components: Vec<ComponentQuantityJson>) -> Result<Vec<ComponentQuantity>, StorageError> {
        components
            .into_iter()
            .map(|component| {
                Ok(ComponentQuantity {
                    component_code: self.code(&component.component_code)?,
                    quantity: component.quantity,
                })
            })
            .collect()
    }
}

#[path = "rows_held.rs"]
mod held;
use held::{held_change_from_json, held_change_json};

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
        provider: row.provider,
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
        provider: Set(subscription.provider.clone()),
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
