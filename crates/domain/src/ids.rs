//! Identifiers this service mints: a type prefix and a UUIDv7 in lower-case
//! hex, e.g. `off_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b`.
//!
//! The hex form sorts like the UUIDv7 inside it, so ids sort by creation time;
//! keyset pagination relies on that. The domain never mints ids itself (that
//! needs a clock and randomness): callers pass in a UUID.

use std::fmt;

use uuid::Uuid;

use crate::error::{DomainError, Reason};

macro_rules! prefixed_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The type prefix, without the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// The id for a freshly minted UUID (UUIDv7 in production).
            pub fn from_uuid(uuid: Uuid) -> Self {
                $name(format!("{}_{}", $prefix, uuid.simple()))
            }

            /// Parses an id a client sent back, checking prefix and shape.
            pub fn parse(text: &str) -> Result<Self, DomainError> {
                let valid = text
                    .strip_prefix(concat!($prefix, "_"))
                    .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f')));
                if !valid {
                    return Err(DomainError::new(
                        Reason::FieldInvalid,
                        format!("{text:?} is not an id of the form {}_<32 hex digits>", $prefix),
                    ));
                }
                Ok($name(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A product: `prd_…`.
    ProductId,
    "prd"
);
prefixed_id!(
    /// An offering: `off_…`.
    OfferingId,
    "off"
);
prefixed_id!(
    /// A coupon: `cpn_…`.
    CouponId,
    "cpn"
);
prefixed_id!(
    /// A subscription: `sub_…`.
    SubscriptionId,
    "sub"
);
prefixed_id!(
    /// An invoice: `inv_…`.
    InvoiceId,
    "inv"
);
prefixed_id!(
    /// A checkout session: `chk_…`.
    CheckoutSessionId,
    "chk"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text() {
        let uuid = Uuid::from_u128(0x0193_a5b0_c3e4_7d1a_9f2b_6c8d_0e1f_2a3b);
        let id = OfferingId::from_uuid(uuid);
        assert_eq!(id.as_str(), "off_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b");
        assert_eq!(OfferingId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn wrong_prefix_or_shape_is_rejected() {
        for text in [
            "",
            "off_",
            "prd_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b",
            "off_0193A5B0C3E47D1A9F2B6C8D0E1F2A3B",
            "off_0193a5b0c3e47d1a9f2b6c8d0e1f2a3",
            "off_0193a5b0-c3e4-7d1a-9f2b-6c8d0e1f2a3b",
        ] {
            assert!(OfferingId::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn ids_sort_like_their_uuids() {
        let earlier = ProductId::from_uuid(Uuid::from_u128(0x0f));
        let later = ProductId::from_uuid(Uuid::from_u128(0xf0));
        assert!(earlier < later);
    }
}
