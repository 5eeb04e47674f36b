//! Callers and tenants, end to end on SQLite and Postgres: the authorisation
//! matrix generated from the descriptor set, what each role may do with its
//! own and another tenant's resources, and idempotency keys per caller.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::str::FromStr;

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, TestApp, assert_status, attach_card, backend_tests, business_token, directory_token, mint_token, reason,
    service_token, spawn_jwt_app,
};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, Value};
use tonic::Code;

backend_tests!(
    every_rpc_answers_every_caller_as_the_authorisation_table_says,
    a_business_token_manages_its_own_subscriptions_and_sees_no_other,
    a_directory_token_acts_in_its_directory_only,
    idempotency_keys_are_scoped_to_the_caller,
    calls_without_a_valid_token_are_unauthenticated_but_probes_answer,
);

const OWN_DIRECTORY: &str = "demo";
const OTHER_DIRECTORY: &str = "elsewhere";
const OWN_BUSINESS: &str = "biz-own";
const OTHER_BUSINESS: &str = "biz-other";

/// What the matrix test points requests at: resources of the own tenant.
struct Targets {
    subscription_id: String,
    invoice_id: String,
    session_id: String,
    checkout_token: String,
    offering_id: String,
}

/// Provisions one business per directory, buys for the own one, and opens a
/// checkout session for it. Everything through a platform token.
async fn tenants(backend: Backend) -> (TestApp, Targets) {
    let app = spawn_jwt_app(backend, |settings| {
        settings.clock.mode = billing_server::config::ClockMode::Manual;
        settings.clock.start_time = Some("2026-03-10T09:00:00Z".parse().unwrap());
    })
    .await;
    app.load_demo_catalog().await;
    for (business_id, directory_id) in [(OWN_BUSINESS, OWN_DIRECTORY), (OTHER_BUSINESS, OTHER_DIRECTORY)] {
        app.subscriptions()
            .provision_business(pb::ProvisionBusinessRequest {
                request_id: format!("provision-{business_id}"),
                business_id: business_id.into(),
                directory_id: directory_id.into(),
                buyer_id: "owner".into(),
            })
            .await
            .unwrap();
    }
    attach_card(&app, OWN_BUSINESS, "pm_card_visa").await;
    let bought = billing_tests::buy_offering(&app, OWN_BUSINESS, "pro-monthly")
        .await
        .unwrap();
    let session = app
        .checkout()
        .create_checkout_session(pb::CreateCheckoutSessionRequest {
            request_id: "own-session".into(),
            business_id: OWN_BUSINESS.into(),
            buyer_id: "owner".into(),
            kind: pb::CheckoutKind::NewSubscription.into(),
            offering_code: "bookings".into(),
            components: vec![pb::ComponentQuantity {
                component_code: "seat".into(),
                quantity: 2,
            }],
            currency_code: "USD".into(),
            return_url: "http://localhost:3000/done".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let bookings = app
        .catalog()
        .get_offering(pb::GetOfferingRequest {
            lookup: Some(pb::get_offering_request::Lookup::Code("bookings".into())),
        })
        .await
        .unwrap()
        .into_inner()
        .offering
        .unwrap();
    let targets = Targets {
        subscription_id: bought.subscription.unwrap().id,
        invoice_id: bought.invoice.unwrap().id,
        session_id: session.session.unwrap().id,
        checkout_token: session.token,
        offering_id: bookings.id,
    };
    (app, targets)
}

/// The roles that may call each RPC, written here independently of the
/// server's table. An RPC of the contract missing here fails the test.
fn allowed_roles(method: &str) -> &'static [&'static str] {
    const SERVICE: &[&str] = &["service"];
    const EVERY_ROLE: &[&str] = &["service", "directory", "business"];
    match method {
        "CatalogService/CreateProduct"
        | "CatalogService/CreateOffering"
        | "CatalogService/UpdateOffering"
        | "CatalogService/AssignOffering"
        | "CatalogService/CreateCoupon"
        | "CatalogService/ListCoupons"
        | "TestClockService/GetTime"
        | "TestClockService/AdvanceClock"
        | "OperationsService/ListFailingWork"
        | "OperationsService/RetryWork" => SERVICE,
        "SubscriptionService/ProvisionBusiness"
        | "EventService/CreateWebhookEndpoint"
        | "EventService/ListWebhookEndpoints"
        | "EventService/DeleteWebhookEndpoint"
        | "EventService/RotateWebhookSecret"
        | "EventService/ListDeliveries"
        | "EventService/RedeliverEvents" => &["service", "directory"],
        "CatalogService/ListProducts"
        | "CatalogService/GetOffering"
        | "CatalogService/ListOfferings"
        | "CatalogService/ListDirectoryOfferings"
        | "SubscriptionService/CreateSubscription"
        | "SubscriptionService/GetSubscription"
        | "SubscriptionService/ListSubscriptions"
        | "SubscriptionService/ChangePlan"
        | "SubscriptionService/UpdateComponents"
        | "SubscriptionService/Cancel"
        | "SubscriptionService/Reactivate"
        | "SubscriptionService/CheckEntitlement"
        | "SubscriptionService/ListSubscriptionHistory"
        | "SubscriptionService/PreviewInvoice"
        | "InvoiceService/ListInvoices"
        | "InvoiceService/GetInvoice"
        | "PaymentMethodService/AttachPaymentMethod"
        | "PaymentMethodService/GetPaymentMethod"
        | "PaymentMethodService/DetachPaymentMethod"
        | "CheckoutService/CreateCheckoutSession"
        | "CheckoutService/GetCheckoutSession"
        | "CheckoutService/CompleteCheckout"
        | "EventService/ListEvents"
        | "EventService/WatchEvents" => EVERY_ROLE,
        other => panic!("no authorisation expectation for {other}: add it to the server's table and to this test"),
    }
}

/// One caller of the matrix.
struct MatrixCaller {
    name: &'static str,
    role: Option<&'static str>,
    /// Whether the caller's scope holds the own tenant.
    own: bool,
    token: Option<String>,
}

fn callers() -> Vec<MatrixCaller> {
    vec![
        MatrixCaller {
            name: "no token",
            role: None,
            own: false,
            token: None,
        },
        MatrixCaller {
            name: "directory other",
            role: Some("directory"),
            own: false,
            token: Some(directory_token(OTHER_DIRECTORY)),
        },
        MatrixCaller {
            name: "business other",
            role: Some("business"),
            own: false,
            token: Some(business_token(OTHER_BUSINESS)),
        },
        MatrixCaller {
            name: "service",
            role: Some("service"),
            own: true,
            token: Some(service_token("platform")),
        },
        MatrixCaller {
            name: "directory own",
            role: Some("directory"),
            own: true,
            token: Some(directory_token(OWN_DIRECTORY)),
        },
        MatrixCaller {
            name: "business own",
            role: Some("business"),
            own: true,
            token: Some(business_token(OWN_BUSINESS)),
        },
    ]
}

/// A request for `descriptor` with every tenant and resource field pointed
/// at the own tenant; in a oneof of messages only the first is filled.
fn fill(descriptor: &MessageDescriptor, targets: &Targets, request_id: &str) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    let mut oneofs_with_a_message = BTreeSet::new();
    for field in descriptor.fields() {
        let text = |value: &str| Some(Value::String(value.to_owned()));
        let value = match field.name() {
            "request_id" => text(request_id),
            "business_id" => text(OWN_BUSINESS),
            "directory_id" => text(OWN_DIRECTORY),
            "subscription_id" => text(&targets.subscription_id),
            "invoice_id" => text(&targets.invoice_id),
            "session_id" => text(&targets.session_id),
            "offering_id" => text(&targets.offering_id),
            "token" if descriptor.name() == "CompleteCheckoutRequest" => text(&targets.checkout_token),
            "product_code" => text("website"),
            _ => match field.kind() {
                Kind::Message(inner) if field.containing_oneof().is_some() => {
                    let oneof = field.containing_oneof().unwrap().name().to_owned();
                    oneofs_with_a_message
                        .insert(oneof)
                        .then(|| Value::Message(fill(&inner, targets, request_id)))
                }
                _ => None,
            },
        };
        if let Some(value) = value {
            message.set_field(&field, value);
        }
    }
    message
}

/// Whether the filled request names a tenant (business or directory) or a
/// resource by id.
fn names(message: &DynamicMessage, fields: &[&str]) -> bool {
    message.fields().any(|(field, value)| match value {
        Value::String(text) => fields.contains(&field.name()) && !text.is_empty(),
        Value::Message(inner) => names(inner, fields),
        _ => false,
    })
}

/// Bytes in, bytes out: calls any method by path.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, destination: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(destination, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, source: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        let mut bytes = vec![0; bytes::Buf::remaining(source)];
        bytes::Buf::copy_to_slice(source, &mut bytes);
        Ok(Some(bytes))
    }
}

async fn call_raw(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: Vec<u8>,
    streaming: bool,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(app.channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(body);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let path = http::uri::PathAndQuery::from_str(path).unwrap();
    if streaming {
        // A stream that starts was let in; a refusal ends it before it does.
        return grpc.server_streaming(request, path, RawCodec).await.map(|_| ());
    }
    grpc.unary(request, path, RawCodec).await.map(|_| ())
}

const TENANT_NOT_FOUND: &[&str] = &[
    "SUBSCRIPTION_NOT_FOUND",
    "INVOICE_NOT_FOUND",
    "CHECKOUT_SESSION_NOT_FOUND",
    "CHECKOUT_TOKEN_INVALID",
    "OFFERING_NOT_FOUND",
];

async fn every_rpc_answers_every_caller_as_the_authorisation_table_says(backend: Backend) {
    let (app, targets) = tenants(backend).await;
    let pool = DescriptorPool::decode(billing_proto::FILE_DESCRIPTOR_SET).unwrap();
    let methods: Vec<_> = pool
        .services()
        .filter(|service| service.package_name() == "billing.v1")
        .flat_map(|service| service.methods().collect::<Vec<_>>())
        .collect();
    assert!(methods.len() >= 30, "only {} methods in the contract", methods.len());
    let mut checked = 0;
    let (mut denied_by_scope, mut hidden) = (0, 0);
    // Callers outside the own tenant first: the own ones change its state.
    for caller in callers() {
        for method in &methods {
            let short = format!("{}/{}", method.parent_service().name(), method.name());
            let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
            let request = fill(&method.input(), &targets, &format!("matrix-{}-{short}", caller.name));
            let names_tenant = names(&request, &["business_id", "directory_id"]);
            let names_resource = names(
                &request,
                &["subscription_id", "invoice_id", "session_id", "offering_id", "token"],
            );
            let outcome = call_raw(
                &app,
                &path,
                caller.token.as_deref(),
                request.encode_to_vec(),
                method.is_server_streaming(),
            )
            .await;
            let context = format!("{short} as {}: {outcome:?}", caller.name);
            let Some(role) = caller.role else {
                let status = outcome.expect_err(&context);
                assert_status(&status, Code::Unauthenticated, "AUTH_TOKEN_MISSING");
                checked += 1;
                continue;
            };
            if !allowed_roles(&short).contains(&role) {
                assert_status(
                    &outcome.expect_err(&context),
                    Code::PermissionDenied,
                    "PERMISSION_DENIED",
                );
            } else if caller.own {
                if let Err(status) = &outcome {
                    assert!(
                        !matches!(status.code(), Code::Unauthenticated | Code::PermissionDenied),
                        "{context}"
                    );
                    assert!(!TENANT_NOT_FOUND.contains(&reason(status).as_str()), "{context}");
                }
            } else if names_tenant {
                assert_status(
                    &outcome.expect_err(&context),
                    Code::PermissionDenied,
                    "PERMISSION_DENIED",
                );
                denied_by_scope += 1;
            } else if names_resource {
                let status = outcome.expect_err(&context);
                assert_eq!(status.code(), Code::NotFound, "{context}");
                assert!(TENANT_NOT_FOUND.contains(&reason(&status).as_str()), "{context}");
                hidden += 1;
            } else if let Err(status) = &outcome {
                assert!(
                    !matches!(
                        status.code(),
                        Code::Unauthenticated | Code::PermissionDenied | Code::NotFound
                    ),
                    "{context}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, methods.len() * callers().len());
    // Both tenant answers were exercised, for both foreign callers.
    assert!(
        denied_by_scope >= 20,
        "only {denied_by_scope} requests were refused for naming another tenant"
    );
    assert!(
        hidden >= 10,
        "only {hidden} requests found another tenant's resource missing"
    );
}

async fn a_business_token_manages_its_own_subscriptions_and_sees_no_other(backend: Backend) {
    let (app, targets) = tenants(backend).await;
    attach_card(&app, OTHER_BUSINESS, "pm_card_visa").await;
    let own = app.as_caller(&business_token(OWN_BUSINESS));
    let other = app.as_caller(&business_token(OTHER_BUSINESS));

    // Another directory's business cannot buy what demo sells, but its own
    // record is still its own: it lists nothing of biz-own's.
    let bought = own
        .subscriptions()
        .create_subscription(pb::CreateSubscriptionRequest {
            request_id: "own-seo".into(),
            business_id: OWN_BUSINESS.into(),
            buyer_id: "owner".into(),
            offering: Some(pb::create_subscription_request::Offering::OfferingCode(
                "bookings".into(),
            )),
            currency_code: "USD".into(),
            components: vec![pb::ComponentQuantity {
                component_code: "seat".into(),
                quantity: 1,
            }],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    let changed = own
        .subscriptions()
        .change_plan(pb::ChangePlanRequest {
            request_id: "own-downgrade".into(),
            subscription_id: targets.subscription_id.clone(),
            offering_code: "plus-monthly".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let pending = changed.subscription.unwrap().pending_change.unwrap();
    assert_eq!(pending.offering_code, "plus-monthly");
    let canceled = own
        .subscriptions()
        .cancel(pb::CancelRequest {
            request_id: "own-cancel".into(),
            subscription_id: bought.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(canceled.state(), pb::SubscriptionState::Canceled);

    // Lists without a filter hold only its own.
    let listed = own.scoped_subscriptions().await;
    assert!(listed.len() >= 3, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|subscription| subscription.business_id == OWN_BUSINESS)
    );
    let invoices = own
        .invoices()
        .list_invoices(pb::ListInvoicesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .invoices;
    assert!(!invoices.is_empty() && invoices.iter().all(|invoice| invoice.business_id == OWN_BUSINESS));

    // Another business: NOT_FOUND by id, exactly as if absent; PERMISSION_DENIED by name.
    let status = other
        .subscriptions()
        .get_subscription(pb::GetSubscriptionRequest {
            subscription_id: bought.id.clone(),
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "SUBSCRIPTION_NOT_FOUND");
    let absent = other
        .subscriptions()
        .get_subscription(pb::GetSubscriptionRequest {
            subscription_id: "sub_0190c0de000070008000000000000000".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        status.message().replace(&bought.id, "ID"),
        absent.message().replace("sub_0190c0de000070008000000000000000", "ID"),
        "another tenant's subscription reads exactly like a missing one"
    );
    let status = other
        .invoices()
        .get_invoice(pb::GetInvoiceRequest {
            invoice_id: targets.invoice_id.clone(),
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "INVOICE_NOT_FOUND");
    let status = other
        .subscriptions()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            business_id: OWN_BUSINESS.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    let status = other
        .subscriptions()
        .cancel(pb::CancelRequest {
            request_id: "hostile-cancel".into(),
            subscription_id: targets.subscription_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "SUBSCRIPTION_NOT_FOUND");
    assert!(
        other
            .scoped_subscriptions()
            .await
            .iter()
            .all(|subscription| subscription.business_id == OTHER_BUSINESS)
    );

    // A business may not grant itself a sponsored subscription.
    let status = own
        .subscriptions()
        .create_subscription(pb::CreateSubscriptionRequest {
            request_id: "own-sponsored".into(),
            business_id: OWN_BUSINESS.into(),
            buyer_id: "owner".into(),
            offering: Some(pb::create_subscription_request::Offering::OfferingCode("seo".into())),
            currency_code: "USD".into(),
            sponsored: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    // Nothing of the refused requests was written.
    let canceled_again = app
        .subscriptions()
        .get_subscription(pb::GetSubscriptionRequest {
            subscription_id: targets.subscription_id,
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(canceled_again.state(), pb::SubscriptionState::Purchased);
}

async fn a_directory_token_acts_in_its_directory_only(backend: Backend) {
    let (app, _targets) = tenants(backend).await;
    let directory = app.as_caller(&directory_token(OWN_DIRECTORY));
    let provision = |business_id: &str, directory_id: &str| pb::ProvisionBusinessRequest {
        request_id: format!("dir-provision-{business_id}-{directory_id}"),
        business_id: business_id.into(),
        directory_id: directory_id.into(),
        buyer_id: "owner".into(),
    };
    let provisioned = directory
        .subscriptions()
        .provision_business(provision("biz-new", OWN_DIRECTORY))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(provisioned.default_subscriptions[0].offering_code, "free");
    for (business_id, directory_id) in [("biz-x", OTHER_DIRECTORY), (OTHER_BUSINESS, OWN_DIRECTORY)] {
        let status = directory
            .subscriptions()
            .provision_business(provision(business_id, directory_id))
            .await
            .unwrap_err();
        assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    }
    // Sponsored grants are a directory's to give, to its own businesses.
    let sponsored = directory
        .subscriptions()
        .create_subscription(pb::CreateSubscriptionRequest {
            request_id: "dir-sponsor".into(),
            business_id: "biz-new".into(),
            buyer_id: "owner".into(),
            offering: Some(pb::create_subscription_request::Offering::OfferingCode("seo".into())),
            currency_code: "USD".into(),
            sponsored: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    assert_eq!(sponsored.payment_type(), pb::PaymentType::Sponsored);
    let listed = directory.scoped_subscriptions().await;
    assert!(
        listed
            .iter()
            .all(|subscription| subscription.directory_id == OWN_DIRECTORY)
    );
    assert!(listed.iter().any(|subscription| subscription.business_id == "biz-new"));
    // Its catalog view: what demo sells; no catalog writes.
    let offerings = directory
        .catalog()
        .list_offerings(pb::ListOfferingsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .offerings;
    assert!(offerings.iter().any(|offering| offering.code == "pro-monthly"));
    let status = directory
        .catalog()
        .create_coupon(pb::CreateCouponRequest {
            coupon: Some(pb::Coupon {
                code: "FREE100".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    let elsewhere = app.as_caller(&directory_token(OTHER_DIRECTORY));
    let status = elsewhere
        .catalog()
        .list_offerings(pb::ListOfferingsRequest {
            directory_id: OWN_DIRECTORY.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "PERMISSION_DENIED");
    assert!(
        elsewhere
            .catalog()
            .list_offerings(pb::ListOfferingsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .offerings
            .is_empty(),
        "a directory that sells nothing sees no offering"
    );
}

async fn idempotency_keys_are_scoped_to_the_caller(backend: Backend) {
    let (app, _targets) = tenants(backend).await;
    let first = app.as_caller(&service_token("service-a"));
    let second = app.as_caller(&service_token("service-b"));
    let provision = |business_id: &str| pb::ProvisionBusinessRequest {
        request_id: "shared-key".into(),
        business_id: business_id.into(),
        directory_id: OWN_DIRECTORY.into(),
        buyer_id: "owner".into(),
    };
    let a = first
        .subscriptions()
        .provision_business(provision("biz-a"))
        .await
        .unwrap()
        .into_inner();
    let b = second
        .subscriptions()
        .provision_business(provision("biz-b"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.business.unwrap().business_id, "biz-a");
    assert_eq!(
        b.business.unwrap().business_id,
        "biz-b",
        "the second caller did not get the first one's answer"
    );
    let status = first
        .subscriptions()
        .provision_business(provision("biz-c"))
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED");
}

async fn calls_without_a_valid_token_are_unauthenticated_but_probes_answer(backend: Backend) {
    let (app, _targets) = tenants(backend).await;
    let list = |clients: billing_tests::Clients| async move {
        clients
            .catalog()
            .list_products(pb::ListProductsRequest::default())
            .await
    };
    assert_status(
        &list(app.anonymous()).await.unwrap_err(),
        Code::Unauthenticated,
        "AUTH_TOKEN_MISSING",
    );
    let forged = mint_token(serde_json::json!({"sub": "x", "role": "superuser"}));
    for token in ["not-a-jwt", "a.b.c", forged.as_str()] {
        let status = list(app.as_caller(token)).await.unwrap_err();
        assert_status(&status, Code::Unauthenticated, "AUTH_TOKEN_INVALID");
        assert!(!status.message().contains(token), "the token is echoed: {status:?}");
    }
    app.assert_serving().await;
    // A method the contract does not have is UNIMPLEMENTED, not hidden behind
    // a permission error; without a token it is still UNAUTHENTICATED.
    let platform = service_token("platform");
    let status = call_raw(
        &app,
        "/billing.v1.CatalogService/DropEverything",
        Some(&platform),
        Vec::new(),
        false,
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let status = call_raw(
        &app,
        "/billing.v1.CatalogService/DropEverything",
        None,
        Vec::new(),
        false,
    )
    .await
    .unwrap_err();
    assert_status(&status, Code::Unauthenticated, "AUTH_TOKEN_MISSING");
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    assert!(tokio_stream::StreamExt::next(&mut answers).await.unwrap().is_ok());
}

/// Tenant checks read the database; without it they fail closed, as
/// UNAVAILABLE, never as a grant or as a misleading NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoping_fails_closed_while_the_database_is_away() {
    let (app, targets) = tenants(Backend::Postgres).await;
    app.lose_database().await;
    for token in [
        directory_token(OWN_DIRECTORY),
        directory_token(OTHER_DIRECTORY),
        business_token(OWN_BUSINESS),
        business_token(OTHER_BUSINESS),
    ] {
        let status = app
            .as_caller(&token)
            .subscriptions()
            .get_subscription(pb::GetSubscriptionRequest {
                subscription_id: targets.subscription_id.clone(),
            })
            .await
            .unwrap_err();
        assert_status(&status, Code::Unavailable, "DATABASE_UNAVAILABLE");
    }
    // Authentication needs no database: a missing token is still refused as such.
    let status = app
        .anonymous()
        .subscriptions()
        .get_subscription(pb::GetSubscriptionRequest {
            subscription_id: targets.subscription_id,
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::Unauthenticated, "AUTH_TOKEN_MISSING");
}
