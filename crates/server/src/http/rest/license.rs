//! `GET /license/subscriptions`: a business's subscriptions in the shape the
//! platform's own Get Subscriptions API returns, which its partners already
//! parse: snake_case names, prices as decimal strings in the currency's
//! minor-unit exponent, ISO-8601 UTC times with milliseconds, lowercase
//! states, all wrapped in `{"data": {"subscriptions": [...]}, "success": true}`.
//! It is `ListSubscriptions` underneath, paged through to the end.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use billing_domain::access::Scope;
use billing_domain::error::Violations;
use billing_domain::money::{Currency, Money};
use billing_domain::{DomainError, Reason};
use billing_proto::v1 as pb;
use chrono::SecondsFormat;
use serde::Serialize;

use super::{HttpState, error_response, json_bytes};
use crate::convert::timestamp_from_proto;
use crate::grpc::status::invalid;

pub const PATH: &str = "/license/subscriptions";

const LIST: &str = "billing.v1.SubscriptionService/ListSubscriptions";
/// Subscriptions per internal page (a business has a handful).
const PAGE_SIZE: i32 = 100;

#[derive(Debug, Serialize, PartialEq)]
pub struct Answer {
    pub data: Data,
    pub success: bool,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Data {
    pub subscriptions: Vec<LicenseSubscription>,
}

/// One subscription, field for field as the platform names it.
#[derive(Debug, Serialize, PartialEq)]
pub struct LicenseSubscription {
    pub uid: String,
    pub display_name: String,
    pub buyer_uid: String,
    pub business_uid: String,
    pub purchase_currency: Option<String>,
    pub purchase_price: Option<String>,
    pub purchase_state: String,
    pub cancellation_date: Option<String>,
    pub expiration_date: Option<String>,
    pub updated_at: Option<String>,
    pub created_at: Option<String>,
    pub payment_type: String,
    pub bundled_from_subscription_uid: Option<String>,
    pub is_active: bool,
    pub offering_uid: String,
    pub trial_type: String,
    pub offering_type: String,
}

/// The caller's business's subscriptions (a business token), or those of
/// `?business_id=` (any token that sees that business).
pub async fn subscriptions(State(state): State<HttpState>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let rpcs = &state.rpcs;
    let caller = match rpcs.authenticate(&headers) {
        Ok(caller) => caller,
        Err(status) => return error_response(rpcs, &status),
    };
    let business_id = match business_of(caller.scope(), query.as_deref().unwrap_or_default()) {
        Ok(business_id) => business_id,
        Err(error) => return error_response(rpcs, &invalid(error)),
    };
    let mut subscriptions = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = pb::ListSubscriptionsRequest {
            business_id: business_id.clone(),
            page_size: PAGE_SIZE,
            page_token,
            ..Default::default()
        };
        let page: pb::ListSubscriptionsResponse = match rpcs.call_typed(LIST, &request, &headers).await {
            Ok(page) => page,
            Err(status) => return error_response(rpcs, &status),
        };
        subscriptions.extend(page.subscriptions.into_iter().map(license_subscription));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let answer = Answer {
        data: Data { subscriptions },
        success: true,
    };
    match serde_json::to_vec(&answer) {
        Ok(body) => json_bytes(StatusCode::OK, body),
        Err(error) => error_response(
            rpcs,
            &tonic::Status::internal(format!("an answer does not serialize: {error}")),
        ),
    }
}

/// Whose subscriptions: `business_id` from the query, else a business
/// token's own. A platform or directory token must name one.
fn business_of(scope: &Scope, query: &str) -> Result<String, DomainError> {
    let mut violations = Violations::new();
    let mut business_id = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "business_id" if business_id.is_none() => business_id = Some(value.into_owned()),
            "business_id" => violations.push("business_id", Reason::FieldInvalid, "is given twice"),
            _ => violations.push(
                name.as_ref(),
                Reason::FieldInvalid,
                "is not a parameter here; one of business_id",
            ),
        }
    }
    violations.into_result()?;
    match (business_id, scope) {
        (Some(business_id), _) => Ok(business_id),
        (None, Scope::Business(own)) => Ok(own.as_str().to_owned()),
        (None, Scope::Platform | Scope::Directory(_)) => Err(DomainError::field(
            "business_id",
            Reason::FieldInvalid,
            "is required unless the token is a business's",
        )),
    }
}

/// A subscription of the contract in the platform's shape.
pub fn license_subscription(subscription: pb::Subscription) -> LicenseSubscription {
    let price = subscription.purchase_price.as_ref().and_then(|price| {
        let currency = Currency::from_code(&price.currency_code).ok()?;
        Some((
            currency.code().to_owned(),
            Money::new(price.amount_minor, currency).decimal(),
        ))
    });
    let (purchase_currency, purchase_price) = price.unzip();
    LicenseSubscription {
        purchase_state: lowercase(subscription.state().as_str_name(), "SUBSCRIPTION_STATE_"),
        payment_type: lowercase(subscription.payment_type().as_str_name(), "PAYMENT_TYPE_"),
        trial_type: lowercase(subscription.trial_type().as_str_name(), "TRIAL_TYPE_"),
        offering_type: lowercase(subscription.offering_type().as_str_name(), "OFFERING_TYPE_"),
        uid: subscription.id,
        display_name: subscription.display_name,
        buyer_uid: subscription.buyer_id,
        business_uid: subscription.business_id,
        purchase_currency,
        purchase_price,
        cancellation_date: time(subscription.cancellation_time),
        expiration_date: time(subscription.expiration_time),
        updated_at: time(subscription.update_time),
        created_at: time(subscription.create_time),
        bundled_from_subscription_uid: Some(subscription.bundled_from_subscription_id).filter(|id| !id.is_empty()),
        is_active: subscription.active,
        offering_uid: subscription.offering_id,
    }
}

/// `SUBSCRIPTION_STATE_PURCHASED` → `purchased`.
fn lowercase(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_ascii_lowercase()
}

/// `2024-05-22T08:20:37.000Z`.
fn time(timestamp: Option<prost_types::Timestamp>) -> Option<String> {
    let time = timestamp_from_proto("", timestamp?).ok()?;
    Some(time.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    use billing_domain::text::ExternalId;

    use super::*;

    #[test]
    fn states_and_types_are_lowercase_words() {
        assert_eq!(
            lowercase("SUBSCRIPTION_STATE_PURCHASED", "SUBSCRIPTION_STATE_"),
            "purchased"
        );
        assert_eq!(lowercase("TRIAL_TYPE_NO_TRIAL", "TRIAL_TYPE_"), "no_trial");
        assert_eq!(
            time(Some(prost_types::Timestamp {
                seconds: 1_716_365_037,
                nanos: 0
            }))
            .as_deref(),
            Some("2024-05-22T08:03:57.000Z")
        );
    }

    #[test]
    fn a_business_token_reads_its_own_and_others_name_one() {
        let own = ExternalId::parse("acme").unwrap();
        assert_eq!(business_of(&Scope::Business(own), "").unwrap(), "acme");
        assert_eq!(business_of(&Scope::Platform, "business_id=globex").unwrap(), "globex");
        let missing = business_of(&Scope::Platform, "").unwrap_err();
        assert_eq!(missing.violations()[0].field, "business_id");
        let unknown = business_of(&Scope::Platform, "business_id=a&page=2").unwrap_err();
        assert_eq!(unknown.violations()[0].field, "page");
    }
}
