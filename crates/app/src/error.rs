//! Why a use case failed, by kind. Each kind is its own variant carrying
//! its own type, so a refusal can never be reported as a fault or the
//! reverse; the server maps them to gRPC in one place
//! (`grpc::status::to_status`) and to HTTP in one place (`http::status_for`).

use billing_domain::{DomainError, ErrorKind, Fault, FieldViolation, Reason, Refusal};
use billing_storage::StorageError;

/// What did not answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dependency {
    Database,
    Provider,
}

/// A dependency did not answer; retrying later may work.
#[derive(Debug, thiserror::Error)]
#[error("the {} is unavailable: {detail}", match .dependency { Dependency::Database => "database", Dependency::Provider => "billing provider" })]
pub struct Unavailable {
    pub dependency: Dependency,
    /// For the log.
    pub detail: String,
    #[source]
    pub source: Option<StorageError>,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A rule said no; the message is for the client.
    #[error(transparent)]
    Rule(DomainError),
    /// The billing provider said no; its words are for the client.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A dependency did not answer: `UNAVAILABLE`, retryable.
    #[error(transparent)]
    Unavailable(Unavailable),
    /// A fault. The cause is for the log, never for the client.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// A fault, described for the log.
    pub fn fault(detail: impl Into<String>) -> Self {
        AppError::Internal(Box::new(Fault::new(detail)))
    }

    /// The billing provider did not answer.
    pub fn provider_unavailable(detail: impl Into<String>) -> Self {
        AppError::Unavailable(Unavailable {
            dependency: Dependency::Provider,
            detail: detail.into(),
            source: None,
        })
    }

    pub fn kind(&self) -> ErrorKind {
        self.reason().kind()
    }

    pub fn reason(&self) -> Reason {
        match self {
            AppError::Rule(error) => error.reason(),
            AppError::Refused(refusal) => refusal.reason(),
            AppError::Unavailable(Unavailable {
                dependency: Dependency::Database,
                ..
            }) => Reason::DatabaseUnavailable,
            AppError::Unavailable(Unavailable {
                dependency: Dependency::Provider,
                ..
            }) => Reason::ProviderUnavailable,
            AppError::Internal(_) => Reason::Internal,
        }
    }

    /// The message safe to show a client.
    pub fn client_message(&self) -> String {
        match self {
            AppError::Rule(error) => error.message().to_owned(),
            AppError::Refused(refusal) => refusal.message().to_owned(),
            AppError::Unavailable(Unavailable {
                dependency: Dependency::Database,
                ..
            }) => "the database is unavailable; retry later".to_owned(),
            AppError::Unavailable(Unavailable {
                dependency: Dependency::Provider,
                ..
            }) => "the billing provider is unavailable; retry later".to_owned(),
            AppError::Internal(_) => "internal error".to_owned(),
        }
    }

    pub fn violations(&self) -> Vec<FieldViolation> {
        match self {
            AppError::Rule(error) => error.violations().to_vec(),
            AppError::Refused(refusal) => refusal.violations(),
            AppError::Unavailable(_) | AppError::Internal(_) => Vec::new(),
        }
    }

    /// A refusal (by a rule or by the provider) is the request's final
    /// answer, stored under its idempotency key; unavailability and faults
    /// are not: the request may be retried.
    pub fn is_final(&self) -> bool {
        matches!(self, AppError::Rule(_) | AppError::Refused(_)) && self.kind() != ErrorKind::InvalidArgument
    }

    /// Puts field paths under the request field that carried the input.
    pub fn prefixed(self, prefix: &str) -> Self {
        match self {
            AppError::Rule(error) => AppError::Rule(error.prefixed(prefix)),
            other => other,
        }
    }

    /// Turns a unique-key violation into `reason` on `field`; other storage
    /// errors keep their meaning.
    pub(crate) fn on_conflict(error: StorageError, field: &str, reason: Reason, description: String) -> Self {
        match error {
            StorageError::UniqueViolation(_) => AppError::Rule(DomainError::field(field, reason, description)),
            other => AppError::from(other),
        }
    }
}

/// A rule's refusal stays one; a `DomainError` that names a fault or an
/// outage (a domain invariant broken, a stored value that no longer reads)
/// becomes that kind, so its message is never sent as if it were a rule's.
impl From<DomainError> for AppError {
    fn from(error: DomainError) -> Self {
        match error.kind() {
            ErrorKind::Internal => AppError::Internal(Box::new(error)),
            ErrorKind::Unavailable => AppError::Unavailable(Unavailable {
                dependency: if error.reason() == Reason::DatabaseUnavailable {
                    Dependency::Database
                } else {
                    Dependency::Provider
                },
                detail: error.message().to_owned(),
                source: None,
            }),
            _ => AppError::Rule(error),
        }
    }
}

impl From<Fault> for AppError {
    fn from(fault: Fault) -> Self {
        AppError::Internal(Box::new(fault))
    }
}

impl From<StorageError> for AppError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(_) => AppError::Unavailable(Unavailable {
                dependency: Dependency::Database,
                detail: "a query could not reach it".to_owned(),
                source: Some(error),
            }),
            StorageError::UniqueViolation(_)
            | StorageError::Database(_)
            | StorageError::Corrupt { .. }
            | StorageError::TimeOutOfRange(_) => AppError::Internal(Box::new(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_keeps_its_own_type_reason_and_message() {
        let rule: AppError = DomainError::new(Reason::SamePlan, "already on pro").into();
        assert!(matches!(rule, AppError::Rule(_)));
        assert_eq!(rule.client_message(), "already on pro");
        assert!(rule.is_final());

        let refused: AppError =
            Refusal::declined("card_declined", "Your card was declined.", "nothing was bought").into();
        assert!(matches!(refused, AppError::Refused(_)));
        assert_eq!(refused.reason(), Reason::PaymentDeclined);
        assert_eq!(refused.kind(), ErrorKind::FailedPrecondition);
        assert!(refused.client_message().contains("Your card was declined."));
        assert!(refused.is_final());

        let unanswered = AppError::provider_unavailable("stripe answered 503 three times");
        assert_eq!(unanswered.reason(), Reason::ProviderUnavailable);
        assert_eq!(unanswered.kind(), ErrorKind::Unavailable);
        assert!(!unanswered.client_message().contains("503"));
        assert!(!unanswered.is_final());

        let fault = AppError::fault("invoice inv_1 has no lines");
        assert_eq!(fault.reason(), Reason::Internal);
        assert_eq!(fault.client_message(), "internal error");
        assert!(!fault.is_final());
    }

    #[test]
    fn a_domain_error_naming_a_fault_or_an_outage_becomes_one() {
        let broken: AppError = DomainError::new(Reason::Internal, "credit in the wrong currency").into();
        assert!(matches!(broken, AppError::Internal(_)));
        assert_eq!(broken.client_message(), "internal error", "the detail stays in the log");
        assert!(broken.to_string().contains("credit in the wrong currency"));

        let down: AppError = DomainError::new(Reason::DatabaseUnavailable, "pool timed out").into();
        assert!(matches!(
            down,
            AppError::Unavailable(Unavailable {
                dependency: Dependency::Database,
                ..
            })
        ));
        let provider: AppError = DomainError::new(Reason::ProviderUnavailable, "timeout").into();
        assert_eq!(provider.reason(), Reason::ProviderUnavailable);
    }

    #[test]
    fn a_refused_field_is_reported_as_that_field() {
        let refused: AppError = Refusal::invalid("token", "No such PaymentMethod: 'pm_x'").into();
        assert_eq!(refused.reason(), Reason::FieldInvalid);
        assert_eq!(refused.kind(), ErrorKind::InvalidArgument);
        let violations = refused.violations();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "token");
        assert!(
            !refused.is_final(),
            "bad input is not stored: the client fixes it and retries"
        );
    }
}
