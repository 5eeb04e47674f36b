//! Who is calling, and what they may see.
//!
//! A caller is the subject of a verified token with one of three scopes: the
//! platform (every tenant), one partner directory (its businesses), or one
//! business. The server decides which RPCs a role may call; these pure rules
//! decide whether a resource is within the caller's scope.

use crate::error::{DomainError, Reason};
use crate::text::ExternalId;

/// Longest `sub` claim accepted; it scopes idempotency keys.
pub const MAX_SUBJECT_LEN: usize = 255;

text_enum! {
    /// The `role` claim.
    Role {
        Service => "service",
        Directory => "directory",
        Business => "business",
    }
}

/// The tenants a caller acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A platform service: every directory and business.
    Platform,
    /// A partner directory: its own catalog view and its businesses.
    Directory(ExternalId),
    /// One business: its own subscriptions, invoices and payment method.
    Business(ExternalId),
}

/// The owner of a resource, as far as scoping cares.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    pub business_id: &'a ExternalId,
    /// The business's directory; `None` when it is not known (a business
    /// that was never provisioned belongs to no directory).
    pub directory_id: Option<&'a ExternalId>,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    subject: String,
    scope: Scope,
}

impl Caller {
    /// A caller from the claims of a verified token: `sub`, `role`, and the
    /// `directory_id` or `business_id` its role needs. Claims that do not
    /// make a caller are `AUTH_TOKEN_INVALID`.
    pub fn from_claims(
        subject: &str,
        role: &str,
        directory_id: Option<&str>,
        business_id: Option<&str>,
    ) -> Result<Self, DomainError> {
        let invalid = |description: String| DomainError::new(Reason::AuthTokenInvalid, description);
        if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN {
            return Err(invalid(format!(
                "the token's sub claim must be 1 to {MAX_SUBJECT_LEN} characters"
            )));
        }
        let Some(role) = Role::from_text(role) else {
            return Err(invalid(
                "the token's role claim must be service, directory or business".to_owned(),
            ));
        };
        let tenant = |claim: &str, value: Option<&str>| -> Result<ExternalId, DomainError> {
            let value = value.ok_or_else(|| invalid(format!("a {} token needs a {claim} claim", role.as_str())))?;
            ExternalId::parse(value).map_err(|error| invalid(format!("the token's {claim} claim {}", error.message())))
        };
        let scope = match role {
            Role::Service => Scope::Platform,
            Role::Directory => Scope::Directory(tenant("directory_id", directory_id)?),
            Role::Business => Scope::Business(tenant("business_id", business_id)?),
        };
        Ok(Caller {
            subject: subject.to_owned(),
            scope,
        })
    }

    /// A platform caller; what every request is when authentication is off.
    pub fn platform(subject: &str) -> Self {
        Caller {
            subject: subject.to_owned(),
            scope: Scope::Platform,
        }
    }

    /// The `sub` claim: idempotency keys are scoped to it.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn role(&self) -> Role {
        match self.scope {
            Scope::Platform => Role::Service,
            Scope::Directory(_) => Role::Directory,
            Scope::Business(_) => Role::Business,
        }
    }

    /// Whether a resource of `owner` is within the caller's scope.
    pub fn sees(&self, owner: Owner<'_>) -> bool {
        match &self.scope {
            Scope::Platform => true,
            Scope::Directory(directory_id) => owner.directory_id == Some(directory_id),
            Scope::Business(business_id) => owner.business_id == business_id,
        }
    }

    /// Whether the caller acts for `directory_id` itself (its catalog, its
    /// provisioning). A business acts for no directory; what it may read of
    /// its directory's catalog is decided from its business record.
    pub fn acts_for_directory(&self, directory_id: &ExternalId) -> bool {
        match &self.scope {
            Scope::Platform => true,
            Scope::Directory(own) => own == directory_id,
            Scope::Business(_) => false,
        }
    }
}

/// The refusal for a request that names a tenant outside the caller's scope.
pub fn outside_scope(what: &str) -> DomainError {
    DomainError::new(
        Reason::PermissionDenied,
        format!("the caller may not act for this {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn id(text: &str) -> ExternalId {
        ExternalId::parse(text).unwrap()
    }

    #[test]
    fn claims_make_a_caller_of_each_role() {
        let service = Caller::from_claims("billing-admin", "service", None, None).unwrap();
        assert_eq!(service.role(), Role::Service);
        assert_eq!(service.subject(), "billing-admin");
        let directory = Caller::from_claims("partner-app", "directory", Some("acme"), None).unwrap();
        assert_eq!(directory.scope(), &Scope::Directory(id("acme")));
        let business = Caller::from_claims("owner-7", "business", None, Some("biz-7")).unwrap();
        assert_eq!(business.scope(), &Scope::Business(id("biz-7")));
    }

    #[test]
    fn claims_that_make_no_caller_are_invalid_tokens() {
        let too_long = "s".repeat(MAX_SUBJECT_LEN + 1);
        let cases: [(&str, &str, Option<&str>, Option<&str>); 6] = [
            ("", "service", None, None),
            (too_long.as_str(), "service", None, None),
            ("x", "admin", None, None),
            ("x", "directory", None, Some("biz")),
            ("x", "business", Some("acme"), None),
            ("x", "business", None, Some(" padded ")),
        ];
        for (subject, role, directory_id, business_id) in cases {
            let error = Caller::from_claims(subject, role, directory_id, business_id).unwrap_err();
            assert_eq!(
                error.reason(),
                Reason::AuthTokenInvalid,
                "{role} {directory_id:?} {business_id:?}"
            );
            assert_eq!(error.kind(), ErrorKind::Unauthenticated);
        }
    }

    #[test]
    fn each_scope_sees_exactly_its_own_tenants() {
        let business_id = id("biz-1");
        let directory_id = id("acme");
        let own = Owner {
            business_id: &business_id,
            directory_id: Some(&directory_id),
        };
        let other_business = id("biz-2");
        let other_directory = id("other");
        let foreign = Owner {
            business_id: &other_business,
            directory_id: Some(&other_directory),
        };
        let unprovisioned = Owner {
            business_id: &business_id,
            directory_id: None,
        };
        let platform = Caller::platform("svc");
        let directory = Caller::from_claims("d", "directory", Some("acme"), None).unwrap();
        let business = Caller::from_claims("b", "business", None, Some("biz-1")).unwrap();
        assert!(platform.sees(own) && platform.sees(foreign));
        assert!(directory.sees(own) && !directory.sees(foreign) && !directory.sees(unprovisioned));
        assert!(business.sees(own) && !business.sees(foreign) && business.sees(unprovisioned));
    }

    #[test]
    fn only_the_platform_and_the_directory_itself_act_for_a_directory() {
        let acme = id("acme");
        assert!(Caller::platform("svc").acts_for_directory(&acme));
        assert!(
            Caller::from_claims("d", "directory", Some("acme"), None)
                .unwrap()
                .acts_for_directory(&acme)
        );
        assert!(
            !Caller::from_claims("d", "directory", Some("other"), None)
                .unwrap()
                .acts_for_directory(&acme)
        );
        assert!(
            !Caller::from_claims("b", "business", None, Some("biz"))
                .unwrap()
                .acts_for_directory(&acme)
        );
    }

    #[test]
    fn naming_another_tenant_is_permission_denied() {
        let error = outside_scope("business");
        assert_eq!(error.reason(), Reason::PermissionDenied);
        assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    }
}
