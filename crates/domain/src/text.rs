//! Validated strings: codes (handles), ids the platform gives us, and bounded
//! human-readable text.

use std::fmt;

use crate::error::{DomainError, Reason};

/// Longest code, external id or short name accepted.
pub const MAX_CODE_LEN: usize = 64;
/// Longest display name accepted.
pub const MAX_DISPLAY_NAME_LEN: usize = 200;
/// Longest description accepted.
pub const MAX_DESCRIPTION_LEN: usize = 2000;

/// A handle such as an offering code (`pro-monthly`) or a coupon code
/// (`WELCOME20`): 1–64 of `A–Z a–z 0–9 - _ .`, starting with a letter or digit.
/// Codes are case-sensitive.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code(String);

impl Code {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let invalid = |description: String| Err(DomainError::new(Reason::CodeInvalid, description));
        let Some(first) = text.chars().next() else {
            return invalid("must not be empty".to_owned());
        };
        if text.len() > MAX_CODE_LEN {
            return invalid(format!("must be at most {MAX_CODE_LEN} characters"));
        }
        if !first.is_ascii_alphanumeric() {
            return invalid(format!("{text:?} must start with a letter or a digit"));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return invalid(format!(
                "{text:?} contains {bad:?}; only letters, digits, '-', '_' and '.' are allowed"
            ));
        }
        Ok(Code(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Code {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:?}", self.0)
    }
}

/// An id the platform owns (`directory_id`, `business_id`, `buyer_id`), taken
/// as given: 1–64 characters, no control characters or surrounding spaces.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(text: &str) -> Result<Self, DomainError> {
        let invalid = |description: &str| Err(DomainError::new(Reason::FieldInvalid, description.to_owned()));
        if text.is_empty() {
            return invalid("must not be empty");
        }
        if text.chars().count() > MAX_CODE_LEN {
            return invalid("must be at most 64 characters");
        }
        if text.chars().any(char::is_control) || text.trim() != text {
            return invalid("must not contain control characters or surrounding spaces");
        }
        Ok(ExternalId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for ExternalId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:?}", self.0)
    }
}

/// A required, trimmed-non-empty name of at most [`MAX_DISPLAY_NAME_LEN`]
/// characters.
pub fn display_name(text: &str) -> Result<String, DomainError> {
    if text.trim().is_empty() {
        return Err(DomainError::new(Reason::FieldInvalid, "must not be empty"));
    }
    bounded(text, MAX_DISPLAY_NAME_LEN)
}

/// Optional text of at most [`MAX_DESCRIPTION_LEN`] characters.
pub fn description(text: &str) -> Result<String, DomainError> {
    bounded(text, MAX_DESCRIPTION_LEN)
}

fn bounded(text: &str, max_chars: usize) -> Result<String, DomainError> {
    if text.chars().count() > max_chars {
        return Err(DomainError::new(
            Reason::FieldInvalid,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(DomainError::new(
            Reason::FieldInvalid,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_accept_handles_and_coupon_codes() {
        for text in ["pro-monthly", "WELCOME20", "a", "plan_2.0", "9lives", &"x".repeat(64)] {
            assert!(Code::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn codes_reject_empty_long_and_odd_characters() {
        for text in ["", " pro", "-pro", "pro monthly", "pro/monthly", "prö", &"x".repeat(65)] {
            let error = Code::parse(text).unwrap_err();
            assert_eq!(error.reason(), Reason::CodeInvalid, "{text}");
        }
    }

    #[test]
    fn external_ids_are_taken_as_given_within_bounds() {
        assert!(ExternalId::parse("biz:42/ü").is_ok());
        assert!(ExternalId::parse(&"é".repeat(64)).is_ok());
        for text in ["", " padded", "tab\there", &"x".repeat(65)] {
            assert!(ExternalId::parse(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn names_must_have_content_and_fit() {
        assert!(display_name("Pro").is_ok());
        assert!(display_name("   ").is_err());
        assert!(display_name(&"n".repeat(201)).is_err());
        assert!(description("").is_ok());
        assert!(description("two\nlines").is_ok());
        assert!(description("bell\u{7}").is_err());
    }
}
