//! The rules of billing, as pure functions over plain values.
//!
//! Nothing in this crate performs I/O, reads a clock, or knows about gRPC or
//! SQL: time comes in as a value, identifiers come in already minted, and the
//! caller persists what these functions decide.

pub mod catalog;
pub mod dunning;
pub mod error;
pub mod ids;
pub mod invoice;
pub mod money;
pub mod payment_method;
pub mod period;
pub mod subscription;
pub mod text;

pub use error::{DomainError, ErrorKind, FieldViolation, Reason};
pub use money::{Currency, Money, MoneyError};
