use billing_domain::{DomainError, ErrorKind, FieldViolation, Reason};
use billing_storage::StorageError;

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A rule said no; the message is for the client.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database is unreachable; retrying later may work.
    #[error("the database is unavailable")]
    Unavailable(#[source] StorageError),
    /// Anything else. The cause is for the log, never for the client.
    #[error("internal error")]
    Internal(#[source] StorageError),
}

impl AppError {
    pub fn kind(&self) -> ErrorKind {
        self.reason().kind()
    }

    pub fn reason(&self) -> Reason {
        match self {
            AppError::Domain(error) => error.reason(),
            AppError::Unavailable(_) => Reason::DatabaseUnavailable,
            AppError::Internal(_) => Reason::Internal,
        }
    }

    /// The message safe to show a client.
    pub fn client_message(&self) -> String {
        match self {
            AppError::Domain(error) => error.message().to_owned(),
            AppError::Unavailable(_) => "the database is unavailable; retry later".to_owned(),
            AppError::Internal(_) => "internal error".to_owned(),
        }
    }

    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            AppError::Domain(error) => error.violations(),
            AppError::Unavailable(_) | AppError::Internal(_) => &[],
        }
    }

    /// Puts field paths under the request field that carried the input.
    pub fn prefixed(self, prefix: &str) -> Self {
        match self {
            AppError::Domain(error) => AppError::Domain(error.prefixed(prefix)),
            other => other,
        }
    }

    /// Turns a unique-key violation into `reason` on `field`; other storage
    /// errors keep their meaning.
    pub(crate) fn on_conflict(error: StorageError, field: &str, reason: Reason, description: String) -> Self {
        match error {
            StorageError::UniqueViolation(_) => AppError::Domain(DomainError::field(field, reason, description)),
            other => AppError::from(other),
        }
    }
}

impl From<StorageError> for AppError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(_) => AppError::Unavailable(error),
            StorageError::UniqueViolation(_)
            | StorageError::Database(_)
            | StorageError::Corrupt { .. }
            | StorageError::TimeOutOfRange(_) => AppError::Internal(error),
        }
    }
}
