//! Single-use consent links: 256 random bits, stored only as their hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use billing_domain::{DomainError, Reason};
use sha2::{Digest, Sha256};

use crate::AppError;

/// Random bytes in a token: 256 bits, 43 URL-safe characters.
const TOKEN_BYTES: usize = 32;
/// Random bytes in a form nonce.
pub(super) const NONCE_BYTES: usize = 16;

/// A fresh token and the hash it is stored as.
pub(super) fn new_token() -> Result<(String, String), AppError> {
    let token = URL_SAFE_NO_PAD.encode(random_bytes::<TOKEN_BYTES>()?);
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    Ok((token, hash))
}

/// The stored hash of a token a client sent, after checking its shape.
pub(crate) fn token_hash(token: &str) -> Result<String, AppError> {
    if token.is_empty() {
        return Err(DomainError::field("token", Reason::CheckoutTokenMissing, "no checkout token was sent").into());
    }
    let decodes = URL_SAFE_NO_PAD
        .decode(token)
        .is_ok_and(|bytes| bytes.len() == TOKEN_BYTES);
    if !decodes {
        return Err(unknown_token());
    }
    Ok(hex::encode(Sha256::digest(token.as_bytes())))
}

pub(super) fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut bytes = [0_u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|error| AppError::fault(format!("the system's random source failed: {error}")))?;
    Ok(bytes)
}

pub(super) fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    left.len() == right.len() && bool::from(left.ct_eq(right))
}

pub(crate) fn unknown_token() -> AppError {
    DomainError::new(
        Reason::CheckoutTokenInvalid,
        "this checkout link is not valid; ask the app for a new one",
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_stored_as_their_hash() {
        let (token, hash) = new_token().unwrap();
        assert_eq!(token.len(), 43);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(token_hash(&token).unwrap(), hash);
        assert_eq!(hash.len(), 64);
        assert_ne!(new_token().unwrap().0, token);
    }

    #[test]
    fn malformed_tokens_are_invalid_and_empty_ones_missing() {
        assert_eq!(token_hash("").unwrap_err().reason(), Reason::CheckoutTokenMissing);
        for bad in ["short", "!".repeat(43).as_str(), "a".repeat(44).as_str()] {
            assert_eq!(
                token_hash(bad).unwrap_err().reason(),
                Reason::CheckoutTokenInvalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn nonces_compare_whole() {
        assert!(constant_time_eq(b"abcd", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abce"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"abcd"));
    }
}
