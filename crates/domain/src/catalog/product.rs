//! Products: scopes of functionality that offerings entitle.

use chrono::{DateTime, Utc};

use crate::error::{DomainError, Violations};
use crate::ids::ProductId;
use crate::text::{self, Code};

/// A product as a client asked for it.
#[derive(Clone, Debug, Default)]
pub struct ProductDraft {
    pub code: String,
    pub display_name: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub code: Code,
    pub display_name: String,
    pub description: String,
    pub create_time: DateTime<Utc>,
}

impl Product {
    pub fn create(draft: &ProductDraft, id: ProductId, now: DateTime<Utc>) -> Result<Self, DomainError> {
        let mut violations = Violations::new();
        let code = violations.check("code", Code::parse(&draft.code));
        let display_name = violations.check("display_name", text::display_name(&draft.display_name));
        let description = violations.check("description", text::description(&draft.description));
        let (Some(code), Some(display_name), Some(description)) = (code, display_name, description) else {
            return Err(violations.into_error());
        };
        Ok(Product {
            id,
            code,
            display_name,
            description,
            create_time: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::Reason;

    #[test]
    fn a_product_needs_a_code_and_a_name() {
        let draft = ProductDraft::default();
        let error = Product::create(&draft, ProductId::from_uuid(Uuid::nil()), Utc::now()).unwrap_err();
        let fields: Vec<_> = error
            .violations()
            .iter()
            .map(|v| (v.field.as_str(), v.reason))
            .collect();
        assert_eq!(
            fields,
            [("code", Reason::CodeInvalid), ("display_name", Reason::FieldInvalid)]
        );
    }

    #[test]
    fn a_valid_draft_becomes_a_product() {
        let draft = ProductDraft {
            code: "online-store".into(),
            display_name: "Online store".into(),
            description: String::new(),
        };
        let product = Product::create(&draft, ProductId::from_uuid(Uuid::nil()), Utc::now()).unwrap();
        assert_eq!(product.code.as_str(), "online-store");
    }
}
