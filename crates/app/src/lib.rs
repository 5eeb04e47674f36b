//! The use cases of the billing service.
//!
//! Each one loads what it needs from storage, lets the domain decide, and
//! persists the outcome in one transaction. Nothing here knows about gRPC:
//! the server converts requests into the plain inputs taken here.

pub mod access;
pub mod billing;
pub mod catalog;
pub mod charging;
pub mod checkout;
pub mod clock;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod inbox;
pub mod operations;
pub mod paging;
pub mod providers;
mod queue;
pub mod subscriptions;
pub mod test_clock;
pub mod webhooks;

pub use access::{Access, CatalogView};
pub use billing::Billing;
pub use catalog::{Catalog, OfferingRef};
pub use checkout::{Checkout, CheckoutSettings};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::AppError;
pub use events::Events;
pub use idempotency::{Outcome, RequestContext};
pub use inbox::{Inbox, Sender};
pub use operations::Operations;
pub use paging::{Page, PageParams};
pub use providers::{Biller, Providers};
pub use subscriptions::{JobRunner, JobStats, Subscriptions};
pub use test_clock::TestClock;
pub use webhooks::Webhooks;
