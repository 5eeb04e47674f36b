//! The billing providers a directory can be billed by.

crate::text_enum!(
    /// Which provider moves a subscription's money. Chosen per directory in
    /// configuration (`providers.default`, `providers.by_directory`) and kept
    /// on every subscription and payment method it bills.
    Provider {
        /// The built-in ledger: this service's engine, no outside calls.
        Local => "local",
        /// Stripe as the payment gateway of this service's engine.
        Stripe => "stripe",
        /// Maxio (Chargify) as the engine: it bills and renews, this
        /// service mirrors it.
        Maxio => "maxio",
    }
);

impl Provider {
    /// Every provider, in the order configuration errors list them.
    pub const ALL: [Provider; 3] = [Provider::Local, Provider::Stripe, Provider::Maxio];

    /// Whether the provider runs the billing itself (invoices, renewals,
    /// dunning), so that this service records its reports instead of
    /// computing them.
    pub fn is_engine(self) -> bool {
        self == Provider::Maxio
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Provider;

    #[test]
    fn every_provider_reads_back_its_text_and_only_maxio_is_an_engine() {
        for provider in Provider::ALL {
            assert_eq!(Provider::from_text(provider.as_str()), Some(provider));
        }
        assert_eq!(Provider::from_text("paypal"), None);
        let engines: Vec<_> = Provider::ALL
            .into_iter()
            .filter(|provider| provider.is_engine())
            .collect();
        assert_eq!(engines, [Provider::Maxio]);
    }
}
