//! The demo catalog behind the README's grpcurl examples: a free default
//! package, Plus and Pro packages billed monthly or yearly, an SEO add-on that
//! Pro bundles, a Bookings app priced per seat, and a WELCOME20 coupon, all
//! sold in directory `demo`. Loading it twice changes nothing.

use billing_app::{AppError, Catalog};
use billing_domain::ErrorKind;
use billing_domain::catalog::{
    BillingAlignment, BillingInterval, ComponentDraft, CouponDraft, CouponDurationKind, MoneyDraft, OfferingDraft,
    OfferingType, ProductDraft,
};

pub const DIRECTORY_ID: &str = "demo";

/// How much of the demo catalog a load created.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DemoSummary {
    pub created: usize,
    pub existing: usize,
}

impl DemoSummary {
    /// Counts a create; "already exists" means an earlier load made it.
    fn record<T>(&mut self, outcome: Result<T, AppError>) -> Result<(), AppError> {
        match outcome {
            Ok(_) => self.created += 1,
            Err(error) if error.kind() == ErrorKind::AlreadyExists => self.existing += 1,
            Err(error) => return Err(error),
        }
        Ok(())
    }
}

fn usd_eur(usd: i64, eur: i64) -> Vec<MoneyDraft> {
    vec![MoneyDraft::new("USD", usd), MoneyDraft::new("EUR", eur)]
}

fn package(code: &str, name: &str, interval: BillingInterval, usd: i64, eur: i64) -> OfferingDraft {
    OfferingDraft {
        code: code.into(),
        display_name: name.into(),
        offering_type: Some(OfferingType::Package),
        family: "package".into(),
        prices: usd_eur(usd, eur),
        billing_interval: Some(interval),
        ..OfferingDraft::default()
    }
}

fn offerings() -> Vec<OfferingDraft> {
    use BillingInterval::{Month, Year};
    let plus_products = vec!["website".to_owned(), "online-store".to_owned()];
    let pro_products = vec!["website".to_owned(), "online-store".to_owned(), "marketing".to_owned()];
    vec![
        OfferingDraft {
            description: "A website, free forever.".into(),
            product_codes: vec!["website".into()],
            ..package("free", "Free", Month, 0, 0)
        },
        OfferingDraft {
            description: "A website with an online store.".into(),
            product_codes: plus_products.clone(),
            trial_days: 14,
            ..package("plus-monthly", "Plus (monthly)", Month, 1500, 1400)
        },
        OfferingDraft {
            description: "Plus, billed yearly: two months free.".into(),
            product_codes: plus_products,
            trial_days: 14,
            ..package("plus-yearly", "Plus (yearly)", Year, 15000, 14000)
        },
        OfferingDraft {
            code: "seo".into(),
            display_name: "SEO tools".into(),
            description: "Search-engine optimisation for every page.".into(),
            offering_type: Some(OfferingType::Addon),
            family: "seo".into(),
            product_codes: vec!["seo".into()],
            prices: usd_eur(500, 450),
            billing_interval: Some(Month),
            ..OfferingDraft::default()
        },
        OfferingDraft {
            description: "Everything in Plus, email marketing, and SEO tools included.".into(),
            product_codes: pro_products.clone(),
            bundled_offering_codes: vec!["seo".into()],
            ..package("pro-monthly", "Pro (monthly)", Month, 3000, 2800)
        },
        OfferingDraft {
            description: "Pro, billed yearly.".into(),
            product_codes: pro_products,
            bundled_offering_codes: vec!["seo".into()],
            ..package("pro-yearly", "Pro (yearly)", Year, 30000, 28000)
        },
        OfferingDraft {
            code: "bookings".into(),
            display_name: "Bookings".into(),
            description: "Online appointments, priced per staff seat.".into(),
            offering_type: Some(OfferingType::App),
            family: "bookings".into(),
            product_codes: vec!["bookings".into()],
            prices: usd_eur(1000, 900),
            billing_interval: Some(Month),
            billing_alignment: Some(BillingAlignment::Calendar),
            components: vec![ComponentDraft {
                code: "seat".into(),
                display_name: "Staff seat".into(),
                unit_prices: usd_eur(500, 450),
            }],
            ..OfferingDraft::default()
        },
    ]
}

/// Loads the demo catalog; safe to run again.
pub async fn load(catalog: &Catalog) -> Result<DemoSummary, AppError> {
    let mut summary = DemoSummary::default();
    let products = [
        ("website", "Website builder"),
        ("online-store", "Online store"),
        ("marketing", "Email marketing"),
        ("seo", "SEO tools"),
        ("bookings", "Online bookings"),
    ];
    for (code, name) in products {
        let draft = ProductDraft {
            code: code.into(),
            display_name: name.into(),
            description: String::new(),
        };
        summary.record(catalog.create_product(&draft).await)?;
    }
    let offerings = offerings();
    for draft in &offerings {
        summary.record(catalog.create_offering(draft).await)?;
    }
    let coupon = CouponDraft {
        code: "WELCOME20".into(),
        percent_off: Some(2000),
        duration: Some(CouponDurationKind::Repeating),
        duration_periods: 3,
        max_redemptions: 1000,
        ..CouponDraft::default()
    };
    summary.record(catalog.create_coupon(&coupon).await)?;
    for draft in &offerings {
        let is_default = draft.code == "free";
        catalog.assign_offering(DIRECTORY_ID, &draft.code, is_default).await?;
    }
    Ok(summary)
}
