//! JSON values as `google.protobuf.Struct` (an event's resource snapshot).

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

/// A JSON object as a `Struct`; anything else as `{"value": …}`.
pub fn json_to_struct(json: serde_json::Value) -> Option<Struct> {
    match json_to_value(json).kind {
        Some(Kind::StructValue(object)) => Some(object),
        Some(Kind::NullValue(_)) | None => None,
        other => Some(Struct {
            fields: [("value".to_owned(), Value { kind: other })].into_iter().collect(),
        }),
    }
}

fn json_to_value(json: serde_json::Value) -> Value {
    let kind = match json {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(flag) => Kind::BoolValue(flag),
        // Struct numbers are doubles; money travels as integer minor units,
        // which stay exact far beyond any real amount (2^53).
        serde_json::Value::Number(number) => Kind::NumberValue(number.as_f64().unwrap_or_default()),
        serde_json::Value::String(text) => Kind::StringValue(text),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(fields) => Kind::StructValue(Struct {
            fields: fields
                .into_iter()
                .map(|(name, value)| (name, json_to_value(value)))
                .collect(),
        }),
    };
    Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_become_structs_field_by_field() {
        let converted = json_to_struct(serde_json::json!({
            "id": "sub_1",
            "version": 3,
            "active": true,
            "expiration_time": null,
            "lines": [{"amount_minor": 1500}],
        }))
        .unwrap();
        assert_eq!(converted.fields["id"].kind, Some(Kind::StringValue("sub_1".into())));
        assert_eq!(converted.fields["version"].kind, Some(Kind::NumberValue(3.0)));
        assert_eq!(converted.fields["active"].kind, Some(Kind::BoolValue(true)));
        assert_eq!(converted.fields["expiration_time"].kind, Some(Kind::NullValue(0)));
        let Some(Kind::ListValue(lines)) = &converted.fields["lines"].kind else {
            panic!("a list");
        };
        assert_eq!(lines.values.len(), 1);
        assert_eq!(json_to_struct(serde_json::Value::Null), None);
    }
}
