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
    fn secrets_are_32_random_bytes() {
        let (one, two) = (new_secret().unwrap(), new_secret().unwrap());
        assert!(one.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&one[6..]).unwrap().len(), 32);
        assert_ne!(one, two);
    }
}
