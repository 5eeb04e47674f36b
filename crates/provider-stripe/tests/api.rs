//! Stripe request building and answer parsing, on fixtures written from
//! Stripe's API reference, and webhook signatures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_domain::{Currency, Money};
use billing_provider_api::{ChargeOutcome, ChargeRequest, InboundEvent, ProviderErrorKind};
use billing_provider_stripe::api;
use billing_provider_stripe::webhook::{self, SignatureError};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn request(currency: &str, minor: i64) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: "inv_1:attempt:2".into(),
        business_id: "biz-1".into(),
        payment_method: "cus_1:pm_1".into(),
        amount: Money::new(minor, Currency::from_code(currency).unwrap()),
        description: "Invoice INV-000007".into(),
    }
}

#[test]
fn a_payment_intent_is_confirmed_off_session_in_minor_units() {
    let form = api::payment_intent_form(&request("USD", 1999), "cus_1", "pm_1");
    let expected: Vec<(String, String)> = [
        ("amount", "1999"),
        ("currency", "usd"),
        ("customer", "cus_1"),
        ("payment_method", "pm_1"),
        ("confirm", "true"),
        ("off_session", "true"),
        ("description", "Invoice INV-000007"),
        ("metadata[business_id]", "biz-1"),
        ("metadata[charge_key]", "inv_1:attempt:2"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(form, expected);
    // Zero-decimal currencies are sent as they are counted.
    assert_eq!(api::payment_intent_form(&request("JPY", 500), "c", "p")[0].1, "500");
}

#[test]
fn customers_and_searches_are_addressed_by_metadata() {
    assert_eq!(
        api::customer_search_path("biz-1"),
        "/v1/customers/search?query=metadata%5B%27business_id%27%5D%3A%27biz-1%27"
    );
    assert!(api::payment_intent_search_path("it's").contains("it%5C%27s"));
    assert_eq!(
        api::parse_customer_search(&fixture("customer_search.json")).as_deref(),
        Some("cus_NffrFeUfNV2Hib")
    );
    assert_eq!(api::parse_customer_search(&serde_json::json!({"data": []})), None);
    assert_eq!(
        api::parse_customer(&fixture("customer.json")).unwrap(),
        "cus_NffrFeUfNV2Hib"
    );
    assert_eq!(
        api::customer_form("biz-1"),
        [
            ("description".to_owned(), "Business biz-1".to_owned()),
            ("metadata[business_id]".to_owned(), "biz-1".to_owned())
        ]
    );
}

#[test]
fn an_attached_card_keeps_brand_last4_expiry_and_its_customer() {
    let method = api::parse_payment_method(&fixture("payment_method_attached.json")).unwrap();
    assert_eq!(method.provider, billing_provider_api::Provider::Stripe);
    assert_eq!(method.reference, "cus_NffrFeUfNV2Hib:pm_1MqLiJLkdIwHu7ixUEgbFdYF");
    assert_eq!((method.brand.as_str(), method.last4.as_str()), ("visa", "4242"));
    assert_eq!((method.exp_month, method.exp_year), (8, 2027));
    assert_eq!(
        api::split_reference(&method.reference).unwrap(),
        ("cus_NffrFeUfNV2Hib", "pm_1MqLiJLkdIwHu7ixUEgbFdYF")
    );
    assert_eq!(
        api::split_reference("pm_card_visa").unwrap_err().kind(),
        ProviderErrorKind::InvalidRequest
    );
}

#[test]
fn charges_succeed_decline_or_fail() {
    assert_eq!(
        api::parse_charge(200, &fixture("payment_intent_succeeded.json")).unwrap(),
        ChargeOutcome::Succeeded {
            reference: "ch_3MtwBwLkdIwHu7ix0snN0B15".into()
        }
    );
    assert_eq!(
        api::parse_charge(402, &fixture("card_declined.json")).unwrap(),
        ChargeOutcome::Declined {
            code: "insufficient_funds".into(),
            message: "Your card has insufficient funds.".into()
        }
    );
    let missing = api::parse_charge(400, &fixture("invalid_request.json")).unwrap_err();
    assert_eq!(missing.kind(), ProviderErrorKind::InvalidRequest);
    assert!(missing.message().contains("No such PaymentMethod"), "{missing}");
    let in_flight = api::parse_charge(409, &serde_json::json!({"error": {"type": "idempotency_error"}})).unwrap_err();
    assert_eq!(in_flight.kind(), ProviderErrorKind::Unavailable);
    let mut processing = fixture("payment_intent_succeeded.json");
    processing["status"] = "processing".into();
    assert_eq!(
        api::parse_charge(200, &processing).unwrap_err().kind(),
        ProviderErrorKind::Unavailable
    );
}

#[test]
fn an_earlier_attempt_is_found_by_search() {
    assert_eq!(
        api::parse_intent_search(&fixture("payment_intent_search.json")),
        Some(ChargeOutcome::Succeeded {
            reference: "ch_3MtwBwLkdIwHu7ix0snN0B15".into()
        })
    );
    assert_eq!(api::parse_intent_search(&serde_json::json!({"data": []})), None);
}

const SECRET: &str = "whsec_test_secret";

fn body(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn webhook_signatures_are_verified() {
    let body = body("event_payment_intent_succeeded.json");
    let now = 1_680_800_505;
    let header = webhook::sign(&body, SECRET, now);
    assert_eq!(webhook::verify(Some(&header), &body, SECRET, now + 299, 300), Ok(()));
    // Several v1 values (a rolled secret): any one matching is enough.
    let rolled = format!("{header},v1={}", "0".repeat(64));
    assert_eq!(webhook::verify(Some(&rolled), &body, SECRET, now, 300), Ok(()));
    let other = format!("t={now},v1={},{}", "0".repeat(64), header.split(',').nth(1).unwrap());
    assert_eq!(webhook::verify(Some(&other), &body, SECRET, now, 300), Ok(()));

    assert_eq!(
        webhook::verify(None, &body, SECRET, now, 300),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        webhook::verify(Some("v1=abc"), &body, SECRET, now, 300),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        webhook::verify(Some(&format!("t={now}")), &body, SECRET, now, 300),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        webhook::verify(Some(&header), &body, SECRET, now + 301, 300),
        Err(SignatureError::Stale)
    );
    // Extreme timestamps from an unauthenticated header are stale, not a panic.
    for extreme in [i64::MIN, i64::MAX] {
        let forged = format!("t={extreme},v1={}", "0".repeat(64));
        assert_eq!(
            webhook::verify(Some(&forged), &body, SECRET, now, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            webhook::verify(Some(&forged), &body, SECRET, -now, 300),
            Err(SignatureError::Stale)
        );
    }
    assert_eq!(
        webhook::verify(Some(&header), &body, "whsec_other", now, 300),
        Err(SignatureError::Mismatch)
    );
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert_eq!(
        webhook::verify(Some(&header), &tampered, SECRET, now, 300),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn events_carry_their_id_type_time_and_charge_key() {
    let event = webhook::parse_event(&body("event_payment_intent_payment_failed.json")).unwrap();
    assert_eq!(event.id, "evt_3MtwCsLkdIwHu7ix1Rj7Lc2E");
    assert_eq!(event.event_type, "payment_intent.payment_failed");
    assert_eq!(event.created, 1_680_800_600);
    assert_eq!(
        event.charge_key.as_deref(),
        Some("inv_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b:attempt:1")
    );
    assert_eq!(
        api::intent_outcome(&event.object),
        Some(ChargeOutcome::Declined {
            code: "generic_decline".into(),
            message: "Your card was declined.".into()
        })
    );
    assert_eq!(webhook::parse_event(b"{\"object\": \"charge\"}"), None);
    assert_eq!(webhook::parse_event(b"not json"), None);
}

#[test]
fn webhooks_are_read_as_payments_or_not_acted_on() {
    assert_eq!(
        webhook::read(&body("event_payment_intent_payment_failed.json")),
        Some(InboundEvent::Payment {
            event_type: "payment_intent.payment_failed".into(),
            charge_key: Some("inv_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b:attempt:1".into()),
            outcome: Some(ChargeOutcome::Declined {
                code: "generic_decline".into(),
                message: "Your card was declined.".into()
            }),
        })
    );
    let succeeded = webhook::read(&body("event_payment_intent_succeeded.json")).unwrap();
    assert!(
        matches!(
            &succeeded,
            InboundEvent::Payment {
                outcome: Some(ChargeOutcome::Succeeded { .. }),
                ..
            }
        ),
        "{succeeded:?}"
    );
    let created = String::from_utf8(body("event_payment_intent_succeeded.json"))
        .unwrap()
        .replace("payment_intent.succeeded", "payment_intent.created");
    assert_eq!(
        webhook::read(created.as_bytes()),
        Some(InboundEvent::NotActedOn {
            event_type: "payment_intent.created".into()
        })
    );
    assert_eq!(webhook::read(b"not json"), None);
}
