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
