//! Conversions between rows and domain values.
//!
//! Rows are trusted to have been written by this crate from valid domain
//! values; anything that no longer parses is reported as corrupt, never
//! papered over.
//!
//! `catalog` converts products, offerings, directory offerings and coupons;
//! `subscriptions` businesses, subscriptions and entitlements, with their
//! `held` changes.

mod catalog;
mod held;
mod subscriptions;

use billing_domain::catalog::PriceList;
use billing_domain::subscription::ComponentQuantity;
use billing_domain::text::Code;
use billing_domain::{Currency, Money};
use serde::{Deserialize, Serialize};

use crate::error::StorageError;

pub use self::catalog::{
    coupon_from_row, coupon_to_row, directory_offering_from_row, directory_offering_to_row, offering_from_row,
    offering_to_row, product_from_row, product_to_row,
};
pub use self::subscriptions::{
    business_from_row, entitlement_from_row, entitlement_to_row, subscription_from_row, subscription_to_row,
};

#[derive(Serialize, Deserialize)]
struct PriceJson {
    currency_code: String,
    amount_minor: i64,
}

#[derive(Serialize, Deserialize)]
struct ComponentJson {
    code: String,
    display_name: String,
    unit_prices: Vec<PriceJson>,
}

/// Builds parse errors for one row: the one way a stored value that no
/// longer parses is reported.
pub(crate) struct RowContext {
    table: &'static str,
    key: String,
}

impl RowContext {
    pub(crate) fn new(table: &'static str, key: &str) -> Self {
        RowContext {
            table,
            key: key.to_owned(),
        }
    }

    pub(crate) fn corrupt(&self, detail: impl std::fmt::Display) -> StorageError {
        StorageError::Corrupt {
            table: self.table,
            key: self.key.clone(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn code(&self, text: &str) -> Result<Code, StorageError> {
        Code::parse(text).map_err(|error| self.corrupt(error))
    }

    fn codes(&self, json: serde_json::Value) -> Result<Vec<Code>, StorageError> {
        let texts: Vec<String> = serde_json::from_value(json).map_err(|error| self.corrupt(error))?;
        texts.iter().map(|text| self.code(text)).collect()
    }

    fn money(&self, currency_code: &str, amount_minor: i64) -> Result<Money, StorageError> {
        let currency = Currency::from_code(currency_code).map_err(|error| self.corrupt(error))?;
        Ok(Money::new(amount_minor, currency))
    }

    fn prices(&self, prices: Vec<PriceJson>) -> Result<PriceList, StorageError> {
        let prices = prices
            .iter()
            .map(|price| self.money(&price.currency_code, price.amount_minor))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PriceList::restore(prices))
    }

    pub(crate) fn enum_text<T>(&self, text: &str, parse: fn(&str) -> Option<T>) -> Result<T, StorageError> {
        parse(text).ok_or_else(|| self.corrupt(format!("unknown value {text:?}")))
    }
}

fn prices_json(prices: &PriceList) -> serde_json::Value {
    let prices: Vec<PriceJson> = prices
        .as_slice()
        .iter()
        .map(|price| PriceJson {
            currency_code: price.currency().code().to_owned(),
            amount_minor: price.amount_minor(),
        })
        .collect();
    serde_json::json!(prices)
}

fn codes_json(codes: &[Code]) -> serde_json::Value {
    serde_json::json!(codes.iter().map(Code::as_str).collect::<Vec<_>>())
}

#[derive(Serialize, Deserialize)]
struct ComponentQuantityJson {
    component_code: String,
    quantity: u32,
}

fn components_json(components: &[ComponentQuantity]) -> Vec<ComponentQuantityJson> {
    components
        .iter()
        .map(|component| ComponentQuantityJson {
            component_code: component.component_code.as_str().to_owned(),
            quantity: component.quantity,
        })
        .collect()
}

impl RowContext {
    fn components(&self, components: Vec<ComponentQuantityJson>) -> Result<Vec<ComponentQuantity>, StorageError> {
        components
            .into_iter()
            .map(|component| {
                Ok(ComponentQuantity {
                    component_code: self.code(&component.component_code)?,
                    quantity: component.quantity,
                })
            })
            .collect()
    }
}
