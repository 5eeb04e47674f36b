//! JSON over HTTP for callers without gRPC: read endpoints that *are* RPCs.
//!
//! Each route names an RPC of the contract. Its path parameters and query
//! parameters are fields of that RPC's request message, found by their proto
//! or JSON names in the descriptor; the request then goes in-process through
//! the same layers a gRPC call passes (the token, the role table, the
//! tenants, limits, deadline), and the answer is the RPC's response in the
//! canonical protobuf JSON mapping — or its `google.rpc.Status` as JSON, with
//! the HTTP code of the one error map. Nothing here restates a field, so the
//! two cannot drift; `openapi` derives the document from the same table.

mod license;
pub mod openapi;
mod rpc;

use std::collections::HashSet;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use billing_domain::error::Violations;
use billing_domain::{DomainError, Reason};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor, ReflectMessage,
    SerializeOptions, Value,
};
use tonic::Status;

pub use self::rpc::{Rpcs, Services, contract_pool, method_in};
use super::HttpState;
use crate::grpc::status::{invalid, kind_for};

/// One read endpoint: a path whose `{parameters}` are request fields of `rpc`.
#[derive(Debug)]
pub struct Route {
    pub path: &'static str,
    /// `billing.v1.Service/Method`.
    pub rpc: &'static str,
    pub summary: &'static str,
}

/// Every JSON endpoint that is an RPC.
pub const ROUTES: &[Route] = &[
    Route {
        path: "/v1/subscriptions/{subscription_id}",
        rpc: "billing.v1.SubscriptionService/GetSubscription",
        summary: "One subscription",
    },
    Route {
        path: "/v1/businesses/{business_id}/subscriptions",
        rpc: "billing.v1.SubscriptionService/ListSubscriptions",
        summary: "A business's subscriptions in creation order, filtered and paged",
    },
    Route {
        path: "/v1/businesses/{business_id}/entitlements/{product_code}",
        rpc: "billing.v1.SubscriptionService/CheckEntitlement",
        summary: "Whether a business may use a product, and what kind of subscriber it is",
    },
    Route {
        path: "/v1/invoices/{invoice_id}",
        rpc: "billing.v1.InvoiceService/GetInvoice",
        summary: "One invoice",
    },
    Route {
        path: "/v1/businesses/{business_id}/invoices",
        rpc: "billing.v1.InvoiceService/ListInvoices",
        summary: "A business's invoices, paged",
    },
];

/// The JSON form of every message answered: the canonical mapping
/// (lowerCamelCase names, enums by name, 64-bit integers as strings,
/// timestamps in RFC 3339), with scalar fields present even when zero, so a
/// reader never has to know proto3's defaults.
const JSON: SerializeOptions = SerializeOptions::new().skip_default_fields(false);

/// The routes, each with its RPC looked up once in `pool`.
pub fn routes(pool: &DescriptorPool) -> Router<HttpState> {
    let router = ROUTES.iter().fold(Router::new(), |router, route| {
        let Some(method) = method_in(pool, route.rpc) else {
            // The route table's test makes this a bug caught before release.
            tracing::error!(rpc = route.rpc, "a JSON route names no RPC of the contract");
            return router;
        };
        router.route(
            route.path,
            get(
                move |State(state): State<HttpState>,
                      path: Result<Path<Vec<(String, String)>>, PathRejection>,
                      RawQuery(query): RawQuery,
                      headers: HeaderMap| async move {
                    let Ok(Path(path)) = path else {
                        let error = DomainError::new(Reason::FieldInvalid, "the path is not valid UTF-8 text");
                        return error_response(&state.rpcs, &invalid(error));
                    };
                    answer(
                        &state.rpcs,
                        &method,
                        &path,
                        query.as_deref().unwrap_or_default(),
                        &headers,
                    )
                    .await
                },
            ),
        )
    });
    router
        .route(license::PATH, get(license::subscriptions))
        .route(openapi::PATH, get(openapi::document))
}

async fn answer(
    rpcs: &Rpcs,
    method: &MethodDescriptor,
    path: &[(String, String)],
    query: &str,
    headers: &HeaderMap,
) -> Response {
    let message = match request_message(&method.input(), path, query) {
        Ok(message) => message,
        // Who calls is decided before what they asked, as over gRPC.
        Err(error) => {
            let status = rpcs.authenticate(headers).err().unwrap_or_else(|| invalid(error));
            return error_response(rpcs, &status);
        }
    };
    match rpcs.call(method, message, headers).await {
        Ok(reply) => json_response(StatusCode::OK, &reply),
        Err(status) => error_response(rpcs, &status),
    }
}

/// The request message of `input` from the path's parameters and the query
/// string's, every bad parameter named at once. A repeated field takes its
/// parameter as many times as it has values (`states=A&states=B`); an enum
/// takes a value's name or number.
pub fn request_message(
    input: &MessageDescriptor,
    path: &[(String, String)],
    query: &str,
) -> Result<DynamicMessage, DomainError> {
    let mut message = DynamicMessage::new(input.clone());
    let mut violations = Violations::new();
    let mut from_path = HashSet::new();
    let mut given = HashSet::new();
    let query = url::form_urlencoded::parse(query.as_bytes());
    let parameters = path
        .iter()
        .map(|(name, value)| (true, name.clone(), value.clone()))
        .chain(query.map(|(name, value)| (false, name.into_owned(), value.into_owned())));
    for (in_path, name, value) in parameters {
        let Some(field) = input
            .get_field_by_name(&name)
            .or_else(|| input.get_field_by_json_name(&name))
        else {
            violations.push(
                &name,
                Reason::FieldInvalid,
                format!("is not a parameter here; one of {}", parameter_names(input)),
            );
            continue;
        };
        if in_path {
            from_path.insert(field.number());
        } else if from_path.contains(&field.number()) {
            violations.push(&name, Reason::FieldInvalid, "is given by the path");
            continue;
        }
        if !given.insert(field.number()) && !field.is_list() {
            violations.push(&name, Reason::FieldInvalid, "is given twice");
            continue;
        }
        match scalar(&field, &value) {
            Ok(value) => set(&mut message, &field, value),
            Err(description) => violations.push(field.name(), Reason::FieldInvalid, description),
        }
    }
    violations.into_result()?;
    Ok(message)
}

fn set(message: &mut DynamicMessage, field: &FieldDescriptor, value: Value) {
    if field.is_list() {
        if let Value::List(values) = message.get_field_mut(field) {
            values.push(value);
        }
    } else {
        message.set_field(field, value);
    }
}

/// The names a request message takes as parameters.
fn parameter_names(input: &MessageDescriptor) -> String {
    input
        .fields()
        .filter(parameter_kind)
        .map(|field| field.name().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a field can be given as a text parameter.
pub fn parameter_kind(field: &FieldDescriptor) -> bool {
    !matches!(field.kind(), Kind::Message(_) | Kind::Bytes) && !field.is_map()
}

/// A parameter's text as the value of `field`.
fn scalar(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
        text.parse().map_err(|_| format!("must be {what}, not {text:?}"))
    }
    Ok(match field.kind() {
        Kind::String => Value::String(text.to_owned()),
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("must be true or false, not {text:?}")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(number(text, "a 32-bit integer")?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(number(text, "a 64-bit integer")?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(number(text, "an unsigned 32-bit integer")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(number(text, "an unsigned 64-bit integer")?),
        Kind::Float => Value::F32(number(text, "a number")?),
        Kind::Double => Value::F64(number(text, "a number")?),
        Kind::Enum(values) => values
            .get_value_by_name(text)
            .or_else(|| text.parse().ok().and_then(|number| values.get_value(number)))
            .map(|value| Value::EnumNumber(value.number()))
            .ok_or_else(|| {
                let names: Vec<_> = values.values().map(|value| value.name().to_owned()).collect();
                format!("must be one of {}, not {text:?}", names.join(", "))
            })?,
        Kind::Bytes | Kind::Message(_) => return Err("cannot be given as a parameter".to_owned()),
    })
}

/// A message as the body of a JSON answer.
pub fn json_response(status: StatusCode, message: &DynamicMessage) -> Response {
    let mut serializer = serde_json::Serializer::new(Vec::new());
    match message.serialize_with_options(&mut serializer, &JSON) {
        Ok(()) => json_bytes(status, serializer.into_inner()),
        Err(error) => {
            tracing::error!(error = %error, message = message.descriptor().full_name(), "a reply does not serialize");
            (StatusCode::INTERNAL_SERVER_ERROR, "a reply does not serialize").into_response()
        }
    }
}

pub fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An error as `google.rpc.Status` JSON (its `ErrorInfo` and `BadRequest`
/// details included), with the HTTP code its gRPC code maps to.
pub fn error_response(rpcs: &Rpcs, status: &Status) -> Response {
    let http_status = super::status_for(kind_for(status.code()));
    let encoded = if status.details().is_empty() {
        tonic_types::pb::Status {
            code: status.code() as i32,
            message: status.message().to_owned(),
            details: Vec::new(),
        }
        .encode_to_vec()
    } else {
        status.details().to_vec()
    };
    let decoded = rpcs
        .pool()
        .get_message_by_name("google.rpc.Status")
        .and_then(|descriptor| DynamicMessage::decode(descriptor, encoded.as_slice()).ok());
    match decoded {
        Some(message) => json_response(http_status, &message),
        None => (http_status, status.message().to_owned()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::openapi::path_parameters;
    use super::*;

    fn input_of(rpc: &str) -> MessageDescriptor {
        let pool = contract_pool().unwrap();
        method_in(&pool, rpc)
            .unwrap_or_else(|| panic!("{rpc} is no RPC"))
            .input()
    }

    #[test]
    fn every_route_is_a_read_rpc_whose_fields_name_its_path() {
        for route in ROUTES {
            let input = input_of(route.rpc);
            for name in path_parameters(route.path) {
                assert!(input.get_field_by_name(name).is_some(), "{}: {name}", route.path);
            }
            assert!(
                !input.fields().any(|field| field.name() == "request_id"),
                "{} changes something: JSON endpoints only read",
                route.rpc
            );
            let grpc_path = format!("/{}", route.rpc);
            assert!(
                crate::auth::rules::RULES.iter().any(|(path, _)| *path == grpc_path),
                "{grpc_path} has no rule"
            );
        }
    }

    #[test]
    fn parameters_become_typed_fields_and_bad_ones_are_all_named() {
        let input = input_of("billing.v1.SubscriptionService/ListSubscriptions");
        let path = [("business_id".to_owned(), "acme".to_owned())];
        let message = request_message(
            &input,
            &path,
            "states=SUBSCRIPTION_STATE_PURCHASED&states=3&activeOnly=true&page_size=20&page_token=a%20b",
        )
        .unwrap();
        let field = |name: &str| message.get_field_by_name(name).unwrap().into_owned();
        assert_eq!(field("business_id"), Value::String("acme".into()));
        assert_eq!(
            field("states"),
            Value::List(vec![Value::EnumNumber(1), Value::EnumNumber(3)])
        );
        assert_eq!(field("active_only"), Value::Bool(true));
        assert_eq!(field("page_size"), Value::I32(20));
        assert_eq!(field("page_token"), Value::String("a b".into()));

        let error = request_message(
            &input,
            &path,
            "active_only=yes&page_size=2147483648&states=SLEEPING&page_token=a&page_token=b&business_id=x&colour=red",
        )
        .unwrap_err();
        let fields: Vec<&str> = error
            .violations()
            .iter()
            .map(|violation| violation.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "active_only",
                "page_size",
                "states",
                "page_token",
                "business_id",
                "colour"
            ]
        );
        assert_eq!(error.reason(), Reason::FieldInvalid);
    }
}
