//! Tests of the settings loader: defaults, layering, and refusals that name their key.

use billing_domain::Provider;

use super::*;

fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let environment = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Settings::load(None, environment)
}

#[test]
fn defaults_are_the_embedded_setup() {
    let settings = load(&[]).unwrap();
    assert_eq!(settings.server.grpc_addr.to_string(), "127.0.0.1:50051");
    assert_eq!(settings.server.http_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(settings.database.url.expose_secret(), "sqlite://billing.db?mode=rwc");
    assert!(settings.database.run_migrations);
    assert_eq!(settings.clock.mode, ClockMode::System);
    assert_eq!(settings.telemetry.log_format, LogFormat::Pretty);
}

#[test]
fn environment_overrides_defaults() {
    let settings = load(&[
        ("BILLING__SERVER__GRPC_ADDR", "127.0.0.1:6000"),
        ("BILLING__DATABASE__URL", "postgres://postgres@127.0.0.1/billing"),
        ("BILLING__DATABASE__RUN_MIGRATIONS", "false"),
        ("BILLING__CLOCK__MODE", "manual"),
        ("BILLING__CLOCK__START_TIME", "2026-01-31T00:00:00Z"),
        ("BILLING__TELEMETRY__LOG_FORMAT", "json"),
        ("UNRELATED", "ignored"),
    ])
    .unwrap();
    assert_eq!(settings.server.grpc_addr.port(), 6000);
    assert!(!settings.database.run_migrations);
    assert_eq!(settings.clock.mode, ClockMode::Manual);
    assert_eq!(
        settings.clock.start_time.unwrap().to_rfc3339(),
        "2026-01-31T00:00:00+00:00"
    );
    assert_eq!(settings.telemetry.log_format, LogFormat::Json);
}

#[test]
fn bad_values_name_their_key() {
    let cases = [
        ("BILLING__SERVER__GRPC_ADDR", "not-an-address", "grpc_addr"),
        ("BILLING__CLOCK__MODE", "sundial", "clock.mode"),
        ("BILLING__CLOCK__START_TIME", "yesterday", "clock.start_time"),
        ("BILLING__DATABASE__URL", "mysql://x", "database.url"),
        ("BILLING__DATABASE__RUN_MIGRATIONS", "maybe", "run_migrations"),
        ("BILLING__SERVER__PUBLIC_URL", "ftp://x", "server.public_url"),
        ("BILLING__SERVER__GRPC_ADRR", "127.0.0.1:1", "grpc_adrr"),
        ("BILLING__TELEMETRY__LOG_FORMAT", "xml", "telemetry.log_format"),
        (
            "BILLING__TELEMETRY__METRICS_SAMPLE_SECONDS",
            "0",
            "telemetry.metrics_sample_seconds",
        ),
        ("BILLING__JOBS__LEASE_SECONDS", "1", "jobs.lease_seconds"),
    ];
    for (key, value, named) in cases {
        let error = load(&[(key, value)]).unwrap_err().to_string();
        assert!(error.contains(named), "{key}={value}: {error}");
    }
}

#[test]
fn the_dunning_schedule_is_configurable_and_checked() {
    let settings = load(&[
        ("BILLING__BILLING__DUNNING__RETRY_DAYS", "2,4"),
        ("BILLING__BILLING__DUNNING__GRACE_DAYS", "4"),
    ])
    .unwrap();
    assert_eq!(settings.billing.dunning.retry_days, [2, 4]);
    assert_eq!(settings.billing.dunning.grace_days, 4);
    assert_eq!(load(&[]).unwrap().billing.dunning.retry_days, [1, 3, 5, 7]);
    let error = load(&[("BILLING__BILLING__DUNNING__RETRY_DAYS", "5,3")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("billing.dunning.retry_days"), "{error}");
}

#[test]
fn checkout_settings_are_read_and_checked() {
    let defaults = load(&[]).unwrap();
    assert_eq!(defaults.checkout.token_ttl, Duration::from_secs(86_400));
    assert_eq!(
        defaults.checkout.allowed_return_hosts,
        ["localhost", "127.0.0.1", "[::1]"]
    );
    let settings = load(&[
        ("BILLING__CHECKOUT__TOKEN_TTL", "90m"),
        (
            "BILLING__CHECKOUT__ALLOWED_RETURN_HOSTS",
            "app.example.com,*.partner.test",
        ),
    ])
    .unwrap();
    assert_eq!(settings.checkout.token_ttl, Duration::from_secs(5400));
    assert_eq!(
        settings.checkout.allowed_return_hosts,
        ["app.example.com", "*.partner.test"]
    );
    for (key, value) in [
        ("BILLING__CHECKOUT__TOKEN_TTL", "soon"),
        ("BILLING__CHECKOUT__TOKEN_TTL", "0s"),
        ("BILLING__CHECKOUT__ALLOWED_RETURN_HOSTS", "https://app.example.com"),
    ] {
        let error = load(&[(key, value)]).unwrap_err().to_string();
        assert!(error.contains("checkout."), "{key}={value}: {error}");
    }
}

#[test]
fn providers_are_chosen_per_directory_and_need_their_secrets() {
    let settings = load(&[
        ("BILLING__PROVIDERS__DEFAULT", "stripe"),
        ("BILLING__PROVIDERS__BY_DIRECTORY__PARTNER", "maxio"),
        ("BILLING__PROVIDERS__STRIPE__API_KEY", "sk_test_1"),
        ("BILLING__PROVIDERS__STRIPE__WEBHOOK_SECRET", "whsec_1"),
        ("BILLING__PROVIDERS__MAXIO__SUBDOMAIN", "acme"),
        ("BILLING__PROVIDERS__MAXIO__API_KEY", "key"),
        ("BILLING__PROVIDERS__MAXIO__WEBHOOK_SECRET", "shared"),
    ])
    .unwrap();
    assert_eq!(settings.providers.default, Provider::Stripe);
    assert_eq!(settings.providers.by_directory["partner"], Provider::Maxio);
    assert_eq!(
        settings.providers.maxio.base_url().unwrap(),
        "https://acme.chargify.com"
    );
    assert!(
        !format!("{settings:?}").contains("sk_test_1"),
        "secrets stay out of Debug"
    );
    for (pairs, named) in [
        (vec![("BILLING__PROVIDERS__DEFAULT", "paypal")], "providers.default"),
        (
            vec![("BILLING__PROVIDERS__BY_DIRECTORY__X", "chargify")],
            "\"chargify\" is not a provider (local, stripe, maxio)",
        ),
        (
            vec![("BILLING__PROVIDERS__DEFAULT", "stripe")],
            "providers.stripe.api_key",
        ),
        (
            vec![("BILLING__PROVIDERS__BY_DIRECTORY__X", "maxio")],
            "providers.maxio.subdomain",
        ),
    ] {
        let error = load(&pairs).unwrap_err().to_string();
        assert!(error.contains(named), "{pairs:?}: {error}");
    }
}

#[test]
fn no_auth_is_refused_off_loopback() {
    let error = load(&[("BILLING__SERVER__GRPC_ADDR", "0.0.0.0:50051")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("auth.mode"), "{error}");
}

#[test]
fn jwt_auth_needs_exactly_one_key_source() {
    let secret = "0123456789abcdef0123456789abcdef";
    let settings = load(&[
        ("BILLING__SERVER__GRPC_ADDR", "0.0.0.0:50051"),
        ("BILLING__AUTH__MODE", "jwt"),
        ("BILLING__AUTH__HS256_SECRET", secret),
        ("BILLING__AUTH__ISSUER", "https://issuer.example"),
    ])
    .unwrap();
    assert_eq!(settings.auth.mode, AuthMode::Jwt);
    assert_eq!(settings.auth.leeway_seconds, 30);
    assert_eq!(settings.auth.issuer.as_deref(), Some("https://issuer.example"));
    assert!(
        !format!("{settings:?}").contains(secret),
        "the secret stays out of Debug"
    );
    for pairs in [
        vec![("BILLING__AUTH__MODE", "jwt")],
        vec![
            ("BILLING__AUTH__MODE", "jwt"),
            ("BILLING__AUTH__HS256_SECRET", secret),
            ("BILLING__AUTH__JWKS_FILE", "/etc/billing/jwks.json"),
        ],
        vec![("BILLING__AUTH__MODE", "jwt"), ("BILLING__AUTH__HS256_SECRET", "short")],
        vec![("BILLING__AUTH__MODE", "basic")],
    ] {
        let error = load(&pairs).unwrap_err().to_string();
        assert!(error.contains("auth."), "{pairs:?}: {error}");
    }
}

#[test]
fn limits_have_defaults_and_are_checked() {
    let defaults = load(&[]).unwrap();
    assert_eq!(defaults.server.request_timeout_seconds, Duration::from_secs(30));
    assert_eq!(defaults.server.shutdown_delay_seconds, Duration::ZERO);
    let chart = load(&[("BILLING__SERVER__SHUTDOWN_DELAY_SECONDS", "5")]).unwrap();
    assert_eq!(chart.server.shutdown_delay_seconds, Duration::from_secs(5));
    assert_eq!(defaults.server.max_message_bytes, 1024 * 1024);
    assert!(defaults.server.max_concurrent_requests > 0);
    for (key, value) in [
        ("BILLING__SERVER__REQUEST_TIMEOUT_SECONDS", "0"),
        ("BILLING__SERVER__MAX_CONCURRENT_REQUESTS", "0"),
        ("BILLING__SERVER__MAX_MESSAGE_BYTES", "10"),
    ] {
        let error = load(&[(key, value)]).unwrap_err().to_string();
        assert!(error.contains("server."), "{key}={value}: {error}");
    }
}

#[test]
fn the_database_password_stays_out_of_debug() {
    let settings = load(&[("BILLING__DATABASE__URL", "postgres://billing:hunter2-secret@db/billing")]).unwrap();
    assert!(!format!("{settings:?}").contains("hunter2-secret"));
}

#[test]
fn a_config_file_is_read_and_env_wins() {
    let directory = std::env::temp_dir().join(format!("billing-config-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let file = directory.join("billing.toml");
    std::fs::write(
        &file,
        "[server]\ngrpc_addr = \"127.0.0.1:7000\"\n[database]\nmax_connections = 3\n",
    )
    .unwrap();
    let environment = HashMap::from([("BILLING__SERVER__GRPC_ADDR".to_owned(), "127.0.0.1:7001".to_owned())]);
    let settings = Settings::load(Some(&file), environment).unwrap();
    std::fs::remove_dir_all(&directory).ok();
    assert_eq!(settings.server.grpc_addr.port(), 7001);
    assert_eq!(settings.database.max_connections, 3);
}

#[test]
fn job_workers_default_to_the_cores_within_half_the_pool() {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let settings = load(&[("BILLING__DATABASE__MAX_CONNECTIONS", "2")]).unwrap();
    assert_eq!(settings.job_workers(), 1, "half of a pool of two");
    let settings = load(&[("BILLING__DATABASE__MAX_CONNECTIONS", "1000")]).unwrap();
    assert_eq!(settings.job_workers(), cores);
    let settings = load(&[("BILLING__JOBS__WORKERS", "12")]).unwrap();
    assert_eq!(settings.job_workers(), 12, "set, it is taken as it is");
    let error = load(&[("BILLING__JOBS__WORKERS", "0")]).unwrap_err();
    assert!(error.to_string().contains("jobs.workers"), "{error}");
    assert_eq!(load(&[]).unwrap().database.entitlement_cache_mib, 16);
    let settings = load(&[("BILLING__DATABASE__ENTITLEMENT_CACHE_MIB", "0")]).unwrap();
    assert_eq!(settings.database.entitlement_cache_mib, 0, "0 turns the cache off");
}
