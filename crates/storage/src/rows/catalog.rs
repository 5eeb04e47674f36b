//! Products, offerings, directory offerings and coupons.

use std::collections::BTreeMap;

use billing_domain::catalog::{
    BillingAlignment, BillingInterval, Component, Coupon, CouponDuration, DirectoryOffering, Discount, Offering,
    OfferingRecord, OfferingStatus, OfferingType, Product,
};
use billing_domain::ids::{CouponId, OfferingId, ProductId};
use billing_domain::text::ExternalId;
use sea_orm::ActiveValue::Set;

use super::{ComponentJson, PriceJson, RowContext, codes_json, prices_json};
use crate::entity::{coupons, directory_offerings, offerings, products};
use crate::error::StorageError;

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
