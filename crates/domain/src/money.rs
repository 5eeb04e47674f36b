//! Exact money: `i64` minor units of an ISO 4217 currency.
//!
//! Arithmetic is checked (an overflow is an error, never a wrap) and rounding
//! is explicit: [`round_half_up_div`] is the one place a fraction of a minor
//! unit is resolved, and callers round once per invoice line.

use std::fmt;

use crate::error::{DomainError, Reason};

/// An ISO 4217 currency that has a minor unit (so not XAU, XDR, …).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    iso: iso_currency::Currency,
    exponent: u8,
}

impl Currency {
    /// Parses an upper-case ISO 4217 alphabetic code such as `"USD"`.
    pub fn from_code(code: &str) -> Result<Self, MoneyError> {
        let iso =
            iso_currency::Currency::from_code(code).ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))?;
        // Funds and precious metals have no minor unit: they cannot be priced
        // in integer minor units, so they are not currencies for billing.
        let exponent = iso
            .exponent()
            .and_then(|exponent| u8::try_from(exponent).ok())
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))?;
        Ok(Currency { iso, exponent })
    }

    /// The alphabetic code, e.g. `"USD"`.
    pub fn code(self) -> &'static str {
        self.iso.code()
    }

    /// Minor units per major unit as a power of ten: JPY 0, USD 2, KWD 3.
    pub fn exponent(self) -> u8 {
        self.exponent
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.code())
    }
}

/// Why a money operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unknown currency {0:?}: expected an ISO 4217 code with a minor unit, such as \"USD\"")]
    UnknownCurrency(String),
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount overflows 64-bit minor units")]
    Overflow,
    #[error("division by a non-positive number")]
    NonPositiveDivisor,
}

impl From<MoneyError> for DomainError {
    fn from(error: MoneyError) -> Self {
        let reason = match error {
            MoneyError::UnknownCurrency(_) => Reason::CurrencyUnknown,
            MoneyError::CurrencyMismatch(..) | MoneyError::Overflow | MoneyError::NonPositiveDivisor => {
                Reason::PriceInvalid
            }
        };
        DomainError::new(reason, error.to_string())
    }
}

/// An amount of money.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Self {
        Money { amount_minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money::new(0, currency)
    }

    pub fn amount_minor(self) -> i64 {
        self.amount_minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    pub fn is_zero(self) -> bool {
        self.amount_minor == 0
    }

    pub fn is_negative(self) -> bool {
        self.amount_minor < 0
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount_minor
            .checked_sub(other.amount_minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let amount = self.amount_minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// The amount times a whole quantity (e.g. seats).
    pub fn checked_mul(self, quantity: i64) -> Result<Money, MoneyError> {
        let amount = self.amount_minor.checked_mul(quantity).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `self × numerator / denominator`, rounded half-up once at the end.
    ///
    /// This is how a price is prorated (`price × days / days_in_period`): the
    /// product is computed exactly in 128 bits and rounded once, never via a
    /// rounded daily rate.
    pub fn mul_ratio_half_up(self, numerator: i64, denominator: i64) -> Result<Money, MoneyError> {
        let product = i128::from(self.amount_minor) * i128::from(numerator);
        let rounded = round_half_up_div(product, i128::from(denominator))?;
        let amount = i64::try_from(rounded).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        Ok(())
    }

    /// The amount as a decimal in the currency's minor-unit exponent, without
    /// the currency: `19.99`, `500` (JPY), `-1.500` (KWD), `0.00`.
    pub fn decimal(self) -> String {
        let exponent = u32::from(self.currency.exponent());
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let magnitude = self.amount_minor.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{magnitude}");
        }
        let scale = 10_u64.pow(exponent);
        let width = exponent as usize;
        format!("{sign}{}.{:0width$}", magnitude / scale, magnitude % scale)
    }
}

impl fmt::Display for Money {
    /// `19.99 USD`, `500 JPY`, `-1.500 KWD`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{} {}", self.decimal(), self.currency)
    }
}

/// `numerator / denominator` rounded to the nearest integer, halves away from
/// zero ("half-up" as accountants use it, symmetric for credits).
pub fn round_half_up_div(numerator: i128, denominator: i128) -> Result<i128, MoneyError> {
    if denominator <= 0 {
        return Err(MoneyError::NonPositiveDivisor);
    }
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    // |remainder| * 2 >= denominator means the fraction is at least one half.
    let twice_remainder = remainder.unsigned_abs().checked_mul(2).ok_or(MoneyError::Overflow)?;
    if twice_remainder < denominator.unsigned_abs() {
        return Ok(quotient);
    }
    let away_from_zero = if numerator < 0 { -1 } else { 1 };
    quotient.checked_add(away_from_zero).ok_or(MoneyError::Overflow)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn usd() -> Currency {
        Currency::from_code("USD").unwrap()
    }

    #[test]
    fn exponents_follow_iso_4217() {
        assert_eq!(Currency::from_code("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::from_code("USD").unwrap().exponent(), 2);
        assert_eq!(Currency::from_code("KWD").unwrap().exponent(), 3);
    }

    #[test]
    fn unknown_and_unit_less_currencies_are_rejected() {
        for code in ["", "usd", "XYZ", "XAU", "US"] {
            assert!(
                matches!(Currency::from_code(code), Err(MoneyError::UnknownCurrency(_))),
                "{code}"
            );
        }
    }

    #[test]
    fn display_uses_the_currency_exponent() {
        let jpy = Currency::from_code("JPY").unwrap();
        let kwd = Currency::from_code("KWD").unwrap();
        assert_eq!(Money::new(1999, usd()).to_string(), "19.99 USD");
        assert_eq!(Money::new(5, usd()).to_string(), "0.05 USD");
        assert_eq!(Money::new(-1500, kwd).to_string(), "-1.500 KWD");
        assert_eq!(Money::new(500, jpy).to_string(), "500 JPY");
        assert_eq!(Money::new(i64::MIN, usd()).to_string(), "-92233720368547758.08 USD");
        assert_eq!(Money::new(0, usd()).decimal(), "0.00");
        assert_eq!(Money::new(500, jpy).decimal(), "500");
        assert_eq!(Money::new(7, kwd).decimal(), "0.007");
    }

    #[test]
    fn arithmetic_refuses_to_mix_currencies() {
        let eur = Currency::from_code("EUR").unwrap();
        let error = Money::new(1, usd()).checked_add(Money::new(1, eur)).unwrap_err();
        assert_eq!(error, MoneyError::CurrencyMismatch(usd(), eur));
    }

    #[test]
    fn arithmetic_reports_overflow_instead_of_wrapping() {
        assert_eq!(
            Money::new(i64::MAX, usd()).checked_add(Money::new(1, usd())),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(i64::MIN, usd()).checked_sub(Money::new(1, usd())),
            Err(MoneyError::Overflow)
        );
        assert_eq!(Money::new(i64::MIN, usd()).checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(Money::new(i64::MAX, usd()).checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(
            Money::new(i64::MAX, usd()).mul_ratio_half_up(3, 2),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn rounding_is_half_up_and_symmetric() {
        let cases = [
            (5, 2, 3),   // 2.5 -> 3
            (7, 3, 2),   // 2.33 -> 2
            (8, 3, 3),   // 2.67 -> 3
            (-5, 2, -3), // -2.5 -> -3
            (-7, 3, -2),
            (0, 7, 0),
            (1, 2, 1),
            (1, 3, 0),
        ];
        for (numerator, denominator, expected) in cases {
            assert_eq!(
                round_half_up_div(numerator, denominator),
                Ok(expected),
                "{numerator}/{denominator}"
            );
        }
        assert_eq!(round_half_up_div(1, 0), Err(MoneyError::NonPositiveDivisor));
        assert_eq!(round_half_up_div(1, -2), Err(MoneyError::NonPositiveDivisor));
    }

    #[test]
    fn proration_rounds_the_line_not_the_daily_rate() {
        // 10.00 USD for 17 of 31 days: 1000 × 17 / 31 = 548.39 -> 548.
        // A rounded daily rate (32) would give 544.
        assert_eq!(
            Money::new(1000, usd())
                .mul_ratio_half_up(17, 31)
                .unwrap()
                .amount_minor(),
            548
        );
    }

    proptest! {
        #[test]
        fn rounding_is_within_half_a_unit(numerator in -1_000_000_000_i128..1_000_000_000, denominator in 1_i128..100_000) {
            let rounded = round_half_up_div(numerator, denominator).unwrap();
            // |rounded - n/d| <= 1/2  <=>  |2·rounded·d - 2n| <= d
            let error = (2 * rounded * denominator - 2 * numerator).abs();
            prop_assert!(error <= denominator);
        }

        #[test]
        fn arithmetic_on_any_amounts_answers_or_refuses_never_panics(
            a in any::<i64>(),
            b in any::<i64>(),
            quantity in any::<i64>(),
            numerator in any::<i64>(),
            denominator in any::<i64>(),
            code in ".{0,8}",
        ) {
            let (x, y) = (Money::new(a, usd()), Money::new(b, usd()));
            if let Ok(sum) = x.checked_add(y) {
                prop_assert_eq!(i128::from(sum.amount_minor()), i128::from(a) + i128::from(b));
            }
            if let Ok(difference) = x.checked_sub(y) {
                prop_assert_eq!(i128::from(difference.amount_minor()), i128::from(a) - i128::from(b));
            }
            let _ = x.checked_neg();
            if let Ok(product) = x.checked_mul(quantity) {
                prop_assert_eq!(i128::from(product.amount_minor()), i128::from(a) * i128::from(quantity));
            }
            let ratio = x.mul_ratio_half_up(numerator, denominator);
            if denominator == 0 {
                prop_assert!(ratio.is_err());
            }
            let _ = Currency::from_code(&code);
        }

        #[test]
        fn whole_ratio_is_identity(amount in -1_000_000_000_i64..1_000_000_000, days in 1_i64..400) {
            let money = Money::new(amount, usd());
            prop_assert_eq!(money.mul_ratio_half_up(days, days).unwrap(), money);
        }
    }
}
