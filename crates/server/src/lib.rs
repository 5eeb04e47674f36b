//! The `billingd` server: configuration, telemetry and the gRPC services,
//! wired onto the app layer. `main.rs` is only the command line around
//! [`startup::Application`].

pub mod auth;
pub mod config;
pub mod convert;
pub mod demo;
pub mod gate;
pub mod grpc;
pub mod health;
pub mod http;
pub mod limits;
pub mod reflection;
pub mod shutdown;
pub mod startup;
pub mod telemetry;
pub mod webhook_sender;
