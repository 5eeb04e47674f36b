//! Lists of amounts with one entry per currency.

use crate::error::{DomainError, Reason, Violations};
use crate::money::{Currency, Money};

/// An amount as a client sent it, before its currency is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoneyDraft {
    pub currency_code: String,
    pub amount_minor: i64,
}

impl MoneyDraft {
    pub fn new(currency_code: impl Into<String>, amount_minor: i64) -> Self {
        MoneyDraft {
            currency_code: currency_code.into(),
            amount_minor,
        }
    }

    /// A valid amount; violations are reported under `currency_code` and
    /// `amount_minor` of the draft.
    pub fn parse_non_negative(&self) -> Result<Money, DomainError> {
        let mut violations = Violations::new();
        let currency = violations.check(
            "currency_code",
            Currency::from_code(&self.currency_code).map_err(DomainError::from),
        );
        if self.amount_minor < 0 {
            violations.push("amount_minor", Reason::PriceInvalid, "must not be negative");
        }
        let Some(currency) = currency else {
            return Err(violations.into_error());
        };
        violations.into_result()?;
        Ok(Money::new(self.amount_minor, currency))
    }
}

/// Non-empty, non-negative amounts, at most one per currency, in the order
/// given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceList(Vec<Money>);

impl PriceList {
    /// Checks a list of drafts; paths are `[i].currency_code` and
    /// `[i].amount_minor`, or empty for the list as a whole.
    pub fn parse(drafts: &[MoneyDraft]) -> Result<Self, DomainError> {
        if drafts.is_empty() {
            return Err(DomainError::field(
                "",
                Reason::PriceInvalid,
                "at least one price is required",
            ));
        }
        let mut violations = Violations::new();
        let mut prices: Vec<Money> = Vec::with_capacity(drafts.len());
        for (index, draft) in drafts.iter().enumerate() {
            let path = format!("[{index}]");
            let Some(money) = violations.check(&path, draft.parse_non_negative()) else {
                continue;
            };
            if prices.iter().any(|existing| existing.currency() == money.currency()) {
                violations.push(
                    format!("{path}.currency_code"),
                    Reason::DuplicateCurrency,
                    format!("{} is priced twice; give one price per currency", money.currency()),
                );
                continue;
            }
            prices.push(money);
        }
        violations.into_result()?;
        Ok(PriceList(prices))
    }

    /// Rebuilds a list this service stored; the caller vouches it was valid.
    pub fn restore(prices: Vec<Money>) -> Self {
        PriceList(prices)
    }

    pub fn as_slice(&self) -> &[Money] {
        &self.0
    }

    /// Free means zero in every currency.
    pub fn is_free(&self) -> bool {
        self.0.iter().all(|price| price.is_zero())
    }

    pub fn price_in(&self, currency: Currency) -> Option<Money> {
        self.0.iter().copied().find(|price| price.currency() == currency)
    }

    pub fn currencies(&self) -> impl Iterator<Item = Currency> + '_ {
        self.0.iter().map(|price| price.currency())
    }

    /// Whether both lists price exactly the same currencies.
    pub fn same_currencies(&self, other: &PriceList) -> bool {
        self.0.len() == other.0.len() && self.currencies().all(|currency| other.price_in(currency).is_some())
    }

    pub fn currency_codes(&self) -> String {
        self.currencies().map(Currency::code).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_price_per_currency() {
        let error = PriceList::parse(&[MoneyDraft::new("USD", 100), MoneyDraft::new("USD", 200)]).unwrap_err();
        assert_eq!(error.reason(), Reason::DuplicateCurrency);
        assert_eq!(error.violations()[0].field, "[1].currency_code");
    }

    #[test]
    fn every_bad_entry_is_reported() {
        let error = PriceList::parse(&[MoneyDraft::new("XYZ", 100), MoneyDraft::new("EUR", -1)]).unwrap_err();
        let fields: Vec<_> = error
            .violations()
            .iter()
            .map(|v| (v.field.as_str(), v.reason))
            .collect();
        assert_eq!(
            fields,
            [
                ("[0].currency_code", Reason::CurrencyUnknown),
                ("[1].amount_minor", Reason::PriceInvalid)
            ]
        );
    }

    #[test]
    fn empty_list_is_rejected_and_zero_is_free() {
        assert_eq!(PriceList::parse(&[]).unwrap_err().reason(), Reason::PriceInvalid);
        let free = PriceList::parse(&[MoneyDraft::new("USD", 0), MoneyDraft::new("JPY", 0)]).unwrap();
        assert!(free.is_free());
        assert_eq!(free.currency_codes(), "USD, JPY");
    }

    #[test]
    fn currency_sets_compare_regardless_of_order() {
        let a = PriceList::parse(&[MoneyDraft::new("USD", 1), MoneyDraft::new("EUR", 1)]).unwrap();
        let b = PriceList::parse(&[MoneyDraft::new("EUR", 5), MoneyDraft::new("USD", 5)]).unwrap();
        let c = PriceList::parse(&[MoneyDraft::new("EUR", 5)]).unwrap();
        assert!(a.same_currencies(&b));
        assert!(!a.same_currencies(&c));
        assert!(!c.same_currencies(&a));
    }
}
