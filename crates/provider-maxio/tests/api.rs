//! Maxio request bodies and answers, on fixtures written from the Maxio
//! Advanced Billing API documentation, and webhook signatures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_provider_api::{InboundEvent, ProviderErrorKind, Report};
use billing_provider_maxio::api::{self, NewMaxioSubscription};
use billing_provider_maxio::webhook::{self, SignatureError};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn json_fixture(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

#[test]
fn a_subscription_is_created_by_handles_with_our_reference() {
    let new = NewMaxioSubscription {
        reference: "sub_1".into(),
        customer_reference: "biz-1".into(),
        product_handle: "bookings".into(),
        product_price_point_handle: Some("bookings-eur".into()),
        components: vec![("seat".into(), 3)],
        coupon_code: Some("WELCOME20".into()),
    };
    assert_eq!(
        api::create_body(&new),
        json!({"subscription": {
            "product_handle": "bookings",
            "product_price_point_handle": "bookings-eur",
            "customer_reference": "biz-1",
            "reference": "sub_1",
            "components": [{"component_id": "handle:seat", "allocated_quantity": 3}],
            "coupon_code": "WELCOME20",
        }})
    );
    let plain = NewMaxioSubscription {
        product_price_point_handle: None,
        components: Vec::new(),
        coupon_code: None,
        ..new
    };
    assert_eq!(
        api::create_body(&plain),
        json!({"subscription": {"product_handle": "bookings", "customer_reference": "biz-1", "reference": "sub_1"}})
    );
}

#[test]
fn migrations_allocations_and_cancels_have_their_bodies() {
    assert_eq!(
        api::migration_body("pro-yearly", None),
        json!({"migration": {
            "product_handle": "pro-yearly", "preserve_period": true, "include_coupons": true,
            "include_trial": false, "include_initial_charge": false,
        }})
    );
    assert_eq!(
        api::migration_body("pro-yearly", Some("eur"))["migration"]["product_price_point_handle"],
        "eur"
    );
    assert_eq!(api::allocation_body(5)["allocation"]["quantity"], 5);
    assert_eq!(api::allocation_body(5)["allocation"]["upgrade_charge"], "prorated");
    assert_eq!(
        api::cancel_body("moving on"),
        json!({"cancellation_message": "moving on"})
    );
}

#[test]
fn answers_parse() {
    let subscription = api::parse_subscription(&json_fixture("subscription.json")).unwrap();
    assert_eq!(subscription.id, 15_236_915);
    assert_eq!(subscription.state, "active");
    assert_eq!(
        subscription.reference.as_deref(),
        Some("sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b")
    );
    assert_eq!(subscription.product_handle.as_deref(), Some("pro-monthly"));
    assert_eq!(
        subscription.current_period_ends_at.unwrap().to_rfc3339(),
        "2026-04-10T14:00:00+00:00"
    );
    assert!(!subscription.cancel_at_end_of_period);
    let preview = api::parse_migration_preview(&json_fixture("migration_preview.json")).unwrap();
    assert_eq!((preview.payment_due_in_cents, preview.charge_in_cents), (1016, 2032));
    assert!(api::parse_subscription(&json!({})).is_err());
}

#[test]
fn refusals_name_their_reasons() {
    let taken = json_fixture("reference_taken.json");
    assert!(api::reference_taken(&taken));
    let missing = json_fixture("product_not_found.json");
    assert!(!api::reference_taken(&missing));
    let error = api::api_error(422, &missing);
    assert_eq!(error.kind(), ProviderErrorKind::InvalidRequest);
    assert!(error.message().contains("'no-such-plan' does not exist"), "{error}");
    assert_eq!(api::api_error(503, &Value::Null).kind(), ProviderErrorKind::Unavailable);
}

#[test]
fn webhooks_are_verified_and_parsed() {
    let body = fixture("webhook_payment_failure.txt");
    let signature = webhook::sign(body.as_bytes(), "site-shared-key");
    assert_eq!(signature.len(), 64);
    assert_eq!(
        webhook::verify(Some(&signature), body.as_bytes(), "site-shared-key"),
        Ok(())
    );
    assert_eq!(
        webhook::verify(None, body.as_bytes(), "k"),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        webhook::verify(Some(&signature), body.as_bytes(), "other-key"),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        webhook::verify(Some("zz"), body.as_bytes(), "site-shared-key"),
        Err(SignatureError::Mismatch)
    );
    let event = webhook::parse_event(body.as_bytes()).unwrap();
    assert_eq!(event.id, "141765008");
    assert_eq!(event.event, "payment_failure");
    assert_eq!(event.subscription_id, Some(15_236_915));
    assert_eq!(event.reference.as_deref(), Some("sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b"));
    assert_eq!(event.state.as_deref(), Some("past_due"));
    assert_eq!(event.updated_at.unwrap().to_rfc3339(), "2026-04-10T14:00:05+00:00");
    assert_eq!(
        event.current_period_ends_at.unwrap().to_rfc3339(),
        "2026-05-10T14:00:00+00:00"
    );
    let change = webhook::parse_event(fixture("webhook_state_change.txt").as_bytes()).unwrap();
    assert_eq!(
        (
            change.event.as_str(),
            change.state.as_deref(),
            change.previous_state.as_deref()
        ),
        ("subscription_state_change", Some("canceled"), Some("active"))
    );
    assert_eq!(webhook::parse_event(b"event=x"), None);
    assert_eq!(webhook::parse_event(b"{}"), None);
}

#[test]
fn webhooks_are_read_as_reports_of_our_subscriptions_or_not_acted_on() {
    let Some(InboundEvent::Subscription {
        event_id,
        event_type,
        reference,
        report,
        as_of,
    }) = webhook::read(fixture("webhook_payment_failure.txt").as_bytes())
    else {
        panic!("a payment failure is a report");
    };
    assert_eq!(
        (event_id.as_str(), event_type.as_str()),
        ("141765008", "payment_failure")
    );
    assert_eq!(reference.as_deref(), Some("sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b"));
    assert_eq!(report, Report::PaymentFailed);
    assert_eq!(as_of.unwrap().to_rfc3339(), "2026-04-10T14:00:05+00:00");
    let canceled = webhook::read(fixture("webhook_state_change.txt").as_bytes());
    assert!(
        matches!(
            &canceled,
            Some(InboundEvent::Subscription {
                report: Report::Ended,
                ..
            })
        ),
        "{canceled:?}"
    );
    assert_eq!(
        webhook::read(b"id=1&event=customer_update"),
        Some(InboundEvent::NotActedOn {
            event_type: "customer_update".into()
        })
    );
    assert_eq!(webhook::read(b"event=x"), None);
}

#[test]
fn maxio_events_map_to_reports() {
    let event = |name: &str, state: Option<&str>, period: bool| webhook::MaxioEvent {
        id: "1".into(),
        event: name.into(),
        subscription_id: None,
        reference: None,
        state: state.map(str::to_owned),
        previous_state: None,
        current_period_started_at: period.then(|| "2026-04-10T00:00:00Z".parse().unwrap()),
        current_period_ends_at: period.then(|| "2026-05-10T00:00:00Z".parse().unwrap()),
        updated_at: None,
    };
    let cases = [
        (event("payment_failure", None, false), Some(Report::PaymentFailed)),
        (event("renewal_failure", None, false), Some(Report::PaymentFailed)),
        (event("payment_success", None, false), Some(Report::PaymentSucceeded)),
        (
            event("renewal_success", None, true),
            Some(Report::Renewed {
                start: "2026-04-10T00:00:00Z".parse().unwrap(),
                end: "2026-05-10T00:00:00Z".parse().unwrap(),
            }),
        ),
        (event("renewal_success", None, false), None),
        (
            event("subscription_state_change", Some("active"), false),
            Some(Report::Active),
        ),
        (
            event("subscription_state_change", Some("trialing"), false),
            Some(Report::Active),
        ),
        (
            event("subscription_state_change", Some("past_due"), false),
            Some(Report::PaymentFailed),
        ),
        (
            event("subscription_state_change", Some("unpaid"), false),
            Some(Report::PaymentFailed),
        ),
        (
            event("subscription_state_change", Some("canceled"), false),
            Some(Report::Ended),
        ),
        (
            event("subscription_state_change", Some("expired"), false),
            Some(Report::Ended),
        ),
        (event("subscription_state_change", Some("on_hold"), false), None),
        (event("subscription_state_change", None, false), None),
        (event("customer_update", None, false), None),
    ];
    for (event, expected) in cases {
        assert_eq!(
            webhook::report_of(&event),
            expected,
            "{} {:?}",
            event.event,
            event.state
        );
    }
}
