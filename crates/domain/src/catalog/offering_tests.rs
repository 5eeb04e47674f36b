use std::collections::{BTreeMap, HashSet};

use chrono::{TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::catalog::BundleNode;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap()
}

fn code(text: &str) -> Code {
    Code::parse(text).unwrap()
}

fn products() -> HashSet<Code> {
    ["website", "online-store"].into_iter().map(code).collect()
}

fn bundles() -> BundleGraph {
    BundleGraph::new([(
        code("seo"),
        BundleNode {
            family: code("seo"),
            bundled_offering_codes: vec![],
        },
    )])
}

fn valid_draft() -> OfferingDraft {
    OfferingDraft {
        code: "pro-monthly".into(),
        display_name: "Pro".into(),
        description: "Everything".into(),
        offering_type: Some(OfferingType::Package),
        family: "package".into(),
        product_codes: vec!["website".into(), "online-store".into()],
        prices: vec![MoneyDraft::new("USD", 3000), MoneyDraft::new("EUR", 2800)],
        billing_interval: Some(BillingInterval::Month),
        billing_alignment: None,
        trial_days: 14,
        bundled_offering_codes: vec!["seo".into()],
        components: vec![ComponentDraft {
            code: "seat".into(),
            display_name: "Seat".into(),
            unit_prices: vec![MoneyDraft::new("EUR", 400), MoneyDraft::new("USD", 500)],
        }],
        status: None,
        provider_refs: BTreeMap::from([("stripe.price".to_owned(), "price_123".to_owned())]),
    }
}

fn create(draft: &OfferingDraft) -> Result<Offering, DomainError> {
    Offering::create(
        draft,
        &products(),
        &bundles(),
        OfferingId::from_uuid(Uuid::nil()),
        now(),
    )
}

fn violations_of(draft: &OfferingDraft) -> Vec<(String, Reason)> {
    let error = create(draft).unwrap_err();
    error.violations().iter().map(|v| (v.field.clone(), v.reason)).collect()
}

#[test]
fn a_valid_draft_becomes_an_active_anniversary_offering() {
    let offering = create(&valid_draft()).unwrap();
    assert_eq!(offering.code.as_str(), "pro-monthly");
    assert_eq!(offering.family.as_str(), "package");
    assert_eq!(offering.status, OfferingStatus::Active);
    assert_eq!(offering.billing_alignment, BillingAlignment::Anniversary);
    assert_eq!(offering.trial_days, 14);
    assert!(!offering.has_subscriptions);
    assert_eq!(offering.create_time, now());
}

#[test]
fn family_defaults_to_the_code() {
    let draft = OfferingDraft {
        family: String::new(),
        ..valid_draft()
    };
    assert_eq!(create(&draft).unwrap().family.as_str(), "pro-monthly");
}

#[test]
fn each_bad_field_gets_its_path_and_reason() {
    type Edit = fn(&mut OfferingDraft);
    let cases: &[(&str, Edit, &str, Reason)] = &[
        ("empty code", |d| d.code.clear(), "code", Reason::CodeInvalid),
        (
            "code with space",
            |d| d.code = "pro monthly".into(),
            "code",
            Reason::CodeInvalid,
        ),
        (
            "empty name",
            |d| d.display_name = " ".into(),
            "display_name",
            Reason::FieldInvalid,
        ),
        ("bad family", |d| d.family = "-x".into(), "family", Reason::CodeInvalid),
        ("no type", |d| d.offering_type = None, "type", Reason::FieldInvalid),
        (
            "no interval",
            |d| d.billing_interval = None,
            "billing_interval",
            Reason::FieldInvalid,
        ),
        (
            "negative trial",
            |d| d.trial_days = -1,
            "trial_days",
            Reason::FieldInvalid,
        ),
        ("long trial", |d| d.trial_days = 731, "trial_days", Reason::FieldInvalid),
        (
            "retired at birth",
            |d| d.status = Some(OfferingStatus::Retired),
            "status",
            Reason::FieldInvalid,
        ),
        (
            "unknown product",
            |d| d.product_codes[1] = "ghost".into(),
            "product_codes[1]",
            Reason::ProductNotFound,
        ),
        (
            "product twice",
            |d| d.product_codes[1] = "website".into(),
            "product_codes[1]",
            Reason::FieldInvalid,
        ),
        ("no prices", |d| d.prices.clear(), "prices", Reason::PriceInvalid),
        (
            "negative price",
            |d| d.prices[0].amount_minor = -1,
            "prices[0].amount_minor",
            Reason::PriceInvalid,
        ),
        (
            "unknown currency",
            |d| d.prices[1].currency_code = "ABC".into(),
            "prices[1].currency_code",
            Reason::CurrencyUnknown,
        ),
        (
            "lower-case currency",
            |d| d.prices[1].currency_code = "eur".into(),
            "prices[1].currency_code",
            Reason::CurrencyUnknown,
        ),
        (
            "currency twice",
            |d| d.prices[1].currency_code = "USD".into(),
            "prices[1].currency_code",
            Reason::DuplicateCurrency,
        ),
        (
            "free in one currency only",
            |d| d.prices[0].amount_minor = 0,
            "prices",
            Reason::PriceInvalid,
        ),
        (
            "unknown bundle",
            |d| d.bundled_offering_codes = vec!["ghost".into()],
            "bundled_offering_codes[0]",
            Reason::BundledOfferingNotFound,
        ),
        (
            "self bundle",
            |d| d.bundled_offering_codes = vec!["pro-monthly".into()],
            "bundled_offering_codes[0]",
            Reason::BundleCycle,
        ),
        (
            "component code twice",
            |d| d.components.push(d.components[0].clone()),
            "components[1].code",
            Reason::DuplicateComponents,
        ),
        (
            "component without name",
            |d| d.components[0].display_name.clear(),
            "components[0].display_name",
            Reason::FieldInvalid,
        ),
        (
            "component missing a currency",
            |d| {
                d.components[0].unit_prices.pop();
            },
            "components[0].unit_prices",
            Reason::PriceInvalid,
        ),
        (
            "bad provider ref key",
            |d| {
                d.provider_refs.insert("bad key".into(), "v".into());
            },
            "provider_refs[\"bad key\"]",
            Reason::FieldInvalid,
        ),
        (
            "empty provider ref value",
            |d| {
                d.provider_refs.insert("maxio.product_handle".into(), String::new());
            },
            "provider_refs[\"maxio.product_handle\"]",
            Reason::FieldInvalid,
        ),
    ];
    for (name, edit, field, reason) in cases {
        let mut draft = valid_draft();
        edit(&mut draft);
        assert_eq!(violations_of(&draft), [((*field).to_owned(), *reason)], "case: {name}");
    }
}

#[test]
fn all_violations_are_reported_together() {
    let draft = OfferingDraft {
        code: String::new(),
        prices: vec![MoneyDraft::new("USD", -5)],
        billing_interval: None,
        ..valid_draft()
    };
    let fields: Vec<String> = violations_of(&draft).into_iter().map(|(field, _)| field).collect();
    assert!(fields.contains(&"code".to_owned()));
    assert!(fields.contains(&"billing_interval".to_owned()));
    assert!(fields.contains(&"prices[0].amount_minor".to_owned()));
}

#[test]
fn status_transitions_follow_the_lifecycle() {
    use OfferingStatus::{Active, Hidden, Retired};
    let allowed = [
        (Active, Active),
        (Active, Hidden),
        (Active, Retired),
        (Hidden, Active),
        (Hidden, Hidden),
        (Hidden, Retired),
        (Retired, Retired),
    ];
    for from in [Active, Hidden, Retired] {
        for to in [Active, Hidden, Retired] {
            assert_eq!(from.can_become(to), allowed.contains(&(from, to)), "{from:?} -> {to:?}");
        }
    }
}

#[test]
fn update_changes_display_fields_and_status() {
    let offering = create(&valid_draft()).unwrap();
    let later = now() + chrono::Duration::hours(1);
    let update = OfferingUpdate {
        display_name: Some("Pro (legacy)".into()),
        status: Some(Some(OfferingStatus::Hidden)),
        ..OfferingUpdate::default()
    };
    let updated = offering.update(&update, later).unwrap();
    assert_eq!(updated.display_name, "Pro (legacy)");
    assert_eq!(updated.status, OfferingStatus::Hidden);
    assert_eq!(updated.description, offering.description);
    assert_eq!(updated.update_time, later);
    assert_eq!(updated.create_time, offering.create_time);
}

#[test]
fn retired_is_final() {
    let offering = create(&valid_draft()).unwrap();
    let retire = OfferingUpdate {
        status: Some(Some(OfferingStatus::Retired)),
        ..OfferingUpdate::default()
    };
    let retired = offering.update(&retire, now()).unwrap();
    let revive = OfferingUpdate {
        status: Some(Some(OfferingStatus::Active)),
        ..OfferingUpdate::default()
    };
    let error = retired.update(&revive, now()).unwrap_err();
    assert_eq!(error.reason(), Reason::OfferingStatusTransitionInvalid);
}

#[test]
fn prices_change_only_while_nobody_subscribes() {
    let offering = create(&valid_draft()).unwrap();
    let reprice = OfferingUpdate {
        prices: Some(vec![MoneyDraft::new("USD", 3500), MoneyDraft::new("EUR", 3200)]),
        ..OfferingUpdate::default()
    };
    let repriced = offering.update(&reprice, now()).unwrap();
    assert_eq!(repriced.prices.as_slice()[0].amount_minor(), 3500);

    let mut record = offering.into_record();
    record.has_subscriptions = true;
    let subscribed = Offering::restore(record);
    assert_eq!(
        subscribed.update(&reprice, now()).unwrap_err().reason(),
        Reason::OfferingPricesImmutable
    );
    // Sending the same prices back is not a change.
    let same = OfferingUpdate {
        prices: Some(vec![MoneyDraft::new("USD", 3000), MoneyDraft::new("EUR", 2800)]),
        ..OfferingUpdate::default()
    };
    assert!(subscribed.update(&same, now()).is_ok());
}

#[test]
fn new_prices_must_keep_the_component_currencies() {
    let offering = create(&valid_draft()).unwrap();
    let update = OfferingUpdate {
        prices: Some(vec![MoneyDraft::new("USD", 3500)]),
        ..OfferingUpdate::default()
    };
    let error = offering.update(&update, now()).unwrap_err();
    assert_eq!(error.reason(), Reason::PriceInvalid);
    assert_eq!(error.violations()[0].field, "prices");
}

#[test]
fn an_unspecified_status_in_an_update_is_rejected() {
    let offering = create(&valid_draft()).unwrap();
    let update = OfferingUpdate {
        status: Some(None),
        ..OfferingUpdate::default()
    };
    assert_eq!(
        offering.update(&update, now()).unwrap_err().reason(),
        Reason::FieldInvalid
    );
}

#[test]
fn text_forms_round_trip() {
    for status in [OfferingStatus::Active, OfferingStatus::Hidden, OfferingStatus::Retired] {
        assert_eq!(OfferingStatus::from_text(status.as_str()), Some(status));
    }
    for kind in [OfferingType::Package, OfferingType::App, OfferingType::Addon] {
        assert_eq!(OfferingType::from_text(kind.as_str()), Some(kind));
    }
    assert_eq!(BillingInterval::from_text("WEEK"), None);
}
