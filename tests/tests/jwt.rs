//! Bearer tokens on both key sources, end to end: an HS256 secret with issuer
//! and audience checks, and a JWKS file of RS256 and ES256 keys generated
//! here, rotated by rewriting the file while the server runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use billing_proto::v1 as pb;
use billing_tests::{
    Backend, TEST_JWT_SECRET, TestApp, assert_status, backend_tests, mint_token_with, spawn_app_with, spawn_jwt_app,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tonic::Code;

backend_tests!(
    hs256_tokens_are_checked_for_time_issuer_and_audience,
    jwks_keys_are_chosen_by_kid_and_rotate_without_a_restart,
);

const ISSUER: &str = "https://issuer.platform.test";
const AUDIENCE: &str = "billing-service";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a platform service that pass every check, with overrides.
fn claims(overrides: serde_json::Value) -> serde_json::Value {
    let mut claims = json!({
        "sub": "platform", "role": "service", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600,
    });
    for (key, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

async fn list_products(app: &TestApp, token: &str) -> Result<(), tonic::Status> {
    app.as_caller(token)
        .catalog()
        .list_products(pb::ListProductsRequest::default())
        .await
        .map(|_| ())
}

async fn hs256_tokens_are_checked_for_time_issuer_and_audience(backend: Backend) {
    let app = spawn_jwt_app(backend, |settings| {
        settings.auth.issuer = Some(ISSUER.into());
        settings.auth.audience = Some(AUDIENCE.into());
    })
    .await;
    // Exactly these claims, signed with the server's secret.
    let sign = |claims: serde_json::Value| {
        jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
        )
        .unwrap()
    };
    list_products(&app, &sign(claims(json!({})))).await.unwrap();
    // Within the 30 s leeway, an expiry just past is still accepted.
    list_products(&app, &sign(claims(json!({"exp": now() - 10}))))
        .await
        .unwrap();

    let expired = list_products(&app, &sign(claims(json!({"exp": now() - 120}))))
        .await
        .unwrap_err();
    assert_status(&expired, Code::Unauthenticated, "AUTH_TOKEN_EXPIRED");
    let refused = [
        ("not yet valid", sign(claims(json!({"nbf": now() + 600})))),
        ("wrong issuer", sign(claims(json!({"iss": "https://evil.test"})))),
        ("no issuer", sign(claims(json!({"iss": null})))),
        ("wrong audience", sign(claims(json!({"aud": "another-service"})))),
        ("no expiry", sign(claims(json!({"exp": null})))),
        ("no role", sign(claims(json!({"role": null})))),
        (
            "another secret",
            mint_token_with("another-secret-another-secret-0000", claims(json!({}))),
        ),
        ("alg none", unsigned_token(&claims(json!({})))),
    ];
    for (case, token) in refused {
        let status = list_products(&app, &token).await.expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert_eq!(
            billing_tests::reason(&status),
            "AUTH_TOKEN_INVALID",
            "{case}: {status:?}"
        );
    }
    // An RS256 token cannot stand in for the HS256 secret.
    let keys = Keys::generate();
    let rs256 = keys.rsa_token("rsa-1", &claims(json!({})));
    assert_status(
        &list_products(&app, &rs256).await.unwrap_err(),
        Code::Unauthenticated,
        "AUTH_TOKEN_INVALID",
    );
}

/// `{"alg":"none"}` and no signature.
fn unsigned_token(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// An RSA and a P-256 key pair made for this test.
struct Keys {
    rsa: rsa::RsaPrivateKey,
    ec: p256::ecdsa::SigningKey,
}

impl Keys {
    fn generate() -> Self {
        let mut rng = rand_core::OsRng;
        Keys {
            rsa: rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            ec: p256::ecdsa::SigningKey::random(&mut rng),
        }
    }

    fn rsa_jwk(&self, kid: &str) -> serde_json::Value {
        use rsa::traits::PublicKeyParts;
        let public = self.rsa.to_public_key();
        json!({
            "kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        })
    }

    fn ec_jwk(&self, kid: &str) -> serde_json::Value {
        let point = self.ec.verifying_key().to_encoded_point(false);
        json!({
            "kty": "EC", "kid": kid, "crv": "P-256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        })
    }

    fn rsa_token(&self, kid: &str, claims: &serde_json::Value) -> String {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let der = self.rsa.to_pkcs1_der().unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
    }

    fn ec_token(&self, kid: &str, claims: &serde_json::Value) -> String {
        use p256::pkcs8::EncodePrivateKey;
        let der = self.ec.to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(der.as_bytes())).unwrap()
    }

    /// The classic confusion: an HS256 token "signed" with the RSA public
    /// key's PEM as the shared secret, naming the RSA key.
    fn confused_token(&self, kid: &str, claims: &serde_json::Value) -> String {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        let pem = self.rsa.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(pem.as_bytes())).unwrap()
    }
}

fn write_jwks(path: &std::path::Path, keys: &[serde_json::Value]) {
    // Written aside and renamed, as a mounted secret is swapped.
    let staged = path.with_extension("staged");
    std::fs::write(&staged, json!({ "keys": keys }).to_string()).unwrap();
    std::fs::rename(&staged, path).unwrap();
}

async fn jwks_keys_are_chosen_by_kid_and_rotate_without_a_restart(backend: Backend) {
    let directory = tempfile::tempdir().unwrap();
    let jwks = directory.path().join("jwks.json");
    let keys = Keys::generate();
    write_jwks(&jwks, &[keys.rsa_jwk("rsa-1"), keys.ec_jwk("ec-1")]);
    let path = jwks.clone();
    let app = spawn_app_with(backend, move |settings| {
        settings.auth.mode = billing_server::config::AuthMode::Jwt;
        settings.auth.jwks_file = Some(path);
    })
    .await;
    let platform = json!({"sub": "platform", "role": "service", "exp": now() + 600});

    list_products(&app, &keys.rsa_token("rsa-1", &platform)).await.unwrap();
    list_products(&app, &keys.ec_token("ec-1", &platform)).await.unwrap();
    let refused = [
        ("HS256 with the RSA public key", keys.confused_token("rsa-1", &platform)),
        (
            "an RSA signature under the EC key's kid",
            keys.rsa_token("ec-1", &platform),
        ),
        ("unknown kid", keys.ec_token("ec-9", &platform)),
        (
            "HS256 with the test secret",
            mint_token_with(TEST_JWT_SECRET, platform.clone()),
        ),
        ("alg none", unsigned_token(&platform)),
    ];
    for (case, token) in &refused {
        let status = list_products(&app, token).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert_eq!(
            billing_tests::reason(&status),
            "AUTH_TOKEN_INVALID",
            "{case}: {status:?}"
        );
    }
    let expired = keys.ec_token(
        "ec-1",
        &json!({"sub": "platform", "role": "service", "exp": now() - 120}),
    );
    assert_status(
        &list_products(&app, &expired).await.unwrap_err(),
        Code::Unauthenticated,
        "AUTH_TOKEN_EXPIRED",
    );

    // Rotation: the RSA key retires, a new EC key arrives; no restart.
    let next = Keys::generate();
    write_jwks(&jwks, &[keys.ec_jwk("ec-1"), next.ec_jwk("ec-2")]);
    list_products(&app, &next.ec_token("ec-2", &platform)).await.unwrap();
    list_products(&app, &keys.ec_token("ec-1", &platform)).await.unwrap();
    let retired = list_products(&app, &keys.rsa_token("rsa-1", &platform))
        .await
        .unwrap_err();
    assert_status(&retired, Code::Unauthenticated, "AUTH_TOKEN_INVALID");

    // A broken rewrite keeps the last good keys.
    std::fs::write(&jwks, "{ not json").unwrap();
    list_products(&app, &next.ec_token("ec-2", &platform)).await.unwrap();
}
