//! Whatever arrives at `/webhooks/maxio`: arbitrary headers and form bodies
//! never panic the verifier or the parser, a signed body verifies, and any
//! change to it does not.

use billing_provider_maxio::webhook::{SignatureError, parse_event, sign, verify};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_headers_and_bodies_are_refused_not_panicked_on(
        header in proptest::option::of(".{0,200}"),
        body in proptest::collection::vec(any::<u8>(), 0..512),
        key in ".{0,64}",
    ) {
        let _ = verify(header.as_deref(), &body, &key);
        let _ = parse_event(&body);
    }

    #[test]
    fn a_signed_body_verifies_and_a_changed_one_does_not(
        body in proptest::collection::vec(any::<u8>(), 1..512),
        key in "[A-Za-z0-9]{1,40}",
        flip in any::<prop::sample::Index>(),
    ) {
        let header = sign(&body, &key);
        prop_assert_eq!(verify(Some(&header), &body, &key), Ok(()));
        let mut changed = body.clone();
        let at = flip.index(changed.len());
        changed[at] ^= 0x01;
        prop_assert_eq!(verify(Some(&header), &changed, &key), Err(SignatureError::Mismatch));
    }

    #[test]
    fn form_fields_parse_back_and_bad_values_are_dropped_not_fatal(
        id in "[0-9]{1,12}",
        event in "[a-z_]{1,30}",
        subscription_id in ".{0,20}",
        reference in proptest::option::of("sub_[a-f0-9]{32}"),
        updated_at in ".{0,40}",
    ) {
        let mut pairs = vec![
            ("id".to_owned(), id.clone()),
            ("event".to_owned(), event.clone()),
            ("payload[subscription][id]".to_owned(), subscription_id.clone()),
            ("payload[subscription][updated_at]".to_owned(), updated_at),
        ];
        if let Some(reference) = &reference {
            pairs.push(("payload[subscription][reference]".to_owned(), reference.clone()));
        }
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let parsed = parse_event(body.as_bytes()).expect("id and event are there");
        prop_assert_eq!(parsed.id, id);
        prop_assert_eq!(parsed.event, event);
        prop_assert_eq!(parsed.reference, reference);
        prop_assert_eq!(parsed.subscription_id, subscription_id.parse::<i64>().ok());
    }
}
