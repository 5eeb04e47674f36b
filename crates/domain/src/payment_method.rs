//! Payment methods: a provider's reference and display details. Never card
//! data.

/// A payment method attached at a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentMethod {
    /// The provider that holds it (a gateway: `local`, `stripe`).
    pub provider: crate::Provider,
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

/// What a card number is replaced with by [`redact_card_numbers`].
pub const REDACTED_CARD_NUMBER: &str = "[redacted card number]";

/// `text` with every run that [`looks_like_card_number`] replaced, for
/// messages and logs that may quote client input.
pub fn redact_card_numbers(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut redacted = String::new();
    let mut copied = 0;
    let mut index = 0;
    while index < bytes.len() {
        if !bytes[index].is_ascii_digit() {
            index += 1;
            continue;
        }
        // The longest run of digits, single spaces and dashes, ending on a digit.
        let start = index;
        let mut end = index + 1;
        let mut cursor = index + 1;
        while cursor < bytes.len() {
            let byte = bytes[cursor];
            let separator_then_digit =
                matches!(byte, b' ' | b'-') && bytes.get(cursor + 1).is_some_and(u8::is_ascii_digit);
            if byte.is_ascii_digit() {
                end = cursor + 1;
            } else if !separator_then_digit {
                break;
            }
            cursor += 1;
        }
        if looks_like_card_number(&text[start..end]) {
            redacted.push_str(&text[copied..start]);
            redacted.push_str(REDACTED_CARD_NUMBER);
            copied = end;
        }
        index = end;
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    redacted.push_str(&text[copied..]);
    std::borrow::Cow::Owned(redacted)
}

#[cfg(test)]
mod tests {
    use super::{REDACTED_CARD_NUMBER, looks_like_card_number, redact_card_numbers};

    #[test]
    fn card_numbers_in_text_are_redacted_and_the_rest_kept() {
        let text = "offering_code: \"4242 4242 4242 4242\" contains ' '; also 4000-0566-5566-5556.";
        let redacted = redact_card_numbers(text);
        assert_eq!(
            redacted,
            format!("offering_code: \"{REDACTED_CARD_NUMBER}\" contains ' '; also {REDACTED_CARD_NUMBER}.")
        );
        for untouched in [
            "no subscription has id sub_0190c0de000070008000000000000000",
            "must be at most 255 bytes, got 256",
            "amount 4242424242424241 is not a card",
            "",
        ] {
            assert_eq!(redact_card_numbers(untouched), untouched);
        }
    }

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
