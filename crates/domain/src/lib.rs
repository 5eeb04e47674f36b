//! The rules of billing, as pure functions over plain values.
//!
//! Nothing in this crate performs I/O, reads a clock, or knows about gRPC or
//! SQL: time comes in as a value, identifiers come in already minted, and the
//! caller persists what these functions decide.

/// A closed set of names with a stable text form, for storage and for
/// clients (`PACKAGE`, `NEW_SUBSCRIPTION`, …): the one way an enum of this
/// workspace gets its text form.
#[macro_export]
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$variant_meta])* $variant),+ }

        impl $name {
            /// The stable text form used in storage.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the text form written by [`Self::as_str`].
            pub fn from_text(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

pub mod access;
pub mod catalog;
pub mod checkout;
pub mod dunning;
pub mod error;
mod failure;
pub mod ids;
pub mod invoice;
pub mod money;
pub mod payment_method;
pub mod period;
pub mod provider;
pub mod subscription;
pub mod text;

pub use error::{DomainError, ErrorKind, FieldViolation, Reason};
pub use failure::{Fault, Refusal};
pub use money::{Currency, Money, MoneyError};
pub use provider::Provider;
