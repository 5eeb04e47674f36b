//! Server reflection, so grpcurl lists and describes every service with no
//! proto files.

/// Reflection over our contract, health, both reflection versions, and the
/// `google.rpc` error details, so grpcurl (which speaks v1alpha up to 1.8 and
/// v1 after) can list and describe every service and decode `ErrorInfo` and
/// `BadRequest` in error responses.
pub fn builder(with_test_clock: bool) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(billing_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .include_reflection_service(false);
    let test_clock = with_test_clock.then_some("billing.v1.TestClockService");
    SERVED_SERVICES
        .iter()
        .copied()
        .chain(test_clock)
        .fold(builder, |builder, name| builder.with_service_name(name))
}

/// Every service this server registers (TestClockService too, with the
/// manual clock), as reflection lists them. Naming them lets both reflection
/// versions advertise each other (tonic-reflection otherwise lists only the
/// version answering).
const SERVED_SERVICES: &[&str] = &[
    "billing.v1.CatalogService",
    "billing.v1.CheckoutService",
    "billing.v1.EventService",
    "billing.v1.InvoiceService",
    "billing.v1.OperationsService",
    "billing.v1.PaymentMethodService",
    "billing.v1.SubscriptionService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];
