//! A held change (a change charged now, waiting for its payment) as the
//! JSON of `subscriptions.held_change`.

use billing_domain::catalog::{BillingInterval, OfferingType};
use billing_domain::ids::{InvoiceId, OfferingId};
use billing_domain::period::Period;
use billing_domain::subscription::{HeldChange, PaymentType, Plan};
use serde::{Deserialize, Serialize};

use super::{ComponentQuantityJson, PriceJson, RowContext, components_json};
use crate::error::StorageError;

/// A held change as stored in `subscriptions.held_change`.
#[derive(Serialize, Deserialize)]
struct HeldChangeJson {
    invoice_id: String,
    expire_time: chrono::DateTime<chrono::Utc>,
    priced_period_start: chrono::NaiveDate,
    priced_period_end: chrono::NaiveDate,
    offering_id: String,
    offering_code: String,
    offering_type: String,
    display_name: String,
    billing_interval: String,
    price: PriceJson,
    payment_type: String,
    components: Vec<ComponentQuantityJson>,
    period_start: chrono::NaiveDate,
    period_end: chrono::NaiveDate,
}

pub(super) fn held_change_json(held: &HeldChange) -> serde_json::Value {
    let plan = &held.plan;
    serde_json::json!(HeldChangeJson {
        invoice_id: held.invoice_id.as_str().to_owned(),
        expire_time: held.expire_time,
        priced_period_start: held.priced_period.start,
        priced_period_end: held.priced_period.end,
        offering_id: plan.offering_id.as_str().to_owned(),
        offering_code: plan.offering_code.as_str().to_owned(),
        offering_type: plan.offering_type.as_str().to_owned(),
        display_name: plan.display_name.clone(),
        billing_interval: plan.billing_interval.as_str().to_owned(),
        price: PriceJson {
            currency_code: plan.purchase_price.currency().code().to_owned(),
            amount_minor: plan.purchase_price.amount_minor(),
        },
        payment_type: plan.payment_type.as_str().to_owned(),
        components: components_json(&plan.components),
        period_start: plan.current_period.start,
        period_end: plan.current_period.end,
    })
}

pub(super) fn held_change_from_json(context: &RowContext, json: serde_json::Value) -> Result<HeldChange, StorageError> {
    let held: HeldChangeJson = serde_json::from_value(json).map_err(|error| context.corrupt(error))?;
    Ok(HeldChange {
        invoice_id: InvoiceId::parse(&held.invoice_id).map_err(|error| context.corrupt(error))?,
        expire_time: held.expire_time,
        priced_period: Period {
            start: held.priced_period_start,
            end: held.priced_period_end,
        },
        plan: Plan {
            offering_id: OfferingId::parse(&held.offering_id).map_err(|error| context.corrupt(error))?,
            offering_code: context.code(&held.offering_code)?,
            offering_type: context.enum_text(&held.offering_type, OfferingType::from_text)?,
            display_name: held.display_name,
            billing_interval: context.enum_text(&held.billing_interval, BillingInterval::from_text)?,
            purchase_price: context.money(&held.price.currency_code, held.price.amount_minor)?,
            payment_type: context.enum_text(&held.payment_type, PaymentType::from_text)?,
            components: context.components(held.components)?,
            current_period: Period {
                start: held.period_start,
                end: held.period_end,
            },
        },
    })
}
