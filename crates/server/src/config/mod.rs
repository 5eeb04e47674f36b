//! Settings: built-in defaults < the TOML file named by `--config` or
//! `BILLING_CONFIG` < environment variables `BILLING__SECTION__KEY`.
//!
//! Unknown keys and bad values stop start-up with a message naming the key.
//! The keys are a contract: deployments and outside tests set them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

mod providers;

pub use providers::{MaxioSettings, ProviderSettings, StripeSettings};

/// The environment variable that names a config file.
pub const CONFIG_FILE_VAR: &str = "BILLING_CONFIG";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformSettings {
    /// Verifies the platform's `POST /webhooks/platform` (Standard
    /// Webhooks, `whsec_…`); unset, that endpoint answers 404. A secret:
    /// set it by environment (`BILLING__PLATFORM__WEBHOOK_SECRET`).
    pub webhook_secret: Option<secrecy::SecretString>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventSettings {
    /// Hosts webhook endpoints may point at: exact names, or `*.suffix`
    /// for its subdomains (environment: comma-separated). https is
    /// required except for loopback names.
    pub allowed_hosts: Vec<String>,
    /// Finished deliveries and delivered events older than this are pruned.
    pub retention_days: u32,
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            allowed_hosts: vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()],
            retention_days: 30,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub clock: ClockSettings,
    pub auth: AuthSettings,
    pub jobs: JobSettings,
    pub billing: BillingSettings,
    pub checkout: CheckoutSettings,
    pub events: EventSettings,
    pub platform: PlatformSettings,
    pub providers: ProviderSettings,
    pub telemetry: TelemetrySettings,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckoutSettings {
    /// How long a consent token may be used, on the service clock
    /// (`24h`, `90m`, `3600s`).
    #[serde(with = "human_duration")]
    pub token_ttl: Duration,
    /// Hosts a session's `return_url` may point at: exact names, or
    /// `*.example.com` for its subdomains (environment: comma-separated).
    pub allowed_return_hosts: Vec<String>,
}

impl Default for CheckoutSettings {
    fn default() -> Self {
        CheckoutSettings {
            token_ttl: Duration::from_secs(24 * 60 * 60),
            allowed_return_hosts: vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "[::1]".to_owned()],
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingSettings {
    pub dunning: DunningSettings,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DunningSettings {
    /// Days after a failed charge on which it is retried, increasing
    /// (environment: comma-separated, e.g. `1,3,5,7`).
    pub retry_days: Vec<u16>,
    /// Days after a failed charge the subscription stays active.
    pub grace_days: u16,
}

impl Default for DunningSettings {
    fn default() -> Self {
        DunningSettings {
            retry_days: vec![1, 3, 5, 7],
            grace_days: 7,
        }
    }
}

impl DunningSettings {
    /// The checked policy.
    pub fn policy(&self) -> Result<billing_domain::dunning::DunningPolicy, ConfigError> {
        billing_domain::dunning::DunningPolicy::new(self.retry_days.clone(), self.grace_days)
            .map_err(|error| ConfigError(format!("billing.dunning.retry_days: {}", error.message())))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// How often the worker looks for due jobs (system clock only; the
    /// manual clock runs jobs inside AdvanceClock).
    #[serde(with = "seconds")]
    pub poll_interval_seconds: Duration,
    /// How long a claimed job is a worker's without word from it: a worker
    /// extends it every third while it works, so only a dead one loses its
    /// jobs, to another replica, after this long.
    #[serde(with = "seconds")]
    pub lease_seconds: Duration,
    /// Jobs worked at once by this replica, each on its own lease. Each
    /// holds a database connection while it works; unset, the machine's
    /// cores, at most half of `database.max_connections`.
    pub workers: Option<usize>,
}

impl Settings {
    /// How many jobs this replica works at once (`jobs.workers`).
    pub fn job_workers(&self) -> usize {
        self.jobs.workers.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
            let pool = usize::try_from(self.database.max_connections / 2).unwrap_or(1).max(1);
            cores.min(pool)
        })
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            poll_interval_seconds: Duration::from_secs(1),
            lease_seconds: billing_app::subscriptions::DEFAULT_LEASE,
            workers: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Where gRPC is served.
    pub grpc_addr: SocketAddr,
    /// Where the HTTP side (checkout page, inbound webhooks, metrics) is served.
    pub http_addr: SocketAddr,
    /// Base of the URLs this service hands out (checkout pages).
    pub public_url: String,
    /// How long in-flight RPCs (and the job in hand) may take to finish once
    /// new connections are refused.
    #[serde(with = "seconds")]
    pub shutdown_grace_seconds: Duration,
    /// How long the server keeps serving after SIGTERM, reporting
    /// NOT_SERVING, so load balancers stop sending before it stops listening.
    #[serde(with = "seconds")]
    pub shutdown_delay_seconds: Duration,
    /// How often the database is pinged to report health.
    #[serde(with = "seconds")]
    pub health_check_interval_seconds: Duration,
    /// The longest an RPC may run, whatever deadline the client sent.
    #[serde(with = "seconds")]
    pub request_timeout_seconds: Duration,
    /// RPCs served at once; beyond it new ones are shed with UNAVAILABLE.
    pub max_concurrent_requests: usize,
    /// The largest request message accepted, encoded.
    pub max_message_bytes: usize,
    /// The HTTP side: how long a client may take to send its headers.
    #[serde(with = "seconds")]
    pub http_header_timeout_seconds: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".to_owned(),
            shutdown_grace_seconds: Duration::from_secs(20),
            shutdown_delay_seconds: Duration::ZERO,
            health_check_interval_seconds: Duration::from_secs(5),
            request_timeout_seconds: Duration::from_secs(30),
            max_concurrent_requests: 256,
            max_message_bytes: 1024 * 1024,
            http_header_timeout_seconds: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://billing.db?mode=rwc` or `postgres://user:password@host/db`.
    /// Secret: it may hold a password.
    pub url: SecretString,
    /// Apply migrations at start. Turn off on Postgres when the Helm hook runs
    /// them.
    pub run_migrations: bool,
    /// Pool size (Postgres; SQLite uses one connection).
    pub max_connections: u32,
    /// How long a request waits for a connection before failing UNAVAILABLE.
    #[serde(with = "seconds")]
    pub acquire_timeout_seconds: Duration,
    /// Memory for entitlements served without a database read, per replica
    /// (MiB; 0: every CheckEntitlement reads the database).
    pub entitlement_cache_mib: u32,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: SecretString::from("sqlite://billing.db?mode=rwc"),
            run_migrations: true,
            max_connections: 10,
            acquire_timeout_seconds: Duration::from_secs(5),
            entitlement_cache_mib: 16,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockMode {
    /// Wall-clock time.
    #[default]
    System,
    /// Time moves only through `TestClockService.AdvanceClock`.
    Manual,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSettings {
    pub mode: ClockMode,
    /// Where a manual clock starts (RFC 3339); unset = the current time.
    pub start_time: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// No authentication: allowed only while gRPC listens on loopback.
    #[default]
    None,
    /// `authorization: Bearer <JWT>` on every RPC but health and reflection.
    Jwt,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// The shared secret of HS256 tokens. Secret.
    pub hs256_secret: Option<SecretString>,
    /// A JWKS file of RS256 and/or ES256 public keys, chosen by `kid`; read
    /// again whenever it changes.
    pub jwks_file: Option<std::path::PathBuf>,
    /// The `iss` every token must carry, when set.
    pub issuer: Option<String>,
    /// An `aud` every token must carry, when set.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            mode: AuthMode::None,
            hs256_secret: None,
            jwks_file: None,
            issuer: None,
            audience: None,
            leeway_seconds: 30,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    /// How often the gauges of `/metrics` (subscriptions by state, jobs due,
    /// queue lag) are sampled from the database; every scrape samples too.
    #[serde(with = "seconds")]
    pub metrics_sample_seconds: Duration,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            log_format: LogFormat::default(),
            metrics_sample_seconds: Duration::from_secs(15),
        }
    }
}

/// Start-up stops with this; the message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads settings from the optional file and the given environment
    /// (`std::env::vars()` in production; a map in tests).
    pub fn load(file: Option<&Path>, environment: HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml).required(true));
        }
        let environment = config::Environment::with_prefix("BILLING")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("billing.dunning.retry_days")
            .with_list_parse_key("checkout.allowed_return_hosts")
            .with_list_parse_key("events.allowed_hosts")
            .source(Some(environment));
        let settings: Settings = builder
            .add_source(environment)
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|error| ConfigError(error.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database.url.expose_secret();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError(
                "database.url: expected sqlite:… or postgres://…".to_owned(),
            ));
        }
        if !(self.server.public_url.starts_with("http://") || self.server.public_url.starts_with("https://")) {
            return Err(ConfigError(format!(
                "server.public_url: expected an http(s) URL, got {:?}",
                self.server.public_url
            )));
        }
        if self.auth.mode == AuthMode::None && !self.server.grpc_addr.ip().is_loopback() {
            return Err(ConfigError(format!(
                "auth.mode: \"none\" is allowed only while server.grpc_addr is a loopback address, not {}",
                self.server.grpc_addr
            )));
        }
        self.validate_auth()?;
        self.validate_limits()?;
        if self.jobs.lease_seconds < Duration::from_secs(3) {
            return Err(ConfigError("jobs.lease_seconds: must be at least 3".to_owned()));
        }
        if self.telemetry.metrics_sample_seconds.is_zero() {
            return Err(ConfigError(
                "telemetry.metrics_sample_seconds: must be at least 1".to_owned(),
            ));
        }
        if self.server.health_check_interval_seconds.is_zero() {
            return Err(ConfigError(
                "server.health_check_interval_seconds: must be at least 1".to_owned(),
            ));
        }
        self.billing.dunning.policy()?;
        if self.jobs.poll_interval_seconds.is_zero() {
            return Err(ConfigError("jobs.poll_interval_seconds: must be at least 1".to_owned()));
        }
        if self.checkout.token_ttl.is_zero() {
            return Err(ConfigError("checkout.token_ttl: must be longer than zero".to_owned()));
        }
        if let Some(bad) = self
            .checkout
            .allowed_return_hosts
            .iter()
            .find(|host| host.trim().is_empty() || host.contains(['/', ':']) && !host.starts_with('['))
        {
            return Err(ConfigError(format!(
                "checkout.allowed_return_hosts: {bad:?} is not a host name (no scheme, port or path)"
            )));
        }
        self.validate_providers()?;
        if self.database.max_connections == 0 {
            return Err(ConfigError("database.max_connections: must be at least 1".to_owned()));
        }
        if self.jobs.workers == Some(0) {
            return Err(ConfigError("jobs.workers: must be at least 1".to_owned()));
        }
        Ok(())
    }
}

impl Settings {
    fn validate_auth(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        match auth.mode {
            AuthMode::None => Ok(()),
            AuthMode::Jwt => match (&auth.hs256_secret, &auth.jwks_file) {
                (None, None) => Err(ConfigError(
                    "auth.hs256_secret or auth.jwks_file: one is required when auth.mode is \"jwt\"".to_owned(),
                )),
                (Some(_), Some(_)) => Err(ConfigError(
                    "auth.hs256_secret and auth.jwks_file: set one key source, not both".to_owned(),
                )),
                (Some(secret), None) if secret.expose_secret().len() < 32 => Err(ConfigError(
                    "auth.hs256_secret: must be at least 32 bytes (RFC 7518 asks for 256 bits)".to_owned(),
                )),
                _ => Ok(()),
            },
        }
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        if server.request_timeout_seconds.is_zero() {
            return Err(ConfigError(
                "server.request_timeout_seconds: must be at least 1".to_owned(),
            ));
        }
        if server.max_concurrent_requests == 0 {
            return Err(ConfigError(
                "server.max_concurrent_requests: must be at least 1".to_owned(),
            ));
        }
        if server.max_message_bytes < 1024 {
            return Err(ConfigError(
                "server.max_message_bytes: must be at least 1024".to_owned(),
            ));
        }
        if server.http_header_timeout_seconds.is_zero() {
            return Err(ConfigError(
                "server.http_header_timeout_seconds: must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Durations written for people: `24h`, `90m`, `1h 30m`.
mod human_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map_err(|error| serde::de::Error::custom(format!("{text:?} is not a duration like 24h or 90m: {error}")))
    }
}

/// Durations in config are whole seconds.
pub(crate) mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests;
