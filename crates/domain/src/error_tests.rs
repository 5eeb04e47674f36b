use super::*;
use crate::text::{Code, ExternalId};

#[test]
fn first_violation_gives_the_reason_and_all_are_kept() {
    let mut violations = Violations::new();
    violations.push("code", Reason::CodeInvalid, "must not be empty");
    violations.push("prices", Reason::PriceInvalid, "must not be empty");
    let error = violations.into_result().unwrap_err();
    assert_eq!(error.reason(), Reason::CodeInvalid);
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert_eq!(error.violations().len(), 2);
    assert_eq!(error.message(), "code: must not be empty; prices: must not be empty");
}

#[test]
fn prefixing_rewrites_every_field_path() {
    let error = DomainError::field("prices[0]", Reason::PriceInvalid, "negative").prefixed("offering");
    assert_eq!(error.violations()[0].field, "offering.prices[0]");
    assert_eq!(error.message(), "offering.prices[0]: negative");
    let indexed = DomainError::field("[2].amount_minor", Reason::PriceInvalid, "negative").prefixed("prices");
    assert_eq!(indexed.violations()[0].field, "prices[2].amount_minor");
}

#[test]
fn a_bad_value_becomes_a_violation_of_the_field_it_came_from() {
    let error = DomainError::new(Reason::FieldInvalid, "must not be empty").prefixed("directory_id");
    assert_eq!(error.violations()[0].field, "directory_id");
    assert_eq!(error.message(), "directory_id: must not be empty");
    let state = DomainError::new(Reason::OfferingRetired, "retired").prefixed("offering");
    assert!(state.violations().is_empty());
}

#[test]
fn an_empty_collector_is_ok() {
    assert!(Violations::new().into_result().is_ok());
}

#[test]
fn an_optional_field_is_checked_only_when_set() {
    let mut violations = Violations::new();
    assert_eq!(violations.check_optional("business_id", "", ExternalId::parse), None);
    assert_eq!(
        violations
            .check_optional("business_id", "biz-1", ExternalId::parse)
            .map(|id| id.to_string()),
        Some("biz-1".to_owned())
    );
    assert_eq!(
        violations.check_optional("offering_code", "Not A Code", Code::parse),
        None
    );
    let error = violations.into_result().unwrap_err();
    let fields: Vec<&str> = error
        .violations()
        .iter()
        .map(|violation| violation.field.as_str())
        .collect();
    assert_eq!(fields, ["offering_code"]);
}

#[test]
fn state_errors_are_recorded_under_the_prefix_when_checked() {
    let mut violations = Violations::new();
    let checked: Option<()> = violations.check("offering.family", Err(DomainError::new(Reason::CodeInvalid, "bad")));
    assert!(checked.is_none());
    let error = violations.into_result().unwrap_err();
    assert_eq!(error.violations()[0].field, "offering.family");
}

#[test]
fn reason_texts_round_trip() {
    for reason in [
        Reason::FieldInvalid,
        Reason::EtagMismatch,
        Reason::Internal,
        Reason::AlreadySubscribed,
    ] {
        assert_eq!(Reason::from_text(reason.as_str()), Some(reason));
    }
    assert_eq!(Reason::from_text("NOPE"), None);
}

#[test]
fn reason_strings_are_screaming_snake_case() {
    for reason in [Reason::OfferingNotFound, Reason::BundleCycle, Reason::PageSizeInvalid] {
        let text = reason.as_str();
        assert!(text.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{text}");
    }
}
