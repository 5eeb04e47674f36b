//! Stripe webhooks: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=…]`,
//! each `v1` an HMAC-SHA256 of `"<t>.<raw body>"` under the endpoint's
//! secret. Verified in constant time against every `v1` (several during a
//! secret roll), within a tolerance of the event's timestamp.

use billing_provider_api::InboundEvent;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Stripe's SDKs default to five minutes.
pub const DEFAULT_TOLERANCE_SECONDS: i64 = 300;

/// Why a delivery was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header is malformed")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` for `body` at `now` (unix seconds).
pub fn verify(header: Option<&str>, body: &[u8], secret: &str, now: i64, tolerance: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    // Checked: an unsigned header may carry any i64 (t=-9223372036854775808).
    let stale = now
        .checked_sub(timestamp)
        .is_none_or(|age| age.unsigned_abs() > tolerance.unsigned_abs());
    if stale {
        return Err(SignatureError::Stale);
    }
    let matches = signatures.iter().any(|signature| {
        let Some(expected) = hex::decode(signature).ok() else {
            return false;
        };
        let mut mac = mac(secret);
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    });
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

/// A header Stripe would send for `body` at `timestamp` (tests, tools).
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = mac(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex = hex::encode(digest);
    format!("t={timestamp},v1={hex}")
}

fn mac(secret: &str) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
}

/// What this service acts on in a Stripe event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripeEvent {
    pub id: String,
    pub event_type: String,
    /// Unix seconds.
    pub created: i64,
    /// For `payment_intent.*`: the attempt's charge key (metadata).
    pub charge_key: Option<String>,
    pub object: Value,
}

/// Parses a delivery's body; `None` if it is not a Stripe event.
pub fn parse_event(body: &[u8]) -> Option<StripeEvent> {
    let value: Value = serde_json::from_slice(body).ok()?;
    if value["object"].as_str() != Some("event") {
        return None;
    }
    let object = value["data"]["object"].clone();
    Some(StripeEvent {
        id: value["id"].as_str()?.to_owned(),
        event_type: value["type"].as_str()?.to_owned(),
        created: value["created"].as_i64()?,
        charge_key: object["metadata"]["charge_key"].as_str().map(str::to_owned),
        object,
    })
}

/// A delivery's body as the app acts on it; `None` if it is not a Stripe
/// event. Only a PaymentIntent's success or failure is acted on.
pub fn read(body: &[u8]) -> Option<InboundEvent> {
    let event = parse_event(body)?;
    if !matches!(
        event.event_type.as_str(),
        "payment_intent.succeeded" | "payment_intent.payment_failed"
    ) {
        return Some(InboundEvent::NotActedOn {
            event_type: event.event_type,
        });
    }
    Some(InboundEvent::Payment {
        outcome: crate::api::intent_outcome(&event.object),
        event_type: event.event_type,
        charge_key: event.charge_key,
    })
}
