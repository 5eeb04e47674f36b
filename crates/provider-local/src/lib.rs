//! The built-in ledger provider, the default.
//!
//! The service's own engine computes every invoice; this provider "charges"
//! the business's attached payment method. It understands Stripe's
//! documented test tokens, with the brand and last four digits Stripe gives
//! them: `pm_card_visa` (visa •••• 4242) and friends succeed;
//! `pm_card_chargeDeclined` and its siblings attach but decline every charge
//! with Stripe's decline code, which drives dunning in demos and tests.
//! Outcomes are deterministic, and an idempotency key returns the outcome it
//! first had.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use billing_provider_api::{
    ChargeOutcome, ChargeRequest, PaymentMethod, PaymentProvider, Provider, ProviderError, ProviderErrorKind,
};

/// What a test token is and does.
struct TestCard {
    token: &'static str,
    brand: &'static str,
    last4: &'static str,
    /// `None` = charges succeed; else Stripe's decline code.
    decline: Option<&'static str>,
}

/// Stripe's documented test payment methods.
const TEST_CARDS: &[TestCard] = &[
    TestCard {
        token: "pm_card_visa",
        brand: "visa",
        last4: "4242",
        decline: None,
    },
    TestCard {
        token: "pm_card_visa_debit",
        brand: "visa",
        last4: "5556",
        decline: None,
    },
    TestCard {
        token: "pm_card_mastercard",
        brand: "mastercard",
        last4: "4444",
        decline: None,
    },
    TestCard {
        token: "pm_card_mastercard_debit",
        brand: "mastercard",
        last4: "8210",
        decline: None,
    },
    TestCard {
        token: "pm_card_mastercard_prepaid",
        brand: "mastercard",
        last4: "5100",
        decline: None,
    },
    TestCard {
        token: "pm_card_amex",
        brand: "amex",
        last4: "8431",
        decline: None,
    },
    TestCard {
        token: "pm_card_discover",
        brand: "discover",
        last4: "1117",
        decline: None,
    },
    TestCard {
        token: "pm_card_diners",
        brand: "diners",
        last4: "3237",
        decline: None,
    },
    TestCard {
        token: "pm_card_jcb",
        brand: "jcb",
        last4: "0505",
        decline: None,
    },
    TestCard {
        token: "pm_card_chargeDeclined",
        brand: "visa",
        last4: "0002",
        decline: Some("card_declined"),
    },
    TestCard {
        token: "pm_card_chargeDeclinedInsufficientFunds",
        brand: "visa",
        last4: "9995",
        decline: Some("insufficient_funds"),
    },
    TestCard {
        token: "pm_card_chargeDeclinedLostCard",
        brand: "visa",
        last4: "9987",
        decline: Some("lost_card"),
    },
    TestCard {
        token: "pm_card_chargeDeclinedStolenCard",
        brand: "visa",
        last4: "9979",
        decline: Some("stolen_card"),
    },
    TestCard {
        token: "pm_card_chargeDeclinedExpiredCard",
        brand: "visa",
        last4: "0069",
        decline: Some("expired_card"),
    },
    TestCard {
        token: "pm_card_chargeDeclinedIncorrectCvc",
        brand: "visa",
        last4: "0127",
        decline: Some("incorrect_cvc"),
    },
    TestCard {
        token: "pm_card_chargeDeclinedProcessingError",
        brand: "visa",
        last4: "0119",
        decline: Some("processing_error"),
    },
    TestCard {
        token: "pm_card_chargeCustomerFail",
        brand: "visa",
        last4: "0341",
        decline: Some("card_declined"),
    },
];

/// Test cards expire at the end of this month and year, far enough away.
const EXP_MONTH: u32 = 12;
const EXP_YEAR: u32 = 2034;

fn card(token: &str) -> Option<&'static TestCard> {
    TEST_CARDS.iter().find(|card| card.token == token)
}

#[derive(Debug, Default)]
pub struct LocalProvider {
    /// Outcomes by idempotency key: a retried attempt gets its first answer.
    charges: Mutex<HashMap<String, ChargeOutcome>>,
}

impl LocalProvider {
    pub fn new() -> Self {
        LocalProvider::default()
    }
}

#[async_trait]
impl PaymentProvider for LocalProvider {
    fn name(&self) -> Provider {
        Provider::Local
    }

    async fn attach_payment_method(&self, _business_id: &str, token: &str) -> Result<PaymentMethod, ProviderError> {
        let card = card(token).ok_or_else(|| {
            ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                format!(
                    "unknown payment token {token:?}; the local provider understands Stripe's test tokens, e.g. pm_card_visa or pm_card_chargeDeclined"
                ),
            )
        })?;
        Ok(PaymentMethod {
            provider: self.name(),
            reference: card.token.to_owned(),
            brand: card.brand.to_owned(),
            last4: card.last4.to_owned(),
            exp_month: EXP_MONTH,
            exp_year: EXP_YEAR,
        })
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        let card = card(&request.payment_method).ok_or_else(|| {
            ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                "the payment method is not one this provider attached",
            )
        })?;
        if request.amount.amount_minor() <= 0 {
            return Err(ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                "a charge must be positive",
            ));
        }
        let mut charges = self.charges.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let outcome = charges
            .entry(request.idempotency_key.clone())
            .or_insert_with(|| match card.decline {
                None => ChargeOutcome::Succeeded {
                    reference: format!("local_ch_{}", request.idempotency_key),
                },
                Some(code) => ChargeOutcome::Declined {
                    code: code.to_owned(),
                    message: format!("the card ({} •••• {}) was declined: {code}", card.brand, card.last4),
                },
            });
        Ok(outcome.clone())
    }

    async fn find_charge(&self, idempotency_key: &str) -> Result<Option<ChargeOutcome>, ProviderError> {
        let charges = self.charges.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(charges.get(idempotency_key).cloned())
    }
}

#[cfg(test)]
mod tests {
    use billing_domain::{Currency, Money};

    use super::*;

    fn charge_of(token: &str, key: &str, amount: i64) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: key.to_owned(),
            business_id: "biz".to_owned(),
            payment_method: token.to_owned(),
            amount: Money::new(amount, Currency::from_code("USD").unwrap()),
            description: "test".to_owned(),
        }
    }

    #[tokio::test]
    async fn test_tokens_attach_with_stripes_brand_and_last4() {
        let provider = LocalProvider::new();
        for (token, brand, last4) in [
            ("pm_card_visa", "visa", "4242"),
            ("pm_card_mastercard", "mastercard", "4444"),
            ("pm_card_chargeDeclined", "visa", "0002"),
            ("pm_card_chargeDeclinedInsufficientFunds", "visa", "9995"),
        ] {
            let method = provider.attach_payment_method("biz", token).await.unwrap();
            assert_eq!(
                (method.brand.as_str(), method.last4.as_str()),
                (brand, last4),
                "{token}"
            );
            assert_eq!(method.reference, token);
            assert_eq!(method.provider, Provider::Local);
        }
        let unknown = provider
            .attach_payment_method("biz", "4242424242424242")
            .await
            .unwrap_err();
        assert_eq!(unknown.kind(), ProviderErrorKind::InvalidRequest);
    }

    #[tokio::test]
    async fn good_cards_pay_and_declining_cards_decline_with_stripes_codes() {
        let provider = LocalProvider::new();
        let paid = provider
            .charge(&charge_of("pm_card_visa", "inv_1:1", 1000))
            .await
            .unwrap();
        assert!(matches!(paid, ChargeOutcome::Succeeded { .. }));
        let declined = provider
            .charge(&charge_of("pm_card_chargeDeclined", "inv_2:1", 1000))
            .await
            .unwrap();
        assert!(matches!(declined, ChargeOutcome::Declined { ref code, .. } if code == "card_declined"));
        let poor = provider
            .charge(&charge_of("pm_card_chargeDeclinedInsufficientFunds", "inv_3:1", 1000))
            .await
            .unwrap();
        assert!(matches!(poor, ChargeOutcome::Declined { ref code, .. } if code == "insufficient_funds"));
    }

    #[tokio::test]
    async fn a_key_returns_its_first_outcome_and_can_be_looked_up() {
        let provider = LocalProvider::new();
        assert_eq!(provider.find_charge("inv_1:1").await.unwrap(), None);
        let first = provider
            .charge(&charge_of("pm_card_visa", "inv_1:1", 1000))
            .await
            .unwrap();
        // A retry with another card under the same key is the same attempt.
        let again = provider
            .charge(&charge_of("pm_card_chargeDeclined", "inv_1:1", 1000))
            .await
            .unwrap();
        assert_eq!(first, again);
        assert_eq!(provider.find_charge("inv_1:1").await.unwrap(), Some(first));
        let zero = provider
            .charge(&charge_of("pm_card_visa", "inv_9:1", 0))
            .await
            .unwrap_err();
        assert_eq!(zero.kind(), ProviderErrorKind::InvalidRequest);
    }
}
