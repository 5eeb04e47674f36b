//! gRPC services: thin adapters that convert, call the app, and map errors.

pub mod catalog;
pub mod status;
pub mod subscription;
pub mod test_clock;
