//! Proto ⇄ domain conversions.
//!
//! Incoming messages are destructured completely, so a field added to the
//! contract does not compile until it is handled here. Incoming conversion
//! never validates: it produces the domain's drafts, and the domain checks
//! them and names bad fields.

mod billing;
mod catalog;
mod checkout;
mod json;
mod subscription;
mod time;

pub use catalog::{coupon_draft_from_proto, offering_draft_from_proto, offering_update_from_proto, page_params};
pub use checkout::{checkout_draft_from_proto, decision_from_proto};
pub use json::json_to_struct;
pub use subscription::{
    cancel_timing_from_proto, change_timing_from_proto, components_from_proto, list_filter_from_proto,
    proration_from_proto, purchase_from_proto,
};
pub use time::{timestamp_from_proto, timestamp_to_proto};

/// Builds a domain input from a proto message.
pub trait FromProto<T>: Sized {
    fn from_proto(proto: T) -> Self;
}

/// Builds a proto message from a domain value.
pub trait IntoProto<T> {
    fn into_proto(self) -> T;
}
