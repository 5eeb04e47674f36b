//! Who is calling: bearer tokens checked against the configured keys, and
//! the table of which role may call which RPC.

pub mod jwt;
pub mod mint;
pub mod rules;

use billing_domain::access::Caller;
use billing_domain::{DomainError, Reason};
use http::HeaderMap;

use self::jwt::JwtVerifier;
use crate::config::{AuthMode, AuthSettings};

/// The subject of every request while authentication is off; idempotency
/// keys are scoped to it.
pub const ANONYMOUS_SUBJECT: &str = "anonymous";

/// Turns a request's metadata into a caller.
pub enum Authenticator {
    /// `auth.mode = "none"` (loopback only): everyone is the platform.
    Off,
    Jwt(JwtVerifier),
}

impl Authenticator {
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        Ok(match settings.mode {
            AuthMode::None => Authenticator::Off,
            AuthMode::Jwt => Authenticator::Jwt(JwtVerifier::from_settings(settings)?),
        })
    }

    /// The caller behind `authorization: Bearer <JWT>`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, DomainError> {
        let verifier = match self {
            Authenticator::Off => return Ok(Caller::platform(ANONYMOUS_SUBJECT)),
            Authenticator::Jwt(verifier) => verifier,
        };
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return Err(DomainError::new(
                Reason::AuthTokenMissing,
                "send authorization: Bearer <token>",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|text| {
                let (scheme, token) = text.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .ok_or_else(|| DomainError::new(Reason::AuthTokenInvalid, "expected authorization: Bearer <token>"))?;
        verifier.verify(token)
    }
}
