//! The one mapping from error kinds to gRPC status codes.
//!
//! Every error carries `google.rpc.ErrorInfo` with its reason (DESIGN §3) and,
//! for bad input, `google.rpc.BadRequest` with one violation per bad field.
//! Internal errors are logged with their cause chain and answered with a
//! generic message.

use std::collections::HashMap;
use std::error::Error as _;

use billing_app::AppError;
use billing_domain::payment_method::redact_card_numbers;
use billing_domain::{DomainError, ErrorKind};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// `ErrorInfo.domain` of every error this service returns.
pub const ERROR_DOMAIN: &str = "billing.v1";

pub fn code_for(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Aborted => Code::Aborted,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Internal => Code::Internal,
    }
}

/// The kind of a gRPC code: the inverse of `code_for`, and for the codes
/// only tonic itself answers, the kind nearest in meaning. HTTP answers of
/// RPCs take their status from it, through `http::status_for`.
pub fn kind_for(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
        Code::NotFound | Code::Unimplemented => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        Code::Aborted => ErrorKind::Aborted,
        Code::Unavailable | Code::Cancelled => ErrorKind::Unavailable,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::PermissionDenied => ErrorKind::PermissionDenied,
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        Code::Ok | Code::Unknown | Code::Internal | Code::DataLoss => ErrorKind::Internal,
    }
}

/// The status for an error, logged at a level that matches who is at fault.
/// Messages may quote client input; a card number in it never leaves as is.
pub fn to_status(error: AppError) -> Status {
    let reason = error.reason();
    let message = redact_card_numbers(&error.client_message()).into_owned();
    match error.kind() {
        ErrorKind::Internal | ErrorKind::Unavailable => {
            let chain = error_chain(&error);
            tracing::error!(reason = reason.as_str(), error = %redact_card_numbers(&chain), "request failed");
        }
        _ => tracing::info!(reason = reason.as_str(), message = %message, "request rejected"),
    }
    let mut details = ErrorDetails::new();
    details.set_error_info(reason.as_str(), ERROR_DOMAIN, HashMap::new());
    if !error.violations().is_empty() {
        let violations: Vec<FieldViolation> = error
            .violations()
            .iter()
            .map(|violation| {
                let mut field_violation = FieldViolation::new(
                    violation.field.clone(),
                    redact_card_numbers(&violation.description).into_owned(),
                );
                field_violation.reason = violation.reason.as_str().to_owned();
                field_violation
            })
            .collect();
        details.set_bad_request(violations);
    }
    Status::with_error_details(code_for(error.kind()), message, details)
}

/// For errors found while converting a request, before the app is called.
pub fn invalid(error: DomainError) -> Status {
    to_status(AppError::Rule(error))
}

/// The status for a refusal by the gate in front of the services (auth and
/// limits), with its reason and, for an oversized field, the field.
pub fn refused(reason: billing_domain::Reason, message: impl Into<String>) -> Status {
    to_status(AppError::Rule(DomainError::new(reason, message)))
}

fn error_chain(error: &AppError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use billing_domain::Reason;

    use super::*;

    #[test]
    fn bad_input_carries_reason_and_field_violations() {
        let error = DomainError::field("offering.code", Reason::CodeInvalid, "must not be empty");
        let status = invalid(error);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, "CODE_INVALID");
        assert_eq!(info.domain, ERROR_DOMAIN);
        let violation = &details.bad_request().unwrap().field_violations[0];
        assert_eq!(violation.field, "offering.code");
        assert_eq!(violation.reason, "CODE_INVALID");
    }

    #[test]
    fn card_numbers_quoted_from_input_leave_redacted() {
        let error = DomainError::field(
            "offering_code",
            Reason::CodeInvalid,
            "\"4242 4242 4242 4242\" contains ' '",
        );
        let status = invalid(error);
        assert!(!status.message().contains("4242"), "{}", status.message());
        let details = status.get_error_details();
        let violation = &details.bad_request().unwrap().field_violations[0];
        assert!(!violation.description.contains("4242"), "{}", violation.description);
    }

    #[test]
    fn every_kind_comes_back_from_its_code() {
        for reason in billing_domain::Reason::ALL {
            let kind = reason.kind();
            assert_eq!(kind_for(code_for(kind)), kind, "{reason:?}");
        }
    }

    #[test]
    fn state_errors_have_no_field_violations() {
        let status = invalid(DomainError::new(Reason::OfferingRetired, "retired"));
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.get_error_details().bad_request().is_none());
    }
}
