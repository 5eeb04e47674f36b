//! Stripe's REST API as pure functions: the form each call sends and what
//! its answer means. No I/O here, so every case is tested on fixtures
//! written from Stripe's API reference.

use billing_provider_api::{ChargeOutcome, ChargeRequest, PaymentMethod, Provider, ProviderError, ProviderErrorKind};
use serde_json::Value;

/// A charge reference for Stripe: `cus_…:pm_…`, the customer the card is
/// attached to and the card, both needed to charge it off-session.
pub fn method_reference(customer: &str, payment_method: &str) -> String {
    format!("{customer}:{payment_method}")
}

/// The customer and payment method of a [`method_reference`].
pub fn split_reference(reference: &str) -> Result<(&str, &str), ProviderError> {
    reference
        .split_once(':')
        .filter(|(customer, method)| customer.starts_with("cus_") && !method.is_empty())
        .ok_or_else(|| {
            ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                "this payment method was not attached through Stripe; attach it again",
            )
        })
}

fn pair(key: &str, value: impl Into<String>) -> (String, String) {
    (key.to_owned(), value.into())
}

/// `GET /v1/customers/search`: the business's customer, by metadata.
pub fn customer_search_path(business_id: &str) -> String {
    let query = format!("metadata['business_id']:'{}'", escape_search(business_id));
    format!(
        "/v1/customers/search?{}",
        billing_provider_api::http::form_encode(&[pair("query", query)])
    )
}

/// `POST /v1/customers`.
pub fn customer_form(business_id: &str) -> Vec<(String, String)> {
    vec![
        pair("description", format!("Business {business_id}")),
        pair("metadata[business_id]", business_id),
    ]
}

/// `POST /v1/payment_methods/{token}/attach`.
pub fn attach_form(customer: &str) -> Vec<(String, String)> {
    vec![pair("customer", customer)]
}

/// `POST /v1/payment_intents`: charged now, off-session, with the card on
/// file. The amount is in the currency's minor unit, as Stripe counts it
/// (JPY 500 is `500`, USD 19.99 is `1999`).
pub fn payment_intent_form(request: &ChargeRequest, customer: &str, payment_method: &str) -> Vec<(String, String)> {
    vec![
        pair("amount", request.amount.amount_minor().to_string()),
        pair("currency", request.amount.currency().code().to_ascii_lowercase()),
        pair("customer", customer),
        pair("payment_method", payment_method),
        pair("confirm", "true"),
        pair("off_session", "true"),
        pair("description", request.description.clone()),
        pair("metadata[business_id]", request.business_id.clone()),
        pair("metadata[charge_key]", request.idempotency_key.clone()),
    ]
}

/// `GET /v1/payment_intents/search`: an attempt, by its charge key.
pub fn payment_intent_search_path(charge_key: &str) -> String {
    let query = format!("metadata['charge_key']:'{}'", escape_search(charge_key));
    format!(
        "/v1/payment_intents/search?{}",
        billing_provider_api::http::form_encode(&[pair("query", query)])
    )
}

fn escape_search(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The first customer of a search answer.
pub fn parse_customer_search(body: &Value) -> Option<String> {
    body["data"][0]["id"].as_str().map(str::to_owned)
}

/// A created customer's id.
pub fn parse_customer(body: &Value) -> Result<String, ProviderError> {
    body["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| malformed("customer", "no id"))
}

/// An attached payment method, as stored (never card data beyond brand,
/// last four digits and expiry).
pub fn parse_payment_method(body: &Value) -> Result<PaymentMethod, ProviderError> {
    let id = body["id"]
        .as_str()
        .ok_or_else(|| malformed("payment method", "no id"))?;
    let customer = body["customer"]
        .as_str()
        .ok_or_else(|| malformed("payment method", "not attached to a customer"))?;
    let card = &body["card"];
    let number = |field: &str| {
        card[field]
            .as_u64()
            .and_then(|value| u32::try_from(value).ok())
            .unwrap_or(0)
    };
    Ok(PaymentMethod {
        provider: Provider::Stripe,
        reference: method_reference(customer, id),
        brand: card["brand"].as_str().unwrap_or("card").to_owned(),
        last4: card["last4"].as_str().unwrap_or("").to_owned(),
        exp_month: number("exp_month"),
        exp_year: number("exp_year"),
    })
}

/// What a PaymentIntent's state means for the attempt: `None` while it is
/// still processing (the outcome arrives by webhook).
pub fn intent_outcome(intent: &Value) -> Option<ChargeOutcome> {
    let id = intent["id"].as_str().unwrap_or_default();
    match intent["status"].as_str() {
        Some("succeeded") => Some(ChargeOutcome::Succeeded {
            reference: intent["latest_charge"].as_str().unwrap_or(id).to_owned(),
        }),
        Some("requires_payment_method" | "requires_action" | "canceled") => {
            let error = &intent["last_payment_error"];
            Some(ChargeOutcome::Declined {
                code: decline_code(error).unwrap_or("card_declined").to_owned(),
                message: error["message"]
                    .as_str()
                    .unwrap_or("the payment needs another payment method")
                    .to_owned(),
            })
        }
        _ => None,
    }
}

fn decline_code(error: &Value) -> Option<&str> {
    error["decline_code"].as_str().or_else(|| error["code"].as_str())
}

/// The outcome of `POST /v1/payment_intents` from its status and body.
pub fn parse_charge(status: u16, body: &Value) -> Result<ChargeOutcome, ProviderError> {
    if (200..300).contains(&status) {
        return intent_outcome(body).ok_or_else(|| {
            ProviderError::new(
                ProviderErrorKind::Unavailable,
                format!(
                    "payment {} is {}; its outcome arrives by webhook",
                    body["id"].as_str().unwrap_or("?"),
                    body["status"].as_str().unwrap_or("pending")
                ),
            )
        });
    }
    let error = &body["error"];
    if error["type"].as_str() == Some("card_error") {
        return Ok(ChargeOutcome::Declined {
            code: decline_code(error).unwrap_or("card_declined").to_owned(),
            message: error["message"].as_str().unwrap_or("the card was declined").to_owned(),
        });
    }
    Err(api_error(status, body))
}

/// The outcome of an earlier attempt, if a search found it settled.
pub fn parse_intent_search(body: &Value) -> Option<ChargeOutcome> {
    body["data"].as_array()?.iter().find_map(intent_outcome)
}

/// A non-2xx answer as an error: 400/404 requests are wrong, 409 (a key
/// still in flight) and anything else unknown are worth a later retry.
pub fn api_error(status: u16, body: &Value) -> ProviderError {
    let error = &body["error"];
    let message = error["message"].as_str().unwrap_or("no message");
    let kind = match (status, error["type"].as_str()) {
        (409, _) => ProviderErrorKind::Unavailable,
        (400 | 402 | 404, _) | (_, Some("invalid_request_error")) => ProviderErrorKind::InvalidRequest,
        (401 | 403, _) => ProviderErrorKind::Internal,
        _ => ProviderErrorKind::Unavailable,
    };
    ProviderError::new(kind, format!("Stripe answered {status}: {message}"))
}

fn malformed(what: &str, detail: &str) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Internal, format!("Stripe {what}: {detail}"))
}
