use billing_app::OfferingRef;
use billing_app::subscriptions::{ListFilter, PurchaseRequest};
use billing_domain::catalog::OfferingType;
use billing_domain::subscription::{
    Business, CancelTiming, ChangeTiming, ComponentQuantityDraft, Entitlement, PaymentStatus, PaymentType,
    SubscriberStatus, Subscription, SubscriptionState,
};
use billing_domain::{DomainError, Reason};
use billing_proto::v1 as pb;
use billing_storage::AuditEntry;

use super::{IntoProto, timestamp_to_proto};

fn offering_type_to_proto(value: OfferingType) -> pb::OfferingType {
    match value {
        OfferingType::Package => pb::OfferingType::Package,
        OfferingType::App => pb::OfferingType::App,
        OfferingType::Addon => pb::OfferingType::Addon,
    }
}

fn state_to_proto(state: SubscriptionState) -> pb::SubscriptionState {
    match state {
        SubscriptionState::Purchased => pb::SubscriptionState::Purchased,
        SubscriptionState::Canceled => pb::SubscriptionState::Canceled,
        SubscriptionState::Expired => pb::SubscriptionState::Expired,
    }
}

/// The states of a list filter; unknown or unspecified values are refused.
pub fn states_from_proto(values: &[i32]) -> Result<Vec<SubscriptionState>, DomainError> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| match pb::SubscriptionState::try_from(*value) {
            Ok(pb::SubscriptionState::Purchased) => Ok(SubscriptionState::Purchased),
            Ok(pb::SubscriptionState::Canceled) => Ok(SubscriptionState::Canceled),
            Ok(pb::SubscriptionState::Expired) => Ok(SubscriptionState::Expired),
            Ok(pb::SubscriptionState::Unspecified) | Err(_) => Err(DomainError::field(
                format!("states[{index}]"),
                Reason::FieldInvalid,
                "must be PURCHASED, CANCELED or EXPIRED",
            )),
        })
        .collect()
}

pub fn change_timing_from_proto(value: i32) -> Result<ChangeTiming, DomainError> {
    match pb::ChangeTiming::try_from(value) {
        Ok(pb::ChangeTiming::Unspecified) => Ok(ChangeTiming::Default),
        Ok(pb::ChangeTiming::Immediate) => Ok(ChangeTiming::Immediate),
        Ok(pb::ChangeTiming::EndOfPeriod) => Ok(ChangeTiming::EndOfPeriod),
        Err(_) => Err(DomainError::field("timing", Reason::FieldInvalid, "unknown timing")),
    }
}

/// Whether to prorate.
pub fn proration_from_proto(value: i32) -> Result<bool, DomainError> {
    match pb::ProrationBehavior::try_from(value) {
        Ok(pb::ProrationBehavior::Unspecified) => Ok(true),
        Ok(pb::ProrationBehavior::None) => Ok(false),
        Err(_) => Err(DomainError::field(
            "proration",
            Reason::FieldInvalid,
            "unknown proration behavior",
        )),
    }
}

pub fn cancel_timing_from_proto(value: i32) -> Result<CancelTiming, DomainError> {
    match pb::CancelTiming::try_from(value) {
        Ok(pb::CancelTiming::Unspecified) => Ok(CancelTiming::EndOfPeriod),
        Ok(pb::CancelTiming::Immediate) => Ok(CancelTiming::Immediate),
        Err(_) => Err(DomainError::field("timing", Reason::FieldInvalid, "unknown timing")),
    }
}

pub fn components_from_proto(components: Vec<pb::ComponentQuantity>) -> Vec<ComponentQuantityDraft> {
    components
        .into_iter()
        .map(|component| {
            let pb::ComponentQuantity {
                component_code,
                quantity,
            } = component;
            ComponentQuantityDraft {
                component_code,
                quantity,
            }
        })
        .collect()
}

pub fn purchase_from_proto(request: pb::CreateSubscriptionRequest) -> PurchaseRequest {
    let pb::CreateSubscriptionRequest {
        request_id: _,
        business_id,
        buyer_id,
        offering,
        currency_code,
        components,
        coupon_code,
        sponsored,
    } = request;
    PurchaseRequest {
        business_id,
        buyer_id,
        offering: match offering {
            Some(pb::create_subscription_request::Offering::OfferingCode(code)) => OfferingRef::Code(code),
            Some(pb::create_subscription_request::Offering::OfferingId(id)) => OfferingRef::Id(id),
            None => OfferingRef::Missing,
        },
        currency_code,
        components: components_from_proto(components),
        coupon_code,
        sponsored,
    }
}

pub fn list_filter_from_proto(
    business_id: String,
    directory_id: String,
    states: &[i32],
    offering_code: String,
    active_only: bool,
) -> Result<ListFilter, DomainError> {
    Ok(ListFilter {
        business_id,
        directory_id,
        states: states_from_proto(states)?,
        offering_code,
        active_only,
    })
}

impl IntoProto<pb::Subscription> for Subscription {
    fn into_proto(self) -> pb::Subscription {
        let active = self.is_active();
        let etag = self.etag();
        pb::Subscription {
            id: self.id.to_string(),
            display_name: self.display_name,
            business_id: self.business_id.to_string(),
            buyer_id: self.buyer_id.to_string(),
            directory_id: self.directory_id.to_string(),
            offering_id: self.offering_id.to_string(),
            offering_code: self.offering_code.to_string(),
            offering_type: offering_type_to_proto(self.offering_type).into(),
            family: self.family.to_string(),
            state: state_to_proto(self.state).into(),
            active,
            payment_type: match self.payment_type {
                PaymentType::Free => pb::PaymentType::Free,
                PaymentType::Paid => pb::PaymentType::Paid,
                PaymentType::Bundled => pb::PaymentType::Bundled,
                PaymentType::Sponsored => pb::PaymentType::Sponsored,
            }
            .into(),
            purchase_price: Some(self.purchase_price.into_proto()),
            components: components_into_proto(self.components),
            coupon_code: self.coupon_code.map(|code| code.to_string()).unwrap_or_default(),
            trial_type: if self.trial_end_time.is_some() {
                pb::TrialType::Trial
            } else {
                pb::TrialType::NoTrial
            }
            .into(),
            trial_end_time: self.trial_end_time.map(timestamp_to_proto),
            current_period_start_time: Some(timestamp_to_proto(self.current_period.start_time())),
            current_period_end_time: Some(timestamp_to_proto(self.current_period.end_time())),
            cancellation_time: self.cancellation_time.map(timestamp_to_proto),
            expiration_time: self.expiration_time.map(timestamp_to_proto),
            auto_renew: self.auto_renew,
            bundled_from_subscription_id: self
                .bundled_from_subscription_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
            pending_change: self.pending_change.map(|change| pb::PendingChange {
                offering_code: change.offering_code.to_string(),
                effective_time: Some(timestamp_to_proto(change.effective_time)),
            }),
            payment_status: match self.payment_status {
                PaymentStatus::Ok => pb::PaymentStatus::Ok,
                PaymentStatus::PastDue => pb::PaymentStatus::PastDue,
                PaymentStatus::Incomplete => pb::PaymentStatus::Incomplete,
            }
            .into(),
            dunning: self.dunning.map(|dunning| pb::Dunning {
                attempt_count: i32::try_from(dunning.attempt_count).unwrap_or(i32::MAX),
                next_retry_time: dunning.next_retry_time.map(timestamp_to_proto),
                grace_end_time: Some(timestamp_to_proto(dunning.grace_end_time)),
            }),
            provider: self.provider.as_str().to_owned(),
            provider_subscription_id: self.provider_subscription_id.unwrap_or_default(),
            etag,
            create_time: Some(timestamp_to_proto(self.create_time)),
            update_time: Some(timestamp_to_proto(self.update_time)),
            billing_interval: match self.billing_interval {
                billing_domain::catalog::BillingInterval::Month => pb::BillingInterval::Month,
                billing_domain::catalog::BillingInterval::Year => pb::BillingInterval::Year,
            }
            .into(),
            cancel_reason: self.cancel_reason,
            held_change: self.held_change.map(|held| pb::HeldChange {
                invoice_id: held.invoice_id.to_string(),
                expire_time: Some(timestamp_to_proto(held.expire_time)),
                offering_code: held.plan.offering_code.to_string(),
                purchase_price: Some(held.plan.purchase_price.into_proto()),
                components: components_into_proto(held.plan.components),
            }),
        }
    }
}

fn components_into_proto(
    components: Vec<billing_domain::subscription::ComponentQuantity>,
) -> Vec<pb::ComponentQuantity> {
    components
        .into_iter()
        .map(|component| pb::ComponentQuantity {
            component_code: component.component_code.to_string(),
            quantity: i64::from(component.quantity),
        })
        .collect()
}

impl IntoProto<pb::Business> for Business {
    fn into_proto(self) -> pb::Business {
        pb::Business {
            business_id: self.business_id.to_string(),
            directory_id: self.directory_id.to_string(),
            create_time: Some(timestamp_to_proto(self.create_time)),
        }
    }
}

impl IntoProto<pb::CheckEntitlementResponse> for Entitlement {
    fn into_proto(self) -> pb::CheckEntitlementResponse {
        pb::CheckEntitlementResponse {
            entitled: self.entitled,
            subscription_id: self.subscription_id.map(|id| id.to_string()).unwrap_or_default(),
            offering_code: self.offering_code.map(|code| code.to_string()).unwrap_or_default(),
            subscriber_status: match self.subscriber_status {
                SubscriberStatus::FirstTime => pb::SubscriberStatus::FirstTime,
                SubscriberStatus::Returning => pb::SubscriberStatus::Returning,
                SubscriberStatus::Canceled => pb::SubscriberStatus::Canceled,
                SubscriberStatus::Lapsed => pb::SubscriberStatus::Lapsed,
                SubscriberStatus::NotSubscriber => pb::SubscriberStatus::NotSubscriber,
                SubscriberStatus::Sponsored => pb::SubscriberStatus::Sponsored,
            }
            .into(),
            in_grace_period: self.in_grace_period,
            expiration_time: self.expiration_time.map(timestamp_to_proto),
        }
    }
}

impl IntoProto<pb::SubscriptionHistoryEntry> for AuditEntry {
    fn into_proto(self) -> pb::SubscriptionHistoryEntry {
        pb::SubscriptionHistoryEntry {
            id: self.id,
            subscription_id: self.subscription_id.to_string(),
            action: self.action,
            actor: self.actor,
            request_id: self.request_id,
            description: self.detail,
            create_time: Some(timestamp_to_proto(self.create_time)),
        }
    }
}
