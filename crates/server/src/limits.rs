//! Size limits on every field of every request, from the contract's
//! descriptors rather than per-handler code: an id, code, key or token is at
//! most [`MAX_ID_LEN`] bytes, any other string [`MAX_TEXT_LEN`], and a
//! repeated or map field holds at most [`MAX_ITEMS`] entries. The domain's
//! own, tighter rules (64-character codes, …) still apply after this.

use billing_domain::{DomainError, FieldViolation, Reason};
use prost_reflect::{DescriptorPool, DynamicMessage, FieldDescriptor, MapKey, MessageDescriptor, Value};

pub const MAX_ID_LEN: usize = 255;
pub const MAX_TEXT_LEN: usize = 4096;
pub const MAX_ITEMS: usize = 100;

/// The request messages of the contract, by method path.
pub struct RequestShapes {
    pool: DescriptorPool,
}

impl RequestShapes {
    pub fn new() -> anyhow::Result<Self> {
        Ok(RequestShapes {
            pool: DescriptorPool::decode(billing_proto::FILE_DESCRIPTOR_SET)?,
        })
    }

    /// The input message of `/package.Service/Method`.
    pub fn input_of(&self, path: &str) -> Option<MessageDescriptor> {
        crate::http::rest::method_in(&self.pool, path.strip_prefix('/')?).map(|method| method.input())
    }

    /// Every field of `payload` (an encoded `input`) within its limit. A
    /// payload that does not decode is left to the service to refuse.
    pub fn check(&self, input: &MessageDescriptor, payload: &[u8]) -> Result<(), DomainError> {
        // Too short to hold a string over the limit or more items than allowed.
        if payload.len() <= MAX_ITEMS {
            return Ok(());
        }
        let Ok(message) = DynamicMessage::decode(input.clone(), payload) else {
            return Ok(());
        };
        let mut violations = Vec::new();
        walk(&message, "", &mut violations);
        match DomainError::from_violations(violations) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

fn walk(message: &DynamicMessage, prefix: &str, violations: &mut Vec<FieldViolation>) {
    for (field, value) in message.fields() {
        let path = format!("{prefix}{}", field.name());
        match value {
            Value::List(items) => {
                if items.len() > MAX_ITEMS {
                    violations.push(too_many(&path, items.len()));
                    continue;
                }
                for (index, item) in items.iter().enumerate() {
                    check_value(&field, item, &format!("{path}[{index}]"), violations);
                }
            }
            Value::Map(entries) => {
                if entries.len() > MAX_ITEMS {
                    violations.push(too_many(&path, entries.len()));
                    continue;
                }
                for (key, item) in entries {
                    let entry_path = match key {
                        MapKey::String(text) => {
                            check_len(text.len(), MAX_ID_LEN, &format!("{path} key"), violations);
                            format!("{path}[{}]", text.chars().take(32).collect::<String>())
                        }
                        other => format!("{path}[{other:?}]"),
                    };
                    check_value(&field, item, &entry_path, violations);
                }
            }
            single => check_value(&field, single, &path, violations),
        }
    }
}

fn check_value(field: &FieldDescriptor, value: &Value, path: &str, violations: &mut Vec<FieldViolation>) {
    match value {
        Value::String(text) => check_len(text.len(), limit_for(field.name()), path, violations),
        Value::Bytes(bytes) => check_len(bytes.len(), MAX_TEXT_LEN, path, violations),
        Value::Message(inner) => walk(inner, &format!("{path}."), violations),
        _ => {}
    }
}

fn check_len(len: usize, limit: usize, path: &str, violations: &mut Vec<FieldViolation>) {
    if len > limit {
        violations.push(FieldViolation::new(
            path,
            Reason::FieldTooLong,
            format!("must be at most {limit} bytes, got {len}"),
        ));
    }
}

fn too_many(path: &str, count: usize) -> FieldViolation {
    FieldViolation::new(
        path,
        Reason::TooManyItems,
        format!("must hold at most {MAX_ITEMS} items, got {count}"),
    )
}

/// Identifiers and handles are short; free text may be longer.
fn limit_for(field_name: &str) -> usize {
    let identifier = field_name.ends_with("_id")
        || field_name.ends_with("_ids")
        || field_name.ends_with("code")
        || field_name.ends_with("codes")
        || matches!(field_name, "etag" | "token");
    if identifier { MAX_ID_LEN } else { MAX_TEXT_LEN }
}

#[cfg(test)]
mod tests {
    use billing_proto::v1 as pb;
    use prost::Message;

    use super::*;

    fn check(path: &str, message: &impl Message) -> Result<(), DomainError> {
        let shapes = RequestShapes::new().unwrap();
        let input = shapes.input_of(path).unwrap();
        shapes.check(&input, &message.encode_to_vec())
    }

    #[test]
    fn ordinary_requests_pass() {
        let request = pb::CreateSubscriptionRequest {
            request_id: "r".repeat(MAX_ID_LEN),
            business_id: "biz-1".into(),
            components: vec![pb::ComponentQuantity::default(); MAX_ITEMS],
            ..Default::default()
        };
        check("/billing.v1.SubscriptionService/CreateSubscription", &request).unwrap();
    }

    #[test]
    fn a_long_id_a_long_text_and_too_many_items_are_each_named() {
        let request = pb::CancelRequest {
            request_id: "r".repeat(MAX_ID_LEN + 1),
            reason: "x".repeat(MAX_TEXT_LEN + 1),
            ..Default::default()
        };
        let error = check("/billing.v1.SubscriptionService/Cancel", &request).unwrap_err();
        assert_eq!(error.reason(), Reason::FieldTooLong);
        let fields: Vec<&str> = error.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["request_id", "reason"]);

        let request = pb::UpdateComponentsRequest {
            components: vec![pb::ComponentQuantity::default(); 10_000],
            ..Default::default()
        };
        let error = check("/billing.v1.SubscriptionService/UpdateComponents", &request).unwrap_err();
        assert_eq!(error.reason(), Reason::TooManyItems);
        assert_eq!(error.violations()[0].field, "components");
    }

    #[test]
    fn nested_fields_are_checked_with_their_path() {
        let request = pb::CreateOfferingRequest {
            offering: Some(pb::Offering {
                code: "c".repeat(300),
                ..Default::default()
            }),
        };
        let error = check("/billing.v1.CatalogService/CreateOffering", &request).unwrap_err();
        assert_eq!(error.violations()[0].field, "offering.code");
    }

    #[test]
    fn unknown_paths_have_no_shape() {
        let shapes = RequestShapes::new().unwrap();
        assert!(shapes.input_of("/billing.v1.Nope/Nothing").is_none());
        assert!(shapes.input_of("garbage").is_none());
    }
}
