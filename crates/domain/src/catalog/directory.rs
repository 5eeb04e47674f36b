//! Directory offerings: which offerings a directory (a partner's storefront)
//! sells, and which it gives every new business by default.

use chrono::{DateTime, Utc};

use super::offering::{Offering, OfferingStatus};
use crate::error::{DomainError, Reason};
use crate::ids::OfferingId;
use crate::text::{Code, ExternalId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryOffering {
    pub directory_id: ExternalId,
    pub offering_id: OfferingId,
    pub offering_code: Code,
    pub is_default: bool,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
}

/// Assigns `offering` to a directory, or updates an existing assignment.
/// Assigning it again as it is changes nothing (its `update_time` stays).
///
/// `current` is the existing assignment of this offering, if any;
/// `directory_defaults` are the directory's current default offerings. A
/// default is given away free, so it must be free, and there is at most one
/// per family (a business holds one subscription per family).
pub fn assign_offering(
    directory_id: ExternalId,
    offering: &Offering,
    is_default: bool,
    current: Option<&DirectoryOffering>,
    directory_defaults: &[Offering],
    now: DateTime<Utc>,
) -> Result<DirectoryOffering, DomainError> {
    if offering.status == OfferingStatus::Retired {
        return Err(DomainError::new(
            Reason::OfferingRetired,
            format!("offering {} is retired and cannot be assigned", offering.code),
        ));
    }
    if is_default {
        if !offering.prices.is_free() {
            return Err(DomainError::new(
                Reason::DefaultOfferingNotFree,
                format!(
                    "offering {} is not free; default offerings are given to every business",
                    offering.code
                ),
            ));
        }
        if let Some(other) = directory_defaults
            .iter()
            .find(|other| other.family == offering.family && other.id != offering.id)
        {
            return Err(DomainError::new(
                Reason::DefaultOfferingConflict,
                format!(
                    "{} is already the default of family {} in directory {directory_id}; assign it with is_default=false first",
                    other.code, offering.family
                ),
            ));
        }
    }
    if let Some(existing) = current.filter(|existing| existing.is_default == is_default) {
        return Ok(existing.clone());
    }
    Ok(DirectoryOffering {
        directory_id,
        offering_id: offering.id.clone(),
        offering_code: offering.code.clone(),
        is_default,
        create_time: current.map_or(now, |existing| existing.create_time),
        update_time: now,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::catalog::{BillingInterval, BundleGraph, MoneyDraft, OfferingDraft, OfferingType, OfferingUpdate};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap()
    }

    fn offering(code: &str, family: &str, price: i64, uuid: u128) -> Offering {
        let draft = OfferingDraft {
            code: code.into(),
            display_name: code.into(),
            offering_type: Some(OfferingType::Package),
            family: family.into(),
            prices: vec![MoneyDraft::new("USD", price)],
            billing_interval: Some(BillingInterval::Month),
            provider_refs: BTreeMap::new(),
            ..OfferingDraft::default()
        };
        let id = OfferingId::from_uuid(Uuid::from_u128(uuid));
        Offering::create(&draft, &HashSet::new(), &BundleGraph::default(), id, now()).unwrap()
    }

    fn directory() -> ExternalId {
        ExternalId::parse("demo").unwrap()
    }

    #[test]
    fn a_free_offering_becomes_the_default() {
        let free = offering("free", "package", 0, 1);
        let assignment = assign_offering(directory(), &free, true, None, &[], now()).unwrap();
        assert!(assignment.is_default);
        assert_eq!(assignment.offering_code, free.code);
    }

    #[test]
    fn a_paid_offering_cannot_be_a_default() {
        let paid = offering("pro", "package", 3000, 1);
        let error = assign_offering(directory(), &paid, true, None, &[], now()).unwrap_err();
        assert_eq!(error.reason(), Reason::DefaultOfferingNotFree);
        assert!(assign_offering(directory(), &paid, false, None, &[], now()).is_ok());
    }

    #[test]
    fn one_default_per_family() {
        let free = offering("free", "package", 0, 1);
        let starter = offering("starter", "package", 0, 2);
        let bookings = offering("bookings-free", "bookings", 0, 3);
        let defaults = [free.clone()];
        let error = assign_offering(directory(), &starter, true, None, &defaults, now()).unwrap_err();
        assert_eq!(error.reason(), Reason::DefaultOfferingConflict);
        assert!(assign_offering(directory(), &bookings, true, None, &defaults, now()).is_ok());
        // Re-assigning the current default as default is fine.
        assert!(assign_offering(directory(), &free, true, None, &defaults, now()).is_ok());
    }

    #[test]
    fn retired_offerings_are_not_assigned() {
        let retire = OfferingUpdate {
            status: Some(Some(OfferingStatus::Retired)),
            ..OfferingUpdate::default()
        };
        let retired = offering("old", "package", 0, 1).update(&retire, now()).unwrap();
        let error = assign_offering(directory(), &retired, false, None, &[], now()).unwrap_err();
        assert_eq!(error.reason(), Reason::OfferingRetired);
    }

    #[test]
    fn reassignment_keeps_the_creation_time() {
        let free = offering("free", "package", 0, 1);
        let first = assign_offering(directory(), &free, false, None, &[], now()).unwrap();
        let later = now() + chrono::Duration::days(1);
        let second = assign_offering(directory(), &free, true, Some(&first), &[], later).unwrap();
        assert_eq!(second.create_time, now());
        assert_eq!(second.update_time, later);
        let again = assign_offering(
            directory(),
            &free,
            true,
            Some(&second),
            &[],
            later + chrono::Duration::days(1),
        );
        assert_eq!(again.unwrap(), second, "the same assignment again changes nothing");
    }
}
