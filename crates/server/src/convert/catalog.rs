use std::collections::BTreeMap;

use billing_app::PageParams;
use billing_domain::catalog::{
    BillingAlignment, BillingInterval, Component, ComponentDraft, Coupon, CouponDraft, CouponDuration,
    CouponDurationKind, DirectoryOffering, Discount, MoneyDraft, Offering, OfferingDraft, OfferingStatus, OfferingType,
    OfferingUpdate, Product, ProductDraft,
};
use billing_domain::{DomainError, Money, Reason};
use billing_proto::v1 as pb;

use super::{FromProto, IntoProto, timestamp_to_proto};

impl IntoProto<pb::Money> for Money {
    fn into_proto(self) -> pb::Money {
        pb::Money {
            currency_code: self.currency().code().to_owned(),
            amount_minor: self.amount_minor(),
        }
    }
}

impl FromProto<pb::Money> for MoneyDraft {
    fn from_proto(proto: pb::Money) -> Self {
        let pb::Money {
            currency_code,
            amount_minor,
        } = proto;
        MoneyDraft {
            currency_code,
            amount_minor,
        }
    }
}

fn money_drafts(prices: Vec<pb::Money>) -> Vec<MoneyDraft> {
    prices.into_iter().map(MoneyDraft::from_proto).collect()
}

fn money_list(prices: &billing_domain::catalog::PriceList) -> Vec<pb::Money> {
    prices.as_slice().iter().map(|price| price.into_proto()).collect()
}

/// Paging fields of any list request.
pub fn page_params(page_size: i32, page_token: String) -> PageParams {
    PageParams { page_size, page_token }
}

fn offering_type_from_proto(value: i32) -> Option<OfferingType> {
    match pb::OfferingType::try_from(value).ok()? {
        pb::OfferingType::Unspecified => None,
        pb::OfferingType::Package => Some(OfferingType::Package),
        pb::OfferingType::App => Some(OfferingType::App),
        pb::OfferingType::Addon => Some(OfferingType::Addon),
    }
}

fn offering_type_to_proto(value: OfferingType) -> pb::OfferingType {
    match value {
        OfferingType::Package => pb::OfferingType::Package,
        OfferingType::App => pb::OfferingType::App,
        OfferingType::Addon => pb::OfferingType::Addon,
    }
}

fn interval_from_proto(value: i32) -> Option<BillingInterval> {
    match pb::BillingInterval::try_from(value).ok()? {
        pb::BillingInterval::Unspecified => None,
        pb::BillingInterval::Month => Some(BillingInterval::Month),
        pb::BillingInterval::Year => Some(BillingInterval::Year),
    }
}

fn interval_to_proto(value: BillingInterval) -> pb::BillingInterval {
    match value {
        BillingInterval::Month => pb::BillingInterval::Month,
        BillingInterval::Year => pb::BillingInterval::Year,
    }
}

/// Unspecified means ANNIVERSARY; an unknown number is passed on as such so
/// the default does not hide a client bug.
fn alignment_from_proto(value: i32) -> Result<Option<BillingAlignment>, ()> {
    match pb::BillingAlignment::try_from(value) {
        Ok(pb::BillingAlignment::Unspecified) => Ok(None),
        Ok(pb::BillingAlignment::Anniversary) => Ok(Some(BillingAlignment::Anniversary)),
        Ok(pb::BillingAlignment::Calendar) => Ok(Some(BillingAlignment::Calendar)),
        Err(_) => Err(()),
    }
}

fn alignment_to_proto(value: BillingAlignment) -> pb::BillingAlignment {
    match value {
        BillingAlignment::Anniversary => pb::BillingAlignment::Anniversary,
        BillingAlignment::Calendar => pb::BillingAlignment::Calendar,
    }
}

fn status_from_proto(value: i32) -> Option<OfferingStatus> {
    match pb::OfferingStatus::try_from(value).ok()? {
        pb::OfferingStatus::Unspecified => None,
        pb::OfferingStatus::Active => Some(OfferingStatus::Active),
        pb::OfferingStatus::Hidden => Some(OfferingStatus::Hidden),
        pb::OfferingStatus::Retired => Some(OfferingStatus::Retired),
    }
}

fn status_to_proto(value: OfferingStatus) -> pb::OfferingStatus {
    match value {
        OfferingStatus::Active => pb::OfferingStatus::Active,
        OfferingStatus::Hidden => pb::OfferingStatus::Hidden,
        OfferingStatus::Retired => pb::OfferingStatus::Retired,
    }
}

impl FromProto<pb::CreateProductRequest> for ProductDraft {
    fn from_proto(proto: pb::CreateProductRequest) -> Self {
        let pb::CreateProductRequest {
            code,
            display_name,
            description,
        } = proto;
        ProductDraft {
            code,
            display_name,
            description,
        }
    }
}

impl IntoProto<pb::Product> for Product {
    fn into_proto(self) -> pb::Product {
        pb::Product {
            id: self.id.to_string(),
            code: self.code.to_string(),
            display_name: self.display_name,
            description: self.description,
            create_time: Some(timestamp_to_proto(self.create_time)),
        }
    }
}

/// The draft of a new offering; output-only fields are ignored. An unknown
/// alignment number is reported here because the draft cannot carry it.
pub fn offering_draft_from_proto(proto: pb::Offering) -> Result<OfferingDraft, DomainError> {
    let pb::Offering {
        id: _,
        code,
        display_name,
        description,
        r#type,
        family,
        product_codes,
        prices,
        billing_interval,
        billing_alignment,
        trial_days,
        bundled_offering_codes,
        components,
        status,
        provider_refs,
        create_time: _,
        update_time: _,
    } = proto;
    let billing_alignment = alignment_from_proto(billing_alignment).map_err(|()| {
        DomainError::field(
            "billing_alignment",
            Reason::FieldInvalid,
            "must be ANNIVERSARY or CALENDAR",
        )
    })?;
    Ok(OfferingDraft {
        code,
        display_name,
        description,
        offering_type: offering_type_from_proto(r#type),
        family,
        product_codes,
        prices: money_drafts(prices),
        billing_interval: interval_from_proto(billing_interval),
        billing_alignment,
        trial_days,
        bundled_offering_codes,
        components: components
            .into_iter()
            .map(|component| {
                let pb::Component {
                    code,
                    display_name,
                    unit_prices,
                } = component;
                ComponentDraft {
                    code,
                    display_name,
                    unit_prices: money_drafts(unit_prices),
                }
            })
            .collect(),
        status: status_from_proto(status),
        provider_refs: provider_refs.into_iter().collect(),
    })
}

impl IntoProto<pb::Offering> for Offering {
    fn into_proto(self) -> pb::Offering {
        let record = self.into_record();
        pb::Offering {
            id: record.id.to_string(),
            code: record.code.to_string(),
            display_name: record.display_name,
            description: record.description,
            r#type: offering_type_to_proto(record.offering_type).into(),
            family: record.family.to_string(),
            product_codes: record.product_codes.iter().map(ToString::to_string).collect(),
            prices: money_list(&record.prices),
            billing_interval: interval_to_proto(record.billing_interval).into(),
            billing_alignment: alignment_to_proto(record.billing_alignment).into(),
            trial_days: i32::from(record.trial_days),
            bundled_offering_codes: record.bundled_offering_codes.iter().map(ToString::to_string).collect(),
            components: record.components.into_iter().map(IntoProto::into_proto).collect(),
            status: status_to_proto(record.status).into(),
            provider_refs: record.provider_refs.into_iter().collect(),
            create_time: Some(timestamp_to_proto(record.create_time)),
            update_time: Some(timestamp_to_proto(record.update_time)),
        }
    }
}

impl IntoProto<pb::Component> for Component {
    fn into_proto(self) -> pb::Component {
        pb::Component {
            code: self.code.to_string(),
            display_name: self.display_name,
            unit_prices: money_list(&self.unit_prices),
        }
    }
}

/// The paths `UpdateOffering` accepts in its `update_mask`.
const UPDATABLE_OFFERING_PATHS: &[&str] = &["display_name", "description", "status", "provider_refs", "prices"];

/// The change an `UpdateOffering` asks for: only the fields its mask names.
pub fn offering_update_from_proto(
    offering: Option<pb::Offering>,
    update_mask: Option<prost_types::FieldMask>,
) -> Result<OfferingUpdate, DomainError> {
    let paths = update_mask.map(|mask| mask.paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(DomainError::field(
            "update_mask",
            Reason::UpdateMaskInvalid,
            format!("name the fields to update: {}", UPDATABLE_OFFERING_PATHS.join(", ")),
        ));
    }
    if let Some(path) = paths
        .iter()
        .find(|path| !UPDATABLE_OFFERING_PATHS.contains(&path.as_str()))
    {
        return Err(DomainError::field(
            "update_mask",
            Reason::UpdateMaskInvalid,
            format!(
                "{path:?} cannot be updated; updatable: {} (publish a new offering for other changes)",
                UPDATABLE_OFFERING_PATHS.join(", ")
            ),
        ));
    }
    let pb::Offering {
        display_name,
        description,
        status,
        provider_refs,
        prices,
        ..
    } = offering.unwrap_or_default();
    let wants = |field: &str| paths.iter().any(|path| path == field);
    Ok(OfferingUpdate {
        display_name: wants("display_name").then_some(display_name),
        description: wants("description").then_some(description),
        status: wants("status").then(|| status_from_proto(status)),
        provider_refs: wants("provider_refs").then(|| provider_refs.into_iter().collect::<BTreeMap<_, _>>()),
        prices: wants("prices").then(|| money_drafts(prices)),
    })
}

impl IntoProto<pb::DirectoryOffering> for DirectoryOffering {
    fn into_proto(self) -> pb::DirectoryOffering {
        pb::DirectoryOffering {
            directory_id: self.directory_id.to_string(),
            offering_code: self.offering_code.to_string(),
            offering_id: self.offering_id.to_string(),
            is_default: self.is_default,
            create_time: Some(timestamp_to_proto(self.create_time)),
            update_time: Some(timestamp_to_proto(self.update_time)),
        }
    }
}

/// The draft of a new coupon; output-only fields are ignored.
pub fn coupon_draft_from_proto(proto: pb::Coupon) -> Result<CouponDraft, DomainError> {
    let pb::Coupon {
        id: _,
        code,
        discount,
        duration,
        duration_periods,
        max_redemptions,
        times_redeemed: _,
        redeem_by,
        applies_to_offering_codes,
        create_time: _,
    } = proto;
    let (percent_off, amount_off) = match discount {
        Some(pb::coupon::Discount::PercentOff(bps)) => (Some(bps), None),
        Some(pb::coupon::Discount::AmountOff(money)) => (None, Some(MoneyDraft::from_proto(money))),
        None => (None, None),
    };
    let duration = match pb::CouponDuration::try_from(duration) {
        Ok(pb::CouponDuration::Once) => Some(CouponDurationKind::Once),
        Ok(pb::CouponDuration::Repeating) => Some(CouponDurationKind::Repeating),
        Ok(pb::CouponDuration::Forever) => Some(CouponDurationKind::Forever),
        Ok(pb::CouponDuration::Unspecified) | Err(_) => None,
    };
    let redeem_by = redeem_by
        .map(|timestamp| super::timestamp_from_proto("redeem_by", timestamp))
        .transpose()?;
    Ok(CouponDraft {
        code,
        percent_off,
        amount_off,
        duration,
        duration_periods,
        max_redemptions,
        redeem_by,
        applies_to_offering_codes,
    })
}

impl IntoProto<pb::Coupon> for Coupon {
    fn into_proto(self) -> pb::Coupon {
        let discount = match self.discount {
            Discount::PercentOff(bps) => pb::coupon::Discount::PercentOff(i32::from(bps)),
            Discount::AmountOff(money) => pb::coupon::Discount::AmountOff(money.into_proto()),
        };
        let (duration, duration_periods) = match self.duration {
            CouponDuration::Once => (pb::CouponDuration::Once, 0),
            CouponDuration::Repeating { periods } => (pb::CouponDuration::Repeating, i32::from(periods)),
            CouponDuration::Forever => (pb::CouponDuration::Forever, 0),
        };
        pb::Coupon {
            id: self.id.to_string(),
            code: self.code.to_string(),
            discount: Some(discount),
            duration: duration.into(),
            duration_periods,
            max_redemptions: self
                .max_redemptions
                .map_or(0, |limit| i32::try_from(limit).unwrap_or(i32::MAX)),
            times_redeemed: i32::try_from(self.times_redeemed).unwrap_or(i32::MAX),
            redeem_by: self.redeem_by.map(timestamp_to_proto),
            applies_to_offering_codes: self.applies_to_offering_codes.iter().map(ToString::to_string).collect(),
            create_time: Some(timestamp_to_proto(self.create_time)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_masks_are_checked() {
        let empty = offering_update_from_proto(None, None).unwrap_err();
        assert_eq!(empty.reason(), Reason::UpdateMaskInvalid);
        let mask = |paths: &[&str]| {
            Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            })
        };
        let code = offering_update_from_proto(None, mask(&["code"])).unwrap_err();
        assert_eq!(code.reason(), Reason::UpdateMaskInvalid);
        let offering = pb::Offering {
            display_name: "New".into(),
            description: "ignored".into(),
            status: pb::OfferingStatus::Hidden.into(),
            ..pb::Offering::default()
        };
        let update = offering_update_from_proto(Some(offering), mask(&["display_name", "status"])).unwrap();
        assert_eq!(update.display_name.as_deref(), Some("New"));
        assert_eq!(update.description, None);
        assert_eq!(update.status, Some(Some(OfferingStatus::Hidden)));
        assert!(update.prices.is_none());
    }

    #[test]
    fn an_unknown_enum_number_is_not_a_value() {
        assert_eq!(offering_type_from_proto(42), None);
        assert!(alignment_from_proto(42).is_err());
        assert_eq!(alignment_from_proto(0), Ok(None));
    }
}
