//! `providers.*`: which provider bills a directory, and how to reach each.

use std::collections::HashMap;
use std::time::Duration;

use billing_domain::Provider;
use secrecy::SecretString;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::{ConfigError, Settings, seconds};

/// Which provider bills a directory, and how to reach each.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderSettings {
    /// `local`, `stripe` or `maxio`.
    #[serde(deserialize_with = "provider")]
    pub default: Provider,
    /// Directory id → provider, overriding `default`.
    #[serde(deserialize_with = "providers_by_key")]
    pub by_directory: HashMap<String, Provider>,
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
            default: Provider::Local,
            by_directory: HashMap::new(),
            stripe: StripeSettings::default(),
            maxio: MaxioSettings::default(),
            timeout_seconds: Duration::from_secs(10),
            max_attempts: 3,
        }
    }
}

impl ProviderSettings {
    /// Whether some directory is billed by `provider`.
    pub fn uses(&self, provider: Provider) -> bool {
        self.default == provider || self.by_directory.values().any(|used| *used == provider)
    }
}

/// A provider by its name; any other name stops start-up with the names
/// there are (the loader adds the key).
fn provider<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Provider, D::Error> {
    let name = String::deserialize(deserializer)?;
    Provider::from_text(&name).ok_or_else(|| {
        let names: Vec<&str> = Provider::ALL.iter().map(|provider| provider.as_str()).collect();
        D::Error::custom(format!("{name:?} is not a provider ({})", names.join(", ")))
    })
}

fn providers_by_key<'de, D: Deserializer<'de>>(deserializer: D) -> Result<HashMap<String, Provider>, D::Error> {
    #[derive(Deserialize)]
    struct Named(#[serde(deserialize_with = "provider")] Provider);
    let named = HashMap::<String, Named>::deserialize(deserializer)?;
    Ok(named
        .into_iter()
        .map(|(key, Named(provider))| (key, provider))
        .collect())
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
        if providers.uses(Provider::Stripe) {
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
        if providers.uses(Provider::Maxio) {
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
