//! Postgres over TLS (rustls): the service runs end to end on a connection
//! made with `sslmode=require`, and Postgres confirms it is encrypted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_storage::testing::TestDatabase;
use billing_tests::{Backend, spawn_app_with};

fn with_option(url: &str, option: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{option}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_on_postgres_with_sslmode_require() {
    let mut encrypted_url = String::new();
    let app = spawn_app_with(Backend::Postgres, |settings| {
        let url = secrecy::ExposeSecret::expose_secret(&settings.database.url).to_owned();
        encrypted_url = with_option(&url, "sslmode=require");
        settings.database.url = encrypted_url.clone().into();
    })
    .await;
    assert!(
        TestDatabase::connection_uses_tls(&encrypted_url).await,
        "sslmode=require made an unencrypted connection"
    );
    assert!(
        !TestDatabase::connection_uses_tls(&with_option(app.database_url(), "sslmode=disable")).await,
        "the check cannot tell the two apart"
    );
    // A write and a read through the service, over that connection.
    app.catalog()
        .create_product(pb::CreateProductRequest {
            code: "website".into(),
            display_name: "Website".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    let products = app
        .catalog()
        .list_products(pb::ListProductsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .products;
    assert_eq!(products.len(), 1);
    app.assert_serving().await;
}

/// `verify-full` checks the server's certificate against `sslrootcert` and
/// its name: the server's own certificate as the root and the name it was
/// made for (`localhost` here) connect; a root that did not sign it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_trusts_only_the_given_root() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let certificate = database.server_certificate_file().await;
    let by_name = database.url().replace("@127.0.0.1:", "@localhost:");
    let trusted = with_option(
        &by_name,
        &format!("sslmode=verify-full&sslrootcert={}", certificate.display()),
    );
    assert!(TestDatabase::connection_uses_tls(&trusted).await);
    let other_root = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(other_root.path(), include_str!("../fixtures/unrelated-root.pem")).unwrap();
    let untrusted = with_option(
        &by_name,
        &format!("sslmode=verify-full&sslrootcert={}", other_root.path().display()),
    );
    let refused = billing_storage::Store::connect(&billing_storage::StoreOptions::new(untrusted)).await;
    assert!(refused.is_err(), "a server certificate from another root was accepted");
}
