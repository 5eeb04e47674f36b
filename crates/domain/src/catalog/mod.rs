//! The catalog: products, offerings (purchasables), directory assignments and
//! coupons, each built only through functions that check every rule.
//!
//! Input arrives as a `…Draft` of plain values (exactly what a client sent);
//! `create` turns it into a valid value or a [`DomainError`](crate::DomainError)
//! listing every bad field by its path in the draft.

mod bundle;
mod coupon;
mod directory;
mod offering;
mod prices;
mod product;

pub use bundle::{BundleGraph, BundleNode};
pub use coupon::{Coupon, CouponDraft, CouponDuration, CouponDurationKind, Discount};
pub use directory::{DirectoryOffering, assign_offering};
pub use offering::{
    BillingAlignment, BillingInterval, Component, ComponentDraft, Offering, OfferingDraft, OfferingRecord,
    OfferingStatus, OfferingType, OfferingUpdate,
};
pub use prices::{MoneyDraft, PriceList};
pub use product::{Product, ProductDraft};
