//! Payment methods: a provider's reference and display details. Never card
//! data.

/// A payment method attached at a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentMethod {
    /// The provider that holds it (`local`, `stripe`).
    pub provider: String,
    /// The provider's reference (a token or `pm_…` id) to charge it by.
    pub reference: String,
    /// Card brand as the provider names it: `visa`, `mastercard`, `amex`, …
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: u32,
}

/// Whether `text` looks like a primary account number: 12 to 19 digits,
/// perhaps grouped by spaces or dashes, that pass the Luhn check. Such a
/// value is refused without being echoed or logged: this service takes
/// provider tokens only, never card data.
pub fn looks_like_card_number(text: &str) -> bool {
    if text.chars().any(|c| !(c.is_ascii_digit() || c == ' ' || c == '-')) {
        return false;
    }
    let digits: Vec<u32> = text.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(12..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, &digit)| {
            if !position.is_multiple_of(2) {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::looks_like_card_number;

    #[test]
    fn card_numbers_are_recognised_however_they_are_grouped() {
        for pan in [
            "4242424242424242",
            "4242 4242 4242 4242",
            "4000-0566-5566-5556",
            "378282246310005",
            "6011111111111117",
        ] {
            assert!(looks_like_card_number(pan), "{pan}");
        }
    }

    #[test]
    fn tokens_and_near_misses_are_not_card_numbers() {
        for text in [
            "pm_card_visa",
            "tok_4242424242424242",
            "4242424242424241",
            "12345",
            "",
            "42424242424242424242424",
        ] {
            assert!(!looks_like_card_number(text), "{text}");
        }
    }
}
