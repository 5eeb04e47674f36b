//! Where a checkout sends its buyer back: a URL checked once, when its
//! session is created.

use std::fmt;

use url::Url;

use crate::error::{DomainError, Reason};

/// Longest `return_url` accepted.
pub const MAX_RETURN_URL_LEN: usize = 2048;

/// Where the buyer is sent back to: an absolute http(s) URL on an allowed
/// host, without credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ReturnUrl(Url);

impl ReturnUrl {
    /// Parses and checks a client's URL. `allowed_hosts` holds host names
    /// (`app.example.com`) or wildcards for their subdomains
    /// (`*.example.com`); hosts compare case-insensitively.
    pub fn parse(text: &str, allowed_hosts: &[String]) -> Result<Self, DomainError> {
        let invalid = |description: String| Err(DomainError::new(Reason::ReturnUrlInvalid, description));
        if text.is_empty() {
            return invalid("must not be empty".to_owned());
        }
        if text.len() > MAX_RETURN_URL_LEN {
            return invalid(format!("must be at most {MAX_RETURN_URL_LEN} characters"));
        }
        let Ok(url) = Url::parse(text) else {
            return invalid(format!("{text:?} is not an absolute URL"));
        };
        if !matches!(url.scheme(), "http" | "https") {
            return invalid(format!("must be http or https, not {:?}", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return invalid("must not carry a user name or password".to_owned());
        }
        let Some(host) = url.host_str() else {
            return invalid("must name a host".to_owned());
        };
        let host = host.to_ascii_lowercase();
        if !allowed_hosts.iter().any(|allowed| host_allowed(&host, allowed)) {
            return Err(DomainError::new(
                Reason::ReturnUrlNotAllowed,
                format!("host {host:?} is not in checkout.allowed_return_hosts"),
            ));
        }
        Ok(ReturnUrl(url))
    }

    /// A URL that was checked when its session was created.
    pub fn restore(text: &str) -> Result<Self, crate::Fault> {
        Url::parse(text)
            .map(ReturnUrl)
            .map_err(|error| crate::Fault::new(format!("stored return_url {text:?}: {error}")))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The origin (`https://app.example.com:8443`) the buyer lands on.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }

    /// The URL with `pairs` added to its query (existing parameters kept).
    pub fn with_query(&self, pairs: &[(&str, &str)]) -> String {
        let mut url = self.0.clone();
        url.query_pairs_mut().extend_pairs(pairs);
        url.into()
    }
}

impl fmt::Debug for ReturnUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:?}", self.0.as_str())
    }
}

fn host_allowed(host: &str, allowed: &str) -> bool {
    let allowed = allowed.trim().to_ascii_lowercase();
    match allowed.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|subdomain| subdomain.len() > 1 && subdomain.ends_with('.')),
        None => host == allowed,
    }
}
