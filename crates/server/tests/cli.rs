//! The `billingd` binary as an operator runs it: minting a token, and
//! refusing to start where authentication cannot work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use billing_domain::access::Role;
use billing_server::auth::jwt::JwtVerifier;
use billing_server::config::{AuthMode, AuthSettings};
use billing_storage::Backend;
use billing_storage::testing::TestDatabase;

const SECRET: &str = "cli-test-secret-0123456789abcdef0123";

fn billingd(arguments: &[&str], environment: &[(&str, &str)]) -> Output {
    let scratch = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_billingd"));
    command
        .args(arguments)
        .current_dir(scratch.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (key, value) in environment {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn mint_token_prints_a_token_the_server_accepts_and_nothing_else() {
    let output = billingd(
        &[
            "mint-token",
            "--sub",
            "ops",
            "--role",
            "business",
            "--business-id",
            "acme",
            "--ttl",
            "15m",
        ],
        &[("BILLING__AUTH__HS256_SECRET", SECRET)],
    );
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.trim_end();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let settings = AuthSettings {
        mode: AuthMode::Jwt,
        hs256_secret: Some(SECRET.to_owned().into()),
        ..AuthSettings::default()
    };
    let caller = JwtVerifier::from_settings(&settings).unwrap().verify(token).unwrap();
    assert_eq!(caller.role(), Role::Business);
    assert_eq!(caller.subject(), "ops");
}

#[test]
fn mint_token_refuses_claims_that_make_no_caller_or_a_missing_secret() {
    let no_business = billingd(
        &["mint-token", "--sub", "ops", "--role", "business"],
        &[("BILLING__AUTH__HS256_SECRET", SECRET)],
    );
    assert!(!no_business.status.success());
    assert!(text(&no_business).contains("business_id"), "{}", text(&no_business));
    let no_secret = billingd(&["mint-token", "--sub", "ops", "--role", "service"], &[]);
    assert!(!no_secret.status.success());
    assert!(text(&no_secret).contains("auth.hs256_secret"), "{}", text(&no_secret));
}

#[test]
fn the_server_refuses_to_start_without_auth_beyond_loopback() {
    let output = billingd(&["serve"], &[("BILLING__SERVER__GRPC_ADDR", "0.0.0.0:0")]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("auth.mode"), "{}", text(&output));
    let output = billingd(&["serve"], &[("BILLING__AUTH__MODE", "jwt")]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("auth.hs256_secret or auth.jwks_file"),
        "{}",
        text(&output)
    );
}

#[test]
fn an_unreadable_jwks_file_stops_start_up_naming_the_key() {
    let output = billingd(
        &["serve"],
        &[
            ("BILLING__AUTH__MODE", "jwt"),
            ("BILLING__AUTH__JWKS_FILE", "/nonexistent/jwks.json"),
            ("BILLING__SERVER__GRPC_ADDR", "127.0.0.1:0"),
            ("BILLING__SERVER__HTTP_ADDR", "127.0.0.1:0"),
            ("BILLING__DATABASE__URL", "sqlite://billing.db?mode=rwc"),
        ],
    );
    assert!(!output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("auth.jwks_file"), "{}", text(&output));
}

/// Three pods start at once on an empty Postgres: every `billingd migrate`
/// succeeds and each migration is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_migrations_apply_the_schema_once() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let scratch = tempfile::tempdir().unwrap();
    let runs: Vec<_> = (0..3)
        .map(|_| {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_billingd"))
                .arg("migrate")
                .current_dir(scratch.path())
                .env_clear()
                .env("BILLING__DATABASE__URL", database.url())
                .output()
        })
        .collect();
    let mut outputs = Vec::new();
    for run in runs {
        outputs.push(tokio::spawn(run));
    }
    for output in outputs {
        let output = output.await.unwrap().unwrap();
        assert!(output.status.success(), "{}", text(&output));
    }
    let applied = database.applied_migrations().await;
    let mut distinct = applied.clone();
    distinct.dedup();
    assert_eq!(applied, distinct, "a migration was recorded twice");
    let schema = <billing_migrations::Migrator as billing_migrations::MigratorTrait>::migrations();
    assert_eq!(applied.len(), schema.len(), "{applied:?}");
}
