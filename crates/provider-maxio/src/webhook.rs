//! Maxio webhooks: form-encoded `id`, `event` and `payload[…]` fields, signed
//! with `X-Chargify-Webhook-Signature-Hmac-Sha-256`, the lower-case hex
//! HMAC-SHA256 of the raw body under the site's shared key. There is no
//! timestamp in the signature: replays are stopped by deduplicating on the
//! webhook `id`, and stale events by the subscription's `updated_at`.

use std::collections::HashMap;

use billing_provider_api::{InboundEvent, Report};
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::api::parse_time;

/// The header Maxio signs deliveries with.
pub const SIGNATURE_HEADER: &str = "x-chargify-webhook-signature-hmac-sha-256";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Chargify-Webhook-Signature-Hmac-Sha-256 header")]
    Missing,
    #[error("the signature does not match")]
    Mismatch,
}

/// Checks the signature of `body`, in constant time.
pub fn verify(header: Option<&str>, body: &[u8], shared_key: &str) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let Some(expected) = hex::decode(header).ok() else {
        return Err(SignatureError::Mismatch);
    };
    let mut mac = mac(shared_key);
    mac.update(body);
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)
}

/// The header Maxio would send for `body` (tests, tools).
pub fn sign(body: &[u8], shared_key: &str) -> String {
    let mut mac = mac(shared_key);
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn mac(key: &str) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// What this service acts on in a Maxio webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaxioEvent {
    /// The webhook id: deliveries of one webhook share it.
    pub id: String,
    /// `payment_failure`, `subscription_state_change`, `renewal_success`, …
    pub event: String,
    /// Maxio's subscription id.
    pub subscription_id: Option<i64>,
    /// Our subscription id, from the subscription's `reference`.
    pub reference: Option<String>,
    pub state: Option<String>,
    pub previous_state: Option<String>,
    pub current_period_started_at: Option<DateTime<Utc>>,
    pub current_period_ends_at: Option<DateTime<Utc>>,
    /// When the subscription was last changed: how stale events are told.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Parses a delivery's form body; `None` without `id` and `event`.
pub fn parse_event(body: &[u8]) -> Option<MaxioEvent> {
    let fields: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| fields.get(name).filter(|value| !value.is_empty()).cloned();
    let subscription = |name: &str| field(&format!("payload[subscription][{name}]"));
    Some(MaxioEvent {
        id: field("id")?,
        event: field("event")?,
        subscription_id: subscription("id").and_then(|id| id.parse().ok()),
        reference: subscription("reference"),
        state: subscription("state"),
        previous_state: subscription("previous_state"),
        current_period_started_at: subscription("current_period_started_at")
            .as_deref()
            .and_then(parse_time),
        current_period_ends_at: subscription("current_period_ends_at").as_deref().and_then(parse_time),
        updated_at: subscription("updated_at").as_deref().and_then(parse_time),
    })
}

/// What a Maxio event reports, if anything this service mirrors.
pub fn report_of(event: &MaxioEvent) -> Option<Report> {
    match event.event.as_str() {
        "payment_failure" | "renewal_failure" => Some(Report::PaymentFailed),
        "payment_success" => Some(Report::PaymentSucceeded),
        "renewal_success" => match (event.current_period_started_at, event.current_period_ends_at) {
            (Some(start), Some(end)) => Some(Report::Renewed { start, end }),
            _ => None,
        },
        "subscription_state_change" => match event.state.as_deref()? {
            "active" | "trialing" => Some(Report::Active),
            "past_due" | "unpaid" => Some(Report::PaymentFailed),
            "canceled" | "expired" => Some(Report::Ended),
            _ => None,
        },
        _ => None,
    }
}

/// A delivery's body as the app acts on it; `None` if it is not a Maxio
/// webhook.
pub fn read(body: &[u8]) -> Option<InboundEvent> {
    let event = parse_event(body)?;
    Some(match report_of(&event) {
        Some(report) => InboundEvent::Subscription {
            event_id: event.id,
            event_type: event.event,
            reference: event.reference,
            report,
            as_of: event.updated_at,
        },
        None => InboundEvent::NotActedOn {
            event_type: event.event,
        },
    })
}
