//! Offerings: what a business subscribes to.

use std::collections::{BTreeMap, HashSet};
use std::ops::Deref;

use chrono::{DateTime, Utc};

use super::bundle::BundleGraph;
use super::prices::{MoneyDraft, PriceList};
use crate::error::{DomainError, Reason, Violations};
use crate::ids::OfferingId;
use crate::text::{self, Code};

/// Longest trial an offering may give.
pub const MAX_TRIAL_DAYS: i32 = 730;
/// Most provider references one offering may carry.
pub const MAX_PROVIDER_REFS: usize = 32;
const MAX_PROVIDER_REF_VALUE_LEN: usize = 255;

text_enum!(
    /// What an offering is sold as.
    OfferingType { Package => "PACKAGE", App => "APP", Addon => "ADDON" }
);
text_enum!(
    /// How often an offering bills.
    BillingInterval { Month => "MONTH", Year => "YEAR" }
);
text_enum!(
    /// Where billing periods are anchored.
    BillingAlignment { Anniversary => "ANNIVERSARY", Calendar => "CALENDAR" }
);
text_enum!(
    /// Whether an offering is sold.
    OfferingStatus { Active => "ACTIVE", Hidden => "HIDDEN", Retired => "RETIRED" }
);

impl OfferingStatus {
    /// ACTIVE ⇄ HIDDEN, either → RETIRED; RETIRED is final. Staying put is
    /// always allowed.
    pub fn can_become(self, next: OfferingStatus) -> bool {
        use OfferingStatus::{Active, Hidden, Retired};
        self == next
            || matches!(
                (self, next),
                (Active, Hidden) | (Hidden, Active) | (Active | Hidden, Retired)
            )
    }

    /// Whether new subscriptions can be sold.
    pub fn is_sold(self) -> bool {
        self == OfferingStatus::Active
    }
}

/// A component as a client sent it.
#[derive(Clone, Debug, Default)]
pub struct ComponentDraft {
    pub code: String,
    pub display_name: String,
    pub unit_prices: Vec<MoneyDraft>,
}

/// A quantity-priced part of an offering (e.g. seats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub code: Code,
    pub display_name: String,
    pub unit_prices: PriceList,
}

/// An offering as a client sent it. `None` stands for an unspecified enum.
#[derive(Clone, Debug, Default)]
pub struct OfferingDraft {
    pub code: String,
    pub display_name: String,
    pub description: String,
    pub offering_type: Option<OfferingType>,
    /// Empty = the offering's own code.
    pub family: String,
    pub product_codes: Vec<String>,
    pub prices: Vec<MoneyDraft>,
    pub billing_interval: Option<BillingInterval>,
    /// `None` = ANNIVERSARY.
    pub billing_alignment: Option<BillingAlignment>,
    pub trial_days: i32,
    pub bundled_offering_codes: Vec<String>,
    pub components: Vec<ComponentDraft>,
    /// `None` = ACTIVE.
    pub status: Option<OfferingStatus>,
    pub provider_refs: BTreeMap<String, String>,
}

/// Every field of an offering. Read it through [`Offering`]; build one only
/// from storage, through [`Offering::restore`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferingRecord {
    pub id: OfferingId,
    pub code: Code,
    pub display_name: String,
    pub description: String,
    pub offering_type: OfferingType,
    pub family: Code,
    pub product_codes: Vec<Code>,
    pub prices: PriceList,
    pub billing_interval: BillingInterval,
    pub billing_alignment: BillingAlignment,
    pub trial_days: u16,
    pub bundled_offering_codes: Vec<Code>,
    pub components: Vec<Component>,
    pub status: OfferingStatus,
    pub provider_refs: BTreeMap<String, String>,
    /// Set once the first subscription uses the offering; prices are frozen
    /// from then on.
    pub has_subscriptions: bool,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// A valid offering. Fields are readable through `Deref`; changes go through
/// [`Offering::update`], which keeps the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offering(OfferingRecord);

impl Deref for Offering {
    type Target = OfferingRecord;

    fn deref(&self) -> &OfferingRecord {
        &self.0
    }
}

/// A change to an offering; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct OfferingUpdate {
    pub display_name: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` = the client asked for the status but left it unspecified.
    pub status: Option<Option<OfferingStatus>>,
    pub provider_refs: Option<BTreeMap<String, String>>,
    pub prices: Option<Vec<MoneyDraft>>,
}

impl Offering {
    /// Builds a new offering from a draft.
    ///
    /// `existing_products` must hold every product code of the catalog that the
    /// draft names (more is fine); `bundles` must hold every offering the draft
    /// bundles, and what those bundle in turn.
    pub fn create(
        draft: &OfferingDraft,
        existing_products: &HashSet<Code>,
        bundles: &BundleGraph,
        id: OfferingId,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        let mut violations = Violations::new();
        let code = violations.check("code", Code::parse(&draft.code));
        let display_name = violations.check("display_name", text::display_name(&draft.display_name));
        let description = violations.check("description", text::description(&draft.description));
        let family = if draft.family.is_empty() {
            code.clone()
        } else {
            violations.check("family", Code::parse(&draft.family))
        };
        if draft.offering_type.is_none() {
            violations.push("type", Reason::FieldInvalid, "must be PACKAGE, APP or ADDON");
        }
        if draft.billing_interval.is_none() {
            violations.push("billing_interval", Reason::FieldInvalid, "must be MONTH or YEAR");
        }
        let trial_days = parse_trial_days(draft.trial_days, &mut violations);
        let status = draft.status.unwrap_or(OfferingStatus::Active);
        if status == OfferingStatus::Retired {
            violations.push("status", Reason::FieldInvalid, "a new offering is ACTIVE or HIDDEN");
        }
        let product_codes = parse_product_codes(&draft.product_codes, existing_products, &mut violations);
        let prices = violations.check("prices", parse_offering_prices(&draft.prices));
        let components = parse_components(&draft.components, prices.as_ref(), &mut violations);
        let bundled_offering_codes =
            parse_codes("bundled_offering_codes", &draft.bundled_offering_codes, &mut violations);
        if let (Some(code), Some(family)) = (&code, &family) {
            bundles.check_new(code, family, &bundled_offering_codes, &mut violations);
        }
        let bundled_offering_codes = bundled_offering_codes.into_iter().map(|(_, code)| code).collect();
        check_provider_refs(&draft.provider_refs, &mut violations);

        let (
            Some(code),
            Some(display_name),
            Some(description),
            Some(family),
            Some(offering_type),
            Some(billing_interval),
            Some(prices),
        ) = (
            code,
            display_name,
            description,
            family,
            draft.offering_type,
            draft.billing_interval,
            prices,
        )
        else {
            return Err(violations.into_error());
        };
        violations.into_result()?;
        Ok(Offering(OfferingRecord {
            id,
            code,
            display_name,
            description,
            offering_type,
            family,
            product_codes,
            prices,
            billing_interval,
            billing_alignment: draft.billing_alignment.unwrap_or(BillingAlignment::Anniversary),
            trial_days,
            bundled_offering_codes,
            components,
            status,
            provider_refs: draft.provider_refs.clone(),
            has_subscriptions: false,
            create_time: now,
            update_time: now,
        }))
    }

    /// Rebuilds an offering this service stored; the caller vouches that it
    /// was valid when written.
    pub fn restore(record: OfferingRecord) -> Self {
        Offering(record)
    }

    pub fn into_record(self) -> OfferingRecord {
        self.0
    }

    /// Applies an update. Prices may change only while no subscription uses
    /// the offering, and must keep pricing the components' currencies.
    pub fn update(&self, update: &OfferingUpdate, now: DateTime<Utc>) -> Result<Self, DomainError> {
        let mut record = self.0.clone();
        let mut violations = Violations::new();
        if let Some(display_name) = &update.display_name
            && let Some(display_name) = violations.check("display_name", text::display_name(display_name))
        {
            record.display_name = display_name;
        }
        if let Some(description) = &update.description
            && let Some(description) = violations.check("description", text::description(description))
        {
            record.description = description;
        }
        if let Some(provider_refs) = &update.provider_refs {
            check_provider_refs(provider_refs, &mut violations);
            record.provider_refs = provider_refs.clone();
        }
        if let Some(prices) = &update.prices
            && let Some(prices) = violations.check("prices", parse_offering_prices(prices))
        {
            if let Some(component) = record
                .components
                .iter()
                .find(|c| !c.unit_prices.same_currencies(&prices))
            {
                violations.push(
                    "prices",
                    Reason::PriceInvalid,
                    format!(
                        "component {} is priced in {}; the offering must price the same currencies",
                        component.code,
                        component.unit_prices.currency_codes()
                    ),
                );
            }
            record.prices = prices;
        }
        let requested_status = match update.status {
            Some(None) => {
                violations.push("status", Reason::FieldInvalid, "must be ACTIVE, HIDDEN or RETIRED");
                None
            }
            Some(Some(status)) => Some(status),
            None => None,
        };
        violations.into_result()?;

        if update.prices.is_some() && self.has_subscriptions && record.prices != self.prices {
            return Err(DomainError::new(
                Reason::OfferingPricesImmutable,
                format!(
                    "offering {} has subscriptions, so its prices cannot change; publish a new offering instead",
                    self.code
                ),
            ));
        }
        if let Some(status) = requested_status {
            if !self.status.can_become(status) {
                return Err(DomainError::new(
                    Reason::OfferingStatusTransitionInvalid,
                    format!(
                        "offering {} cannot go from {} to {}",
                        self.code,
                        self.status.as_str(),
                        status.as_str()
                    ),
                ));
            }
            record.status = status;
        }
        record.update_time = now;
        Ok(Offering(record))
    }
}

fn parse_trial_days(trial_days: i32, violations: &mut Violations) -> u16 {
    match u16::try_from(trial_days) {
        Ok(days) if trial_days <= MAX_TRIAL_DAYS => days,
        _ => {
            violations.push(
                "trial_days",
                Reason::FieldInvalid,
                format!("must be between 0 and {MAX_TRIAL_DAYS}"),
            );
            0
        }
    }
}

/// Offering prices: a valid list that is free everywhere or nowhere.
fn parse_offering_prices(drafts: &[MoneyDraft]) -> Result<PriceList, DomainError> {
    let prices = PriceList::parse(drafts)?;
    let free_count = prices.as_slice().iter().filter(|price| price.is_zero()).count();
    if free_count != 0 && free_count != prices.as_slice().len() {
        return Err(DomainError::field(
            "",
            Reason::PriceInvalid,
            "an offering is free in every currency or in none",
        ));
    }
    Ok(prices)
}

/// The valid codes of a list field with their positions in it; a bad or
/// repeated entry is recorded as `field[i]` and left out.
fn parse_codes(field: &str, texts: &[String], violations: &mut Violations) -> Vec<(usize, Code)> {
    let mut codes: Vec<(usize, Code)> = Vec::with_capacity(texts.len());
    for (index, text) in texts.iter().enumerate() {
        let path = format!("{field}[{index}]");
        let Some(code) = violations.check(&path, Code::parse(text)) else {
            continue;
        };
        if codes.iter().any(|(_, seen)| seen == &code) {
            violations.push(path, Reason::FieldInvalid, format!("{code} is listed twice"));
            continue;
        }
        codes.push((index, code));
    }
    codes
}

fn parse_product_codes(texts: &[String], existing: &HashSet<Code>, violations: &mut Violations) -> Vec<Code> {
    let codes = parse_codes("product_codes", texts, violations);
    for (index, code) in &codes {
        if !existing.contains(code) {
            violations.push(
                format!("product_codes[{index}]"),
                Reason::ProductNotFound,
                format!("no product has code {code}"),
            );
        }
    }
    codes.into_iter().map(|(_, code)| code).collect()
}

fn parse_components(
    drafts: &[ComponentDraft],
    prices: Option<&PriceList>,
    violations: &mut Violations,
) -> Vec<Component> {
    let mut components: Vec<Component> = Vec::with_capacity(drafts.len());
    for (index, draft) in drafts.iter().enumerate() {
        let path = format!("components[{index}]");
        let code = violations.check(&format!("{path}.code"), Code::parse(&draft.code));
        if let Some(code) = &code
            && components.iter().any(|component| &component.code == code)
        {
            violations.push(
                format!("{path}.code"),
                Reason::DuplicateComponents,
                format!("component {code} is defined twice"),
            );
        }
        let display_name = violations.check(&format!("{path}.display_name"), text::display_name(&draft.display_name));
        let unit_prices = violations.check(&format!("{path}.unit_prices"), PriceList::parse(&draft.unit_prices));
        if let (Some(unit_prices), Some(prices)) = (&unit_prices, prices)
            && !unit_prices.same_currencies(prices)
        {
            violations.push(
                format!("{path}.unit_prices"),
                Reason::PriceInvalid,
                format!(
                    "must price exactly the offering's currencies ({}), not {}",
                    prices.currency_codes(),
                    unit_prices.currency_codes()
                ),
            );
        }
        if let (Some(code), Some(display_name), Some(unit_prices)) = (code, display_name, unit_prices) {
            components.push(Component {
                code,
                display_name,
                unit_prices,
            });
        }
    }
    components
}

fn check_provider_refs(provider_refs: &BTreeMap<String, String>, violations: &mut Violations) {
    if provider_refs.len() > MAX_PROVIDER_REFS {
        violations.push(
            "provider_refs",
            Reason::FieldInvalid,
            format!("at most {MAX_PROVIDER_REFS} references"),
        );
    }
    for (key, value) in provider_refs {
        let path = format!("provider_refs[{key:?}]");
        if let Err(error) = Code::parse(key) {
            violations.push(path.clone(), Reason::FieldInvalid, format!("key: {}", error.message()));
        }
        if value.is_empty() || value.len() > MAX_PROVIDER_REF_VALUE_LEN || value.chars().any(char::is_control) {
            violations.push(
                path,
                Reason::FieldInvalid,
                format!("value must be 1–{MAX_PROVIDER_REF_VALUE_LEN} characters without control characters"),
            );
        }
    }
}

#[cfg(test)]
#[path = "offering_tests.rs"]
mod tests;
