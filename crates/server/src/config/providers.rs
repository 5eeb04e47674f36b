//! `providers.*`: which provider bills a directory, and how to reach each.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::{ConfigError, Settings, seconds};

/// Which provider bills a directory, and how to reach each.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderSettings {
    /// `local`, `stripe` or `maxio`.
    pub default: String,
    /// Directory id → provider, overriding `default`.
    pub by_directory: HashMap<String, String>,
    pub stripe: StripeSettings,
    pub maxio: MaxioSettings,
    /// Per attempt of a provider call.
    #[serde(with = "seconds")]
    pub timeout_seconds: Duration,
    /// Attempts per provider call, the first included.
    pub max_attempts: u32,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            default: "local".to_owned(),
            by_directory: HashMap::new(),
            stripe: StripeSettings::default(),
            maxio: MaxioSettings::default(),
            timeout_seconds: Duration::from_secs(10),
            max_attempts: 3,
        }
    }
}

impl ProviderSettings {
    /// Every provider some directory is billed by.
    pub fn in_use(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.default.as_str()).chain(self.by_directory.values().map(String::as_str))
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripeSettings {
    /// `sk_live_…` / `sk_test_…`. Secret.
    pub api_key: Option<SecretString>,
    /// The webhook endpoint's signing secret (`whsec_…`). Secret.
    pub webhook_secret: Option<SecretString>,
    pub base_url: String,
    /// How far a webhook's signed timestamp may be from now.
    #[serde(with = "seconds")]
    pub webhook_tolerance_seconds: Duration,
}

impl Default for StripeSettings {
    fn default() -> Self {
        StripeSettings {
            api_key: None,
            webhook_secret: None,
            base_url: "https://api.stripe.com".to_owned(),
            webhook_tolerance_seconds: Duration::from_secs(300),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaxioSettings {
    /// The site: `https://{subdomain}.chargify.com`.
    pub subdomain: Option<String>,
    /// The site's API key. Secret.
    pub api_key: Option<SecretString>,
    /// The site's shared key that signs webhooks. Secret.
    pub webhook_secret: Option<SecretString>,
    /// Overrides the URL made from `subdomain`.
    pub base_url: Option<String>,
}

impl MaxioSettings {
    pub fn base_url(&self) -> Option<String> {
        self.base_url.clone().or_else(|| {
            self.subdomain
                .as_deref()
                .map(|subdomain| format!("https://{subdomain}.chargify.com"))
        })
    }
}

impl Settings {
    pub(super) fn validate_providers(&self) -> Result<(), ConfigError> {
        let providers = &self.providers;
        for (key, name) in std::iter::once(("providers.default".to_owned(), &providers.default)).chain(
            providers
                .by_directory
                .iter()
                .map(|(directory, name)| (format!("providers.by_directory.{directory}"), name)),
        ) {
            if !matches!(name.as_str(), "local" | "stripe" | "maxio") {
                return Err(ConfigError(format!(
                    "{key}: {name:?} is not a provider (local, stripe, maxio)"
                )));
            }
        }
        let uses = |name: &str| providers.in_use().any(|used| used == name);
        if uses("stripe") {
            if providers.stripe.api_key.is_none() {
                return Err(ConfigError(
                    "providers.stripe.api_key: required when a directory is billed by stripe".into(),
                ));
            }
            if providers.stripe.webhook_secret.is_none() {
                return Err(ConfigError(
                    "providers.stripe.webhook_secret: required when a directory is billed by stripe".into(),
                ));
            }
        }
        if uses("maxio") {
            if providers.maxio.base_url().is_none() {
                return Err(ConfigError(
                    "providers.maxio.subdomain: required when a directory is billed by maxio".into(),
                ));
            }
            if providers.maxio.api_key.is_none() {
                return Err(ConfigError(
                    "providers.maxio.api_key: required when a directory is billed by maxio".into(),
                ));
            }
            if providers.maxio.webhook_secret.is_none() {
                return Err(ConfigError(
                    "providers.maxio.webhook_secret: required when a directory is billed by maxio".into(),
                ));
            }
        }
        if providers.max_attempts == 0 || providers.timeout_seconds.is_zero() {
            return Err(ConfigError(
                "providers.max_attempts / providers.timeout_seconds: must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
