//! `billingd mint-token`: an HS256 token signed with `auth.hs256_secret`, for
//! operators and local development. Production callers get their tokens from
//! the platform's issuer; this is the same contract (docs/auth.md).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use billing_domain::access::Caller;
use jsonwebtoken::{EncodingKey, Header};
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::config::AuthSettings;

/// Who the token is for.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub subject: String,
    pub role: String,
    pub directory_id: Option<String>,
    pub business_id: Option<String>,
    pub lifetime: Duration,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    directory_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    business_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    iat: u64,
    exp: u64,
}

/// A token the server configured with `settings` accepts, or why none can
/// be made (no HS256 secret, or claims that make no caller).
pub fn mint_token(settings: &AuthSettings, request: &TokenRequest) -> anyhow::Result<String> {
    let Some(secret) = &settings.hs256_secret else {
        anyhow::bail!("auth.hs256_secret is not set: only HS256 tokens can be minted here");
    };
    // The same rule the server applies to the claims.
    Caller::from_claims(
        &request.subject,
        &request.role,
        request.directory_id.as_deref(),
        request.business_id.as_deref(),
    )
    .map_err(|error| anyhow::anyhow!("{}", error.message()))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims {
        sub: &request.subject,
        role: &request.role,
        directory_id: request.directory_id.as_deref(),
        business_id: request.business_id.as_deref(),
        iss: settings.issuer.as_deref(),
        aud: settings.audience.as_deref(),
        iat: now,
        exp: now + request.lifetime.as_secs(),
    };
    let key = EncodingKey::from_secret(secret.expose_secret().as_bytes());
    Ok(jsonwebtoken::encode(&Header::default(), &claims, &key)?)
}

#[cfg(test)]
mod tests {
    use billing_domain::Reason;
    use billing_domain::access::Role;

    use super::*;
    use crate::auth::jwt::JwtVerifier;
    use crate::config::AuthMode;

    fn settings() -> AuthSettings {
        AuthSettings {
            mode: AuthMode::Jwt,
            hs256_secret: Some("0123456789abcdef0123456789abcdef".to_owned().into()),
            issuer: Some("https://issuer.test".to_owned()),
            audience: Some("billing".to_owned()),
            ..AuthSettings::default()
        }
    }

    fn request(role: &str) -> TokenRequest {
        TokenRequest {
            subject: "ops".to_owned(),
            role: role.to_owned(),
            directory_id: None,
            business_id: Some("acme".to_owned()),
            lifetime: Duration::from_secs(3600),
        }
    }

    #[test]
    fn a_minted_token_verifies_with_the_same_settings() {
        let token = mint_token(&settings(), &request("business")).unwrap();
        let caller = JwtVerifier::from_settings(&settings()).unwrap().verify(&token).unwrap();
        assert_eq!(caller.role(), Role::Business);
        assert_eq!(caller.subject(), "ops");
    }

    #[test]
    fn a_token_from_another_secret_or_for_no_caller_is_refused() {
        let mut other = settings();
        other.hs256_secret = Some("another-secret-another-secret-0000".to_owned().into());
        let token = mint_token(&other, &request("service")).unwrap();
        let error = JwtVerifier::from_settings(&settings())
            .unwrap()
            .verify(&token)
            .unwrap_err();
        assert_eq!(error.reason(), Reason::AuthTokenInvalid);
        assert!(mint_token(&settings(), &request("admin")).is_err());
        let without_secret = AuthSettings::default();
        assert!(mint_token(&without_secret, &request("service")).is_err());
    }
}
