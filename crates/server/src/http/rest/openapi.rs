//! `GET /openapi.json`: the OpenAPI 3.1 document of the JSON endpoints,
//! derived from the route table and the contract's descriptors, so it
//! describes exactly what the handlers accept and answer. Every scalar field
//! of a message is `required` because answers carry it even when zero; a
//! message field appears only when set.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use super::rpc::method_in;
use super::{HttpState, ROUTES, json_bytes, license, parameter_kind};

pub const PATH: &str = "/openapi.json";

const STATUS: &str = "google.rpc.Status";

pub async fn document(State(state): State<HttpState>) -> Response {
    match serde_json::to_vec(&build(state.rpcs.pool())) {
        Ok(body) => json_bytes(StatusCode::OK, body),
        Err(error) => json_bytes(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{{\"message\":\"{error}\"}}").into_bytes(),
        ),
    }
}

/// The whole document.
pub fn build(pool: &DescriptorPool) -> Value {
    let mut schemas = Schemas {
        pool,
        found: BTreeMap::new(),
    };
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let Some(method) = method_in(pool, route.rpc) else {
            continue;
        };
        let input = method.input();
        let in_path = path_parameters(route.path);
        let mut parameters = Vec::new();
        for name in &in_path {
            if let Some(field) = input.get_field_by_name(name) {
                parameters.push(json!({
                    "name": name, "in": "path", "required": true,
                    "description": format!("`{}.{name}`", input.name()),
                    "schema": schemas.field(&field),
                }));
            }
        }
        for field in input
            .fields()
            .filter(|field| parameter_kind(field) && !in_path.contains(&field.name()))
        {
            let mut parameter = json!({
                "name": field.name(), "in": "query", "required": false,
                "description": format!("`{}.{}`", input.name(), field.name()),
                "schema": schemas.field(&field),
            });
            if field.is_list() {
                parameter["style"] = json!("form");
                parameter["explode"] = json!(true);
            }
            parameters.push(parameter);
        }
        let reply = schemas.message(&method.output());
        paths.insert(
            route.path.to_owned(),
            json!({"get": {
                "operationId": method.name(),
                "summary": route.summary,
                "description": format!("The RPC `{}` as JSON: its response in the canonical protobuf JSON mapping.", route.rpc),
                "parameters": parameters,
                "responses": responses(reply, &mut schemas),
            }}),
        );
    }
    paths.insert(
        license::PATH.to_owned(),
        json!({"get": {
            "operationId": "GetLicenseSubscriptions",
            "summary": "A business's subscriptions in the platform's Get Subscriptions shape",
            "description": "A business token reads its own business; a service or directory token names one with `business_id`.",
            "parameters": [{
                "name": "business_id", "in": "query", "required": false,
                "description": "The business; required unless the token is a business's.",
                "schema": {"type": "string"},
            }],
            "responses": responses(license_schema(), &mut schemas),
        }}),
    );
    paths.insert(
        PATH.to_owned(),
        json!({"get": {
            "operationId": "GetOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}},
        }}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "billing-service JSON API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Read endpoints for callers without gRPC. Each /v1 endpoint is the gRPC RPC it names, under the same bearer tokens and tenant rules; errors are google.rpc.Status as JSON with the same ErrorInfo reasons.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas.found,
        },
    })
}

/// The answers every endpoint can give: its reply, or an error.
fn responses(reply: Value, schemas: &mut Schemas<'_>) -> Value {
    let error = schemas.message_by_name(STATUS);
    let mut responses = serde_json::Map::new();
    responses.insert(
        "200".to_owned(),
        json!({"description": "The answer", "content": {"application/json": {"schema": reply}}}),
    );
    for (code, description) in [
        ("400", "A parameter is invalid (BadRequest names each)"),
        ("401", "No valid bearer token"),
        ("403", "The token's role may not call this"),
        ("404", "Not found, or another tenant's"),
        ("429", "The server is at its limit of concurrent requests"),
        ("500", "A bug"),
        ("503", "The database is unavailable"),
        ("504", "The deadline passed"),
    ] {
        responses.insert(
            code.to_owned(),
            json!({"description": description, "content": {"application/json": {"schema": error}}}),
        );
    }
    // The HTTP side's own time limit answers with no body.
    responses.insert(
        "408".to_owned(),
        json!({"description": "The request took longer than `server.request_timeout_seconds`"}),
    );
    Value::Object(responses)
}

/// `{business_id}` and `{product_code}` of `/v1/businesses/{business_id}/…`.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// JSON Schemas of the messages a document refers to, by full name.
struct Schemas<'a> {
    pool: &'a DescriptorPool,
    found: BTreeMap<String, Value>,
}

impl Schemas<'_> {
    fn message_by_name(&mut self, name: &str) -> Value {
        match self.pool.get_message_by_name(name) {
            Some(message) => self.message(&message),
            None => json!({}),
        }
    }

    /// A reference to `message`'s schema, written on first use. The
    /// well-known types are inlined in their JSON forms.
    fn message(&mut self, message: &MessageDescriptor) -> Value {
        match message.full_name() {
            "google.protobuf.Timestamp" => return json!({"type": "string", "format": "date-time"}),
            "google.protobuf.Duration" => return json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"}),
            "google.protobuf.Struct" => return json!({"type": "object"}),
            "google.protobuf.Value" => return json!({}),
            "google.protobuf.Any" => {
                return json!({"type": "object", "properties": {"@type": {"type": "string"}}, "required": ["@type"]});
            }
            _ => {}
        }
        let name = message.full_name().to_owned();
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        if self.found.contains_key(&name) {
            return reference;
        }
        // Claimed before its fields, so a message that contains itself ends.
        self.found.insert(name.clone(), json!({}));
        let mut properties = serde_json::Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            properties.insert(field.json_name().to_owned(), self.field(&field));
            if !field.supports_presence() {
                required.push(field.json_name().to_owned());
            }
        }
        self.found.insert(
            name,
            json!({
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            }),
        );
        reference
    }

    fn field(&mut self, field: &FieldDescriptor) -> Value {
        if field.is_map()
            && let Kind::Message(entry) = field.kind()
        {
            let value = entry.map_entry_value_field();
            return json!({"type": "object", "additionalProperties": self.single(&value)});
        }
        let single = self.single(field);
        if field.is_list() {
            json!({"type": "array", "items": single})
        } else {
            single
        }
    }

    fn single(&mut self, field: &FieldDescriptor) -> Value {
        match field.kind() {
            Kind::String => json!({"type": "string"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({"type": "integer", "format": "int32"}),
            Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int32", "minimum": 0}),
            // 64-bit integers are strings in the canonical mapping.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"})
            }
            Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "int64", "pattern": "^[0-9]+$"}),
            Kind::Float | Kind::Double => json!({"type": "number"}),
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
            Kind::Enum(values) => {
                json!({"type": "string", "enum": values.values().map(|value| value.name().to_owned()).collect::<Vec<_>>()})
            }
            Kind::Message(message) => self.message(&message),
        }
    }
}

/// The platform's Get Subscriptions answer (`license::Answer`).
fn license_schema() -> Value {
    let text = json!({"type": "string"});
    let optional_text = json!({"type": ["string", "null"]});
    let time = json!({"type": ["string", "null"], "format": "date-time"});
    let word = |values: &[&str]| json!({"type": "string", "enum": values});
    let subscription = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "uid": text, "display_name": text, "buyer_uid": text, "business_uid": text,
            "purchase_currency": optional_text,
            "purchase_price": {"type": ["string", "null"], "pattern": "^-?[0-9]+(\\.[0-9]+)?$"},
            "purchase_state": word(&["purchased", "canceled", "expired", "unspecified"]),
            "cancellation_date": time, "expiration_date": time, "updated_at": time, "created_at": time,
            "payment_type": word(&["free", "paid", "bundled", "sponsored", "unspecified"]),
            "bundled_from_subscription_uid": optional_text,
            "is_active": {"type": "boolean"},
            "offering_uid": text,
            "trial_type": word(&["no_trial", "trial", "unspecified"]),
            "offering_type": word(&["package", "app", "addon", "unspecified"]),
        },
        "required": [
            "uid", "display_name", "buyer_uid", "business_uid", "purchase_currency", "purchase_price",
            "purchase_state", "cancellation_date", "expiration_date", "updated_at", "created_at",
            "payment_type", "bundled_from_subscription_uid", "is_active", "offering_uid", "trial_type",
            "offering_type",
        ],
    });
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "data": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"subscriptions": {"type": "array", "items": subscription}},
                "required": ["subscriptions"],
            },
            "success": {"type": "boolean"},
        },
        "required": ["data", "success"],
    })
}
