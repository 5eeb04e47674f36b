//! Whatever arrives at `/webhooks/stripe`: arbitrary headers and bodies
//! never panic the verifier or the parser, a signed body verifies, and any
//! change to it does not.

use billing_provider_stripe::webhook::{SignatureError, parse_event, sign, verify};
use proptest::prelude::*;

const TOLERANCE: i64 = 300;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_headers_and_bodies_are_refused_not_panicked_on(
        header in proptest::option::of(".{0,200}"),
        body in proptest::collection::vec(any::<u8>(), 0..512),
        secret in ".{0,64}",
        now in any::<i64>(),
        tolerance in any::<i64>(),
    ) {
        let _ = verify(header.as_deref(), &body, &secret, now, tolerance);
        let _ = parse_event(&body);
    }

    #[test]
    fn header_shaped_garbage_is_refused(
        timestamp in any::<i64>(),
        signatures in proptest::collection::vec("[0-9a-fA-F]{0,80}", 0..4),
        now in any::<i64>(),
    ) {
        let header = std::iter::once(format!("t={timestamp}"))
            .chain(signatures.iter().map(|signature| format!("v1={signature}")))
            .collect::<Vec<_>>()
            .join(",");
        let verdict = verify(Some(&header), b"{}", "whsec_x", now, TOLERANCE);
        prop_assert!(verdict.is_err(), "accepted {}", header);
    }

    #[test]
    fn a_signed_body_verifies_and_a_changed_one_does_not(
        body in proptest::collection::vec(any::<u8>(), 1..512),
        secret in "whsec_[A-Za-z0-9]{1,40}",
        timestamp in 0_i64..4_000_000_000,
        age in -TOLERANCE..=TOLERANCE,
        flip in any::<prop::sample::Index>(),
    ) {
        let header = sign(&body, &secret, timestamp);
        prop_assert_eq!(verify(Some(&header), &body, &secret, timestamp + age, TOLERANCE), Ok(()));
        let mut changed = body.clone();
        let at = flip.index(changed.len());
        changed[at] ^= 0x01;
        prop_assert_eq!(verify(Some(&header), &changed, &secret, timestamp, TOLERANCE), Err(SignatureError::Mismatch));
        prop_assert_eq!(
            verify(Some(&header), &body, &secret, timestamp + TOLERANCE + 1 + age.abs(), TOLERANCE),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn events_parse_back_whatever_their_ids(
        id in "evt_[A-Za-z0-9]{1,30}",
        event_type in "[a-z_.]{1,40}",
        created in any::<i64>(),
        charge_key in proptest::option::of("[A-Za-z0-9_:]{1,60}"),
    ) {
        let body = serde_json::json!({
            "object": "event",
            "id": id,
            "type": event_type,
            "created": created,
            "data": {"object": {"metadata": {"charge_key": charge_key}}},
        });
        let event = parse_event(body.to_string().as_bytes()).expect("an event");
        prop_assert_eq!(event.id, id);
        prop_assert_eq!(event.event_type, event_type);
        prop_assert_eq!(event.created, created);
        prop_assert_eq!(event.charge_key, charge_key);
    }
}
