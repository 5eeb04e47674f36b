//! Throw-away databases for tests: a SQLite file in a temporary directory, or
//! a fresh Postgres database that is dropped when the value is dropped (even
//! when the test panics).
//!
//! Postgres is reached at `BILLING_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`. If it is not reachable the
//! test fails loudly: a Postgres test is never silently skipped.

#![allow(clippy::panic, clippy::expect_used)]

/// Runs each listed `async fn(Backend)` of the calling module as two tests,
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! backend_tests {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};

use crate::{Backend, Store, StoreOptions};

/// Where tests find a Postgres server with rights to create databases.
pub const POSTGRES_URL_VAR: &str = "BILLING_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestDatabase {
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// Creates an empty database (no schema: migrations are the caller's).
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let directory = tempfile::tempdir().expect("create a temporary directory for SQLite");
                let url = format!("sqlite://{}?mode=rwc", directory.path().join("billing.db").display());
                TestDatabase {
                    url,
                    backend,
                    cleanup: Cleanup::Sqlite(directory),
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("billing_test_{}", uuid::Uuid::now_v7().simple());
                let admin = Database::connect(admin_url.as_str()).await.unwrap_or_else(|error| {
                    panic!(
                        "cannot reach Postgres at {admin_url} ({error}); start it or set {POSTGRES_URL_VAR}. \
                         Postgres tests are never skipped."
                    )
                });
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap_or_else(|error| panic!("create database {name}: {error}"));
                admin.close().await.ok();
                let url = database_url(&admin_url, &name);
                TestDatabase {
                    url,
                    backend,
                    cleanup: Cleanup::Postgres { admin_url, name },
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Makes the database unreachable now, as an outage would: Postgres drops
    /// it (ending every connection). SQLite has no such outage.
    pub async fn drop_now(&self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            panic!("only a Postgres test database can be taken away");
        };
        let admin = Database::connect(admin_url.as_str()).await.expect("connect as admin");
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await
            .expect("drop the test database");
        admin.close().await.ok();
    }

    /// Takes the database away while keeping its data, as a Postgres
    /// restart does for its clients: every connection to it ends and new
    /// ones are refused until [`Self::restore`]. The shared server keeps
    /// serving every other test.
    pub async fn interrupt(&self) {
        self.admin(&[
            "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        ])
        .await;
    }

    /// Lets connections to the database in again after [`Self::interrupt`].
    pub async fn restore(&self) {
        self.admin(&["ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS true"])
            .await;
    }

    async fn admin(&self, statements: &[&str]) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            panic!("only a Postgres test database can be interrupted");
        };
        let admin = Database::connect(admin_url.as_str()).await.expect("connect as admin");
        for statement in statements {
            admin
                .execute_unprepared(&statement.replace("{name}", name))
                .await
                .unwrap_or_else(|error| panic!("{statement}: {error}"));
        }
        admin.close().await.ok();
    }

    /// The one number a query for a count answers (`SELECT COUNT(*) AS n …`).
    pub async fn count(&self, sql: &str) -> i64 {
        let connection = Database::connect(self.url.as_str())
            .await
            .expect("connect to the test database");
        let row = connection
            .query_one_raw(sea_orm::Statement::from_string(connection.get_database_backend(), sql))
            .await
            .unwrap_or_else(|error| panic!("{sql}: {error}"))
            .expect("a row");
        connection.close().await.ok();
        row.try_get::<i64>("", "n").expect("a count named n")
    }

    /// The versions recorded in `seaql_migrations`, in order, repeats kept.
    pub async fn applied_migrations(&self) -> Vec<String> {
        let connection = Database::connect(self.url.as_str())
            .await
            .expect("connect to the test database");
        let rows = connection
            .query_all_raw(sea_orm::Statement::from_string(
                connection.get_database_backend(),
                "SELECT version FROM seaql_migrations ORDER BY version",
            ))
            .await
            .expect("read seaql_migrations");
        connection.close().await.ok();
        rows.iter()
            .map(|row| row.try_get::<String>("", "version").expect("a version"))
            .collect()
    }

    /// The certificate file the Postgres server presents (`ssl_cert_file`),
    /// as an absolute path.
    pub async fn server_certificate_file(&self) -> std::path::PathBuf {
        let connection = Database::connect(self.url.as_str())
            .await
            .expect("connect to the test database");
        let show = |setting: &str| {
            sea_orm::Statement::from_string(
                connection.get_database_backend(),
                format!("SELECT current_setting('{setting}') AS value"),
            )
        };
        let file: String = connection
            .query_one_raw(show("ssl_cert_file"))
            .await
            .expect("read ssl_cert_file")
            .expect("a row")
            .try_get("", "value")
            .expect("a value");
        let data_directory: String = connection
            .query_one_raw(show("data_directory"))
            .await
            .expect("read data_directory")
            .expect("a row")
            .try_get("", "value")
            .expect("a value");
        connection.close().await.ok();
        std::path::Path::new(&data_directory).join(file)
    }

    /// Whether a connection made with `url` (this database, perhaps with
    /// other options) is encrypted, as Postgres reports it.
    pub async fn connection_uses_tls(url: &str) -> bool {
        let connection = Database::connect(url).await.expect("connect to the test database");
        let row = connection
            .query_one_raw(sea_orm::Statement::from_string(
                connection.get_database_backend(),
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ))
            .await
            .expect("read pg_stat_ssl")
            .expect("a row for this connection");
        connection.close().await.ok();
        row.try_get::<bool>("", "ssl").expect("the ssl column")
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let mut options = StoreOptions::new(self.url.clone());
        options.max_connections = 5;
        options.acquire_timeout = Duration::from_secs(10);
        let store = Store::connect(&options).await.expect("connect to the test database");
        store.migrate().await.expect("migrate the test database");
        store
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Postgres { admin_url, name } = &self.cleanup else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop may run inside a runtime (or while unwinding from a panic), so
        // the database is dropped from a thread of its own with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let admin = Database::connect(admin_url.as_str()).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await?;
                admin.close().await?;
                Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            tracing::warn!(database = %self.url, "could not drop test database");
        }
    }
}

fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// The admin URL with its database name replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    let (without_query, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_end = without_query.find("://").map_or(0, |scheme_end| scheme_end + 3);
    let base = match without_query[authority_end..].find('/') {
        Some(slash) => &without_query[..authority_end + slash],
        None => without_query,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn database_url_replaces_only_the_database_name() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            database_url("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(database_url("postgres://h:5432", "x"), "postgres://h:5432/x");
    }
}
