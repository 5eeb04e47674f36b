//! The `billing.v1` gRPC contract as generated Rust code.
//!
//! Nothing here is hand-written except the re-exports: the `.proto` files under
//! `proto/` are the source of truth.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// Generated messages, enums, clients and servers of package `billing.v1`.
pub mod billing {
    pub mod v1 {
        tonic::include_proto!("billing.v1");
    }
}

pub use billing::v1;

/// The encoded `FileDescriptorSet` of `billing.v1`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("billing_descriptor");
