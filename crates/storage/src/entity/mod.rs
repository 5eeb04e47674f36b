//! Table mappings. Private to the crate: nothing outside sees a row type.

pub mod audit_entries;
pub mod businesses;
pub mod checkout_sessions;
pub mod coupons;
pub mod credit_balances;
pub mod directory_offerings;
pub mod entitlements;
pub mod idempotency_keys;
pub mod invoices;
pub mod jobs;
pub mod offerings;
pub mod outbox_events;
pub mod payment_methods;
pub mod products;
pub mod subscriptions;
