//! The two failure kinds beside a rule's refusal that the domain names:
//! the provider's refusal and a fault (see the kinds in `error`).

use crate::error::{FieldViolation, Reason};

/// The billing provider refused: a card declined, a token or payment
/// method it does not accept. The provider's own code and words are kept,
/// for the client and for the subscription's history.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    reason: Reason,
    /// The request field the provider refused, if it was one.
    field: Option<String>,
    /// The provider's code (`card_declined`, `insufficient_funds`, …).
    code: String,
    message: String,
}

impl Refusal {
    /// A charge the provider declined; `outcome` says what it means for the
    /// request ("nothing was bought").
    pub fn declined(code: &str, provider_message: &str, outcome: &str) -> Self {
        Refusal {
            reason: Reason::PaymentDeclined,
            field: None,
            code: code.to_owned(),
            message: format!("the payment was declined ({code}): {provider_message}; {outcome}"),
        }
    }

    /// A refusal as it was answered before (read back from an idempotency
    /// record): its reason and message, the provider's code inside it.
    pub fn restored(reason: Reason, message: &str) -> Self {
        Refusal {
            reason,
            field: None,
            code: String::new(),
            message: message.to_owned(),
        }
    }

    /// A value of `field` the provider does not accept (an unknown token).
    pub fn invalid(field: &str, provider_message: &str) -> Self {
        Refusal {
            reason: Reason::FieldInvalid,
            field: Some(field.to_owned()),
            code: String::new(),
            message: format!("the billing provider refused it: {provider_message}"),
        }
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The refused field as a violation, if a field was refused.
    pub fn violations(&self) -> Vec<FieldViolation> {
        self.field
            .iter()
            .map(|field| FieldViolation::new(field.clone(), self.reason, self.message.clone()))
            .collect()
    }
}

/// Something that should not happen did: a bug, data that no longer reads,
/// a configuration found wanting only when used. The text is for the log;
/// a client is told `INTERNAL` and nothing more.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Fault(String);

impl Fault {
    pub fn new(detail: impl Into<String>) -> Self {
        Fault(detail.into())
    }
}
