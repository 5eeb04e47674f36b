//! Compiles `proto/billing/v1` with the vendored `protoc`, so a plain
//! `cargo build` needs no system protobuf compiler, and writes the descriptor
//! set that the server's reflection service publishes.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let protos = [
        proto_root.join("billing/v1/money.proto"),
        proto_root.join("billing/v1/catalog.proto"),
        proto_root.join("billing/v1/subscription.proto"),
        proto_root.join("billing/v1/test_clock.proto"),
        proto_root.join("billing/v1/invoice.proto"),
        proto_root.join("billing/v1/payment_method.proto"),
        proto_root.join("billing/v1/checkout.proto"),
        proto_root.join("billing/v1/operations.proto"),
        proto_root.join("billing/v1/event.proto"),
    ];
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("billing_descriptor.bin"))
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &protos, &[proto_root, protoc_bin_vendored::include_path()?])?;
    Ok(())
}
