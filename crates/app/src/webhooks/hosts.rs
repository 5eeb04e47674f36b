//! Where webhooks may go: hosts matching `events.allowed_hosts` (exact, or
//! `*.suffix`), over https — plain http only to a loopback name — and, at
//! send time, never to an address outside what the name promised.

use std::net::IpAddr;

use billing_domain::{DomainError, Reason};
use url::{Host, Url};

/// The names that mean this machine.
const LOOPBACK_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1", "[::1]"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedHosts {
    patterns: Vec<String>,
}

impl Default for AllowedHosts {
    fn default() -> Self {
        AllowedHosts {
            patterns: LOOPBACK_NAMES.iter().map(|name| (*name).to_owned()).collect(),
        }
    }
}

fn refused(description: String) -> DomainError {
    DomainError::field("url", Reason::WebhookUrlNotAllowed, description)
}

fn is_loopback_name(host: &str) -> bool {
    LOOPBACK_NAMES.contains(&host) || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl AllowedHosts {
    pub fn new(patterns: Vec<String>) -> Self {
        AllowedHosts {
            patterns: patterns
                .into_iter()
                .map(|pattern| pattern.to_ascii_lowercase())
                .collect(),
        }
    }

    fn allows(&self, host: &str) -> bool {
        self.patterns.iter().any(|pattern| match pattern.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => pattern == host,
        })
    }

    /// The URL, if webhooks may go there.
    pub fn check(&self, text: &str) -> Result<Url, DomainError> {
        let url = Url::parse(text).map_err(|error| refused(format!("{text:?} is not an absolute URL: {error}")))?;
        let host = match url.host() {
            Some(Host::Domain(name)) => name.to_ascii_lowercase(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(refused(format!("{text:?} has no host"))),
        };
        match url.scheme() {
            "https" => {}
            "http" if is_loopback_name(&host) => {}
            other => {
                return Err(refused(format!(
                    "{other}:// is not allowed: use https (plain http only to this machine)"
                )));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refused("credentials in the URL are not allowed".to_owned()));
        }
        if !self.allows(&host) {
            return Err(refused(format!(
                "host {host} is not in events.allowed_hosts ({})",
                self.patterns.join(", ")
            )));
        }
        Ok(url)
    }

    /// Whether `address`, which `host` resolved to at send time, may be
    /// sent to: a loopback address only for a loopback name; never an
    /// unspecified, multicast or link-local (cloud metadata) address.
    pub fn resolved_allowed(host: &str, address: IpAddr) -> bool {
        let link_local = match address {
            IpAddr::V4(ip) => ip.is_link_local(),
            IpAddr::V6(ip) => (ip.segments()[0] & 0xffc0) == 0xfe80,
        };
        if address.is_unspecified() || address.is_multicast() || link_local {
            return false;
        }
        !address.is_loopback() || is_loopback_name(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_exactly_or_by_suffix() {
        let allowed = AllowedHosts::new(vec![
            "hooks.example.com".into(),
            "*.svc.cluster.local".into(),
            "localhost".into(),
        ]);
        assert!(allowed.check("https://hooks.example.com/in").is_ok());
        assert!(allowed.check("https://orders.shop.svc.cluster.local:8443/hook").is_ok());
        assert!(allowed.check("http://localhost:9000/hook").is_ok());
        for refused in [
            "https://evil.example.com/in",
            "https://svc.cluster.local/in",
            "https://x.svc.cluster.local.evil.com/",
            "http://hooks.example.com/in",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "not a url",
            "http://127.0.0.1:9/",
        ] {
            let error = allowed.check(refused).unwrap_err();
            assert_eq!(error.reason(), Reason::WebhookUrlNotAllowed, "{refused}");
            assert_eq!(error.violations()[0].field, "url");
        }
        assert!(AllowedHosts::default().check("http://127.0.0.1:9000/").is_ok());
    }

    #[test]
    fn resolved_addresses_are_checked_against_the_name() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(AllowedHosts::resolved_allowed("localhost", local));
        assert!(
            !AllowedHosts::resolved_allowed("hooks.example.com", local),
            "a name rebound to this machine"
        );
        assert!(!AllowedHosts::resolved_allowed(
            "hooks.example.com",
            "169.254.169.254".parse().unwrap()
        ));
        assert!(AllowedHosts::resolved_allowed(
            "hooks.example.com",
            "10.1.2.3".parse().unwrap()
        ));
    }
}
