//! Verifying bearer tokens: HS256 with a shared secret, or RS256 / ES256 with
//! public keys from a JWKS file chosen by `kid`.
//!
//! Each key admits exactly one algorithm (its own), so a token can never pick
//! how it is checked: `alg: none`, an HS256 token "signed" with an RSA public
//! key, or an RS256 token against the HS256 secret are all refused. The JWKS
//! file is read again whenever its size or modification time changes, so keys
//! rotate without a restart; a file that stops parsing keeps the last good
//! keys and is logged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use billing_domain::access::Caller;
use billing_domain::{DomainError, Reason};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::config::AuthSettings;

/// The claims this service reads (DESIGN §4); others are ignored.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    role: String,
    directory_id: Option<String>,
    business_id: Option<String>,
}

/// Checks tokens against the configured keys and claims.
pub struct JwtVerifier {
    keys: KeySource,
    validation: Validation,
}

enum KeySource {
    Hs256(DecodingKey),
    Jwks(JwksFile),
}

impl JwtVerifier {
    /// The verifier for `auth.*`; a JWKS file that cannot be read or holds
    /// no usable key stops start-up.
    pub fn from_settings(settings: &AuthSettings) -> anyhow::Result<Self> {
        let keys = match (&settings.hs256_secret, &settings.jwks_file) {
            (Some(secret), _) => KeySource::Hs256(DecodingKey::from_secret(secret.expose_secret().as_bytes())),
            (None, Some(path)) => KeySource::Jwks(JwksFile::open(path)?),
            (None, None) => anyhow::bail!("auth.hs256_secret or auth.jwks_file: one is required"),
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = settings.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &settings.issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".to_owned());
        }
        match &settings.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".to_owned());
            }
            None => validation.validate_aud = false,
        }
        Ok(JwtVerifier { keys, validation })
    }

    /// The caller a token proves, or why it proves nothing. Messages never
    /// quote the token.
    pub fn verify(&self, token: &str) -> Result<Caller, DomainError> {
        let invalid = |message: &str| DomainError::new(Reason::AuthTokenInvalid, message.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("the bearer token is not a JWT"))?;
        let (algorithm, key) = match &self.keys {
            KeySource::Hs256(key) => (Algorithm::HS256, key.clone()),
            KeySource::Jwks(file) => {
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| invalid("the token names no key (kid)"))?;
                file.key(kid)
                    .ok_or_else(|| invalid("the token's key (kid) is not a key of this service"))?
            }
        };
        let mut validation = self.validation.clone();
        validation.algorithms = vec![algorithm];
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|error| {
            use jsonwebtoken::errors::ErrorKind;
            match error.kind() {
                ErrorKind::ExpiredSignature => DomainError::new(Reason::AuthTokenExpired, "the token has expired"),
                ErrorKind::ImmatureSignature => invalid("the token is not valid yet (nbf)"),
                ErrorKind::InvalidAlgorithm => invalid("the token's algorithm is not the one of its key"),
                ErrorKind::InvalidSignature => invalid("the token's signature does not verify"),
                ErrorKind::InvalidIssuer => invalid("the token's issuer (iss) is not accepted"),
                ErrorKind::InvalidAudience => invalid("the token's audience (aud) is not accepted"),
                ErrorKind::MissingRequiredClaim(claim) => invalid(&format!("the token has no {claim} claim")),
                _ => invalid("the token is malformed"),
            }
        })?;
        let Claims {
            sub,
            role,
            directory_id,
            business_id,
        } = claims.claims;
        Caller::from_claims(&sub, &role, directory_id.as_deref(), business_id.as_deref())
    }
}

/// The public keys of a JWKS file, reloaded when the file changes.
struct JwksFile {
    path: PathBuf,
    loaded: RwLock<LoadedKeys>,
}

struct LoadedKeys {
    stamp: Option<(SystemTime, u64)>,
    keys: HashMap<String, (Algorithm, DecodingKey)>,
}

impl JwksFile {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let stamp = file_stamp(path);
        let keys = read_keys(path).map_err(|error| anyhow::anyhow!("auth.jwks_file {}: {error}", path.display()))?;
        Ok(JwksFile {
            path: path.to_owned(),
            loaded: RwLock::new(LoadedKeys { stamp, keys }),
        })
    }

    /// The key named `kid`, after reading the file again if it changed.
    fn key(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        self.reload_if_changed();
        let loaded = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        loaded.keys.get(kid).cloned()
    }

    fn reload_if_changed(&self) {
        let stamp = file_stamp(&self.path);
        {
            let loaded = self.loaded.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if loaded.stamp == stamp {
                return;
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if loaded.stamp == stamp {
            return;
        }
        match read_keys(&self.path) {
            Ok(keys) => {
                tracing::info!(path = %self.path.display(), keys = keys.len(), "jwks file reloaded");
                loaded.keys = keys;
            }
            Err(error) => {
                tracing::warn!(path = %self.path.display(), error = %error, "jwks file unusable; keeping the previous keys");
            }
        }
        loaded.stamp = stamp;
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// Every RS256 / ES256 key of the file by `kid`; a key of another kind, or
/// without a `kid`, makes the whole file unusable rather than silently
/// half-read.
fn read_keys(path: &Path) -> Result<HashMap<String, (Algorithm, DecodingKey)>, String> {
    let text = std::fs::read_to_string(path).map_err(|error| error.to_string())?;
    let set: JwkSet = serde_json::from_str(&text).map_err(|error| format!("not a JWKS document: {error}"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone().ok_or("every key needs a kid")?;
        let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
            (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
            (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                if ec.curve == EllipticCurve::P256 =>
            {
                Algorithm::ES256
            }
            _ => {
                return Err(format!(
                    "key {kid}: only RS256 (RSA) and ES256 (EC P-256) keys are accepted"
                ));
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|error| format!("key {kid}: {error}"))?;
        keys.insert(kid, (algorithm, key));
    }
    if keys.is_empty() {
        return Err("the file holds no keys".to_owned());
    }
    Ok(keys)
}
