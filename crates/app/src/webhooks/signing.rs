//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, keyed by the secret's decoded bytes (the
//! part after `whsec_`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use billing_domain::Fault;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> Result<String, Fault> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| Fault::new(format!("the system's random source failed: {error}")))?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(bytes)))
}

/// The signature of one message under `secret`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, Fault> {
    let key = STANDARD
        .decode(secret.strip_prefix(PREFIX).unwrap_or(secret))
        .map_err(|error| Fault::new(format!("a stored signing secret does not decode: {error}")))?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key)
        .map_err(|error| Fault::new(format!("a signing key was refused: {error}")))?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Ok(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// Why a delivery to us was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("webhook-id, webhook-timestamp or webhook-signature is missing")]
    MissingHeader,
    #[error("webhook-timestamp is not Unix seconds, or is more than five minutes off")]
    Stale,
    #[error("no webhook-signature matches the body")]
    BadSignature,
}

/// How far a delivery's timestamp may be from our clock.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// Verifies a Standard Webhooks delivery to us: one of the space-separated
/// `v1,` signatures must be the body's under `secret`, and the timestamp
/// within five minutes of `now` (Unix seconds).
pub fn verify(
    secret: &str,
    id: Option<&str>,
    timestamp: Option<&str>,
    signatures: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Refused> {
    let (Some(id), Some(timestamp), Some(signatures)) = (id, timestamp, signatures) else {
        return Err(Refused::MissingHeader);
    };
    let sent: i64 = timestamp.parse().map_err(|_| Refused::Stale)?;
    if (now - sent).abs() > TOLERANCE_SECONDS {
        return Err(Refused::Stale);
    }
    let expected = sign(secret, id, sent, body).map_err(|_| Refused::BadSignature)?;
    let matches = signatures.split(' ').any(|candidate| {
        use subtle::ConstantTimeEq;
        candidate.len() == expected.len() && bool::from(candidate.as_bytes().ct_eq(expected.as_bytes()))
    });
    if matches { Ok(()) } else { Err(Refused::BadSignature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_specification_example() {
        // The example of the Standard Webhooks specification.
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn deliveries_to_us_verify_by_signature_and_time() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"type": "app_subscription.cancel"}"#;
        let good = sign(secret, "msg_1", 1_000_000, body).unwrap();
        let verify_at =
            |signatures: &str, now: i64| verify(secret, Some("msg_1"), Some("1000000"), Some(signatures), body, now);
        assert_eq!(verify_at(&good, 1_000_100), Ok(()));
        assert_eq!(
            verify_at(&format!("v1,bm90IGl0 {good}"), 1_000_000),
            Ok(()),
            "any one of several"
        );
        assert_eq!(verify_at(&good, 1_000_301), Err(Refused::Stale));
        assert_eq!(verify_at("v1,bm90IGl0", 1_000_000), Err(Refused::BadSignature));
        assert_eq!(
            verify(secret, Some("msg_2"), Some("1000000"), Some(&good), body, 1_000_000),
            Err(Refused::BadSignature),
            "signed for another id"
        );
        assert_eq!(
            verify(secret, None, Some("1000000"), Some(&good), body, 1_000_000),
            Err(Refused::MissingHeader)
        );
    }

    #[test]
    fn secrets_are_32_random_bytes() {
        let (one, two) = (new_secret().unwrap(), new_secret().unwrap());
        assert!(one.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&one[6..]).unwrap().len(), 32);
        assert_ne!(one, two);
    }
}
