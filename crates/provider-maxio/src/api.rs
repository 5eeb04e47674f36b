//! Maxio Advanced Billing (Chargify) as pure functions: the JSON each call
//! sends and what its answer means, tested on fixtures written from Maxio's
//! API documentation.

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Value, json};

use billing_provider_api::{ProviderError, ProviderErrorKind};

/// A subscription to create at Maxio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMaxioSubscription {
    /// Ours (`sub_…`), stored as Maxio's subscription `reference`: unique at
    /// Maxio, so a repeated create finds the first one.
    pub reference: String,
    /// The business, as the Maxio customer's `reference`.
    pub customer_reference: String,
    pub product_handle: String,
    pub product_price_point_handle: Option<String>,
    /// Component handle and quantity.
    pub components: Vec<(String, u32)>,
    pub coupon_code: Option<String>,
}

/// `POST /subscriptions.json`.
pub fn create_body(new: &NewMaxioSubscription) -> Value {
    let mut subscription = json!({
        "product_handle": new.product_handle,
        "customer_reference": new.customer_reference,
        "reference": new.reference,
    });
    if let Some(price_point) = &new.product_price_point_handle {
        subscription["product_price_point_handle"] = json!(price_point);
    }
    if !new.components.is_empty() {
        subscription["components"] = new
            .components
            .iter()
            .map(|(handle, quantity)| json!({"component_id": format!("handle:{handle}"), "allocated_quantity": quantity}))
            .collect();
    }
    if let Some(coupon) = &new.coupon_code {
        subscription["coupon_code"] = json!(coupon);
    }
    json!({ "subscription": subscription })
}

/// `POST /subscriptions/{id}/migrations.json` (and `/migrations/preview.json`):
/// an immediate, prorated product change that keeps the billing period and
/// the coupons.
pub fn migration_body(product_handle: &str, price_point_handle: Option<&str>) -> Value {
    let mut migration = json!({
        "product_handle": product_handle,
        "preserve_period": true,
        "include_coupons": true,
        "include_trial": false,
        "include_initial_charge": false,
    });
    if let Some(price_point) = price_point_handle {
        migration["product_price_point_handle"] = json!(price_point);
    }
    json!({ "migration": migration })
}

/// `PUT /subscriptions/{id}.json`: a product change that waits for the
/// renewal.
pub fn delayed_product_change_body(product_handle: &str) -> Value {
    json!({
        "subscription": {
            "product_handle": product_handle,
            "product_change_delayed": true,
        }
    })
}

/// `POST /subscriptions/{id}/components/handle:{h}/allocations.json`: the new
/// quantity, prorated both ways.
pub fn allocation_body(quantity: u32) -> Value {
    json!({
        "allocation": {
            "quantity": quantity,
            "upgrade_charge": "prorated",
            "downgrade_credit": "prorated",
            "memo": "changed through billing-service",
        }
    })
}

/// `DELETE /subscriptions/{id}.json` (now) and
/// `POST /subscriptions/{id}/delayed_cancel.json` (at the period end).
pub fn cancel_body(reason: &str) -> Value {
    json!({ "cancellation_message": reason })
}

/// A subscription as Maxio reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxioSubscription {
    pub id: i64,
    pub state: String,
    pub reference: Option<String>,
    pub product_handle: Option<String>,
    pub current_period_started_at: Option<DateTime<Utc>>,
    pub current_period_ends_at: Option<DateTime<Utc>>,
    pub cancel_at_end_of_period: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

/// `{"subscription": {…}}`.
pub fn parse_subscription(body: &Value) -> Result<MaxioSubscription, ProviderError> {
    let subscription = &body["subscription"];
    let id = subscription["id"]
        .as_i64()
        .ok_or_else(|| malformed("subscription", "no id"))?;
    Ok(MaxioSubscription {
        id,
        state: subscription["state"].as_str().unwrap_or_default().to_owned(),
        reference: subscription["reference"].as_str().map(str::to_owned),
        product_handle: subscription["product"]["handle"].as_str().map(str::to_owned),
        current_period_started_at: time(&subscription["current_period_started_at"]),
        current_period_ends_at: time(&subscription["current_period_ends_at"]),
        cancel_at_end_of_period: subscription["cancel_at_end_of_period"].as_bool().unwrap_or(false),
        updated_at: time(&subscription["updated_at"]),
    })
}

/// What a migration would bill, in the subscription's minor units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MigrationPreview {
    pub prorated_adjustment_in_cents: i64,
    pub charge_in_cents: i64,
    pub payment_due_in_cents: i64,
    pub credit_applied_in_cents: i64,
}

/// `{"migration": {…}}` from `/migrations/preview.json`.
pub fn parse_migration_preview(body: &Value) -> Result<MigrationPreview, ProviderError> {
    let migration = &body["migration"];
    if !migration.is_object() {
        return Err(malformed("migration preview", "no migration"));
    }
    let cents = |field: &str| migration[field].as_i64().unwrap_or(0);
    Ok(MigrationPreview {
        prorated_adjustment_in_cents: cents("prorated_adjustment_in_cents"),
        charge_in_cents: cents("charge_in_cents"),
        payment_due_in_cents: cents("payment_due_in_cents"),
        credit_applied_in_cents: cents("credit_applied_in_cents"),
    })
}

/// A non-2xx answer: `{"errors": ["…", …]}` (422 refusals) or anything else.
pub fn api_error(status: u16, body: &Value) -> ProviderError {
    let message = match &body["errors"] {
        Value::Array(errors) => errors
            .iter()
            .map(|error| error.as_str().map_or_else(|| error.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("; "),
        Value::Null => "no message".to_owned(),
        other => other.to_string(),
    };
    let kind = match status {
        404 | 422 | 400 => ProviderErrorKind::InvalidRequest,
        401 | 403 => ProviderErrorKind::Internal,
        _ => ProviderErrorKind::Unavailable,
    };
    ProviderError::new(kind, format!("Maxio answered {status}: {message}"))
}

/// Whether a 422 says the reference is taken (a create that already went
/// through).
pub fn reference_taken(body: &Value) -> bool {
    body["errors"].as_array().is_some_and(|errors| {
        errors
            .iter()
            .any(|error| error.as_str().is_some_and(|text| text.contains("Reference")))
    })
}

/// Maxio's timestamps: RFC 3339 in the API (`2016-11-14T14:48:10-05:00`),
/// `2016-11-08 16:22:22 -0500` in webhooks.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::<FixedOffset>::parse_from_str(text, "%Y-%m-%d %H:%M:%S %z"))
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    value.as_str().and_then(parse_time)
}

fn malformed(what: &str, detail: &str) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Internal, format!("Maxio {what}: {detail}"))
}
