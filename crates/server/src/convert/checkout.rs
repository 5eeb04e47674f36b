use billing_domain::checkout::{CheckoutDraft, CheckoutKind, CheckoutSession, CheckoutStatus, Decision};
use billing_domain::subscription::ComponentQuantityDraft;
use billing_domain::{DomainError, Reason};
use billing_proto::v1 as pb;

use super::{IntoProto, components_from_proto, timestamp_to_proto};

pub fn checkout_draft_from_proto(request: pb::CreateCheckoutSessionRequest) -> CheckoutDraft {
    let pb::CreateCheckoutSessionRequest {
        request_id: _,
        business_id,
        buyer_id,
        kind,
        offering_code,
        components,
        subscription_id,
        currency_code,
        coupon_code,
        return_url,
    } = request;
    let kind = match pb::CheckoutKind::try_from(kind) {
        Ok(pb::CheckoutKind::NewSubscription) => Some(CheckoutKind::NewSubscription),
        Ok(pb::CheckoutKind::UpdateSubscription) => Some(CheckoutKind::UpdateSubscription),
        Ok(pb::CheckoutKind::Unspecified) | Err(_) => None,
    };
    CheckoutDraft {
        business_id,
        buyer_id,
        kind,
        offering_code,
        components: components_from_proto(components),
        subscription_id,
        currency_code,
        coupon_code,
        return_url,
    }
}

pub fn decision_from_proto(value: i32) -> Result<Decision, DomainError> {
    match pb::CheckoutDecision::try_from(value) {
        Ok(pb::CheckoutDecision::Accept) => Ok(Decision::Accept),
        Ok(pb::CheckoutDecision::Reject) => Ok(Decision::Reject),
        Ok(pb::CheckoutDecision::Unspecified) | Err(_) => Err(DomainError::field(
            "decision",
            Reason::FieldInvalid,
            "must be ACCEPT or REJECT",
        )),
    }
}

fn components_to_proto(components: &[ComponentQuantityDraft]) -> Vec<pb::ComponentQuantity> {
    components
        .iter()
        .map(|component| pb::ComponentQuantity {
            component_code: component.component_code.clone(),
            quantity: component.quantity,
        })
        .collect()
}

impl IntoProto<pb::CheckoutSession> for CheckoutSession {
    fn into_proto(self) -> pb::CheckoutSession {
        let kind = match self.order.kind() {
            CheckoutKind::NewSubscription => pb::CheckoutKind::NewSubscription,
            CheckoutKind::UpdateSubscription => pb::CheckoutKind::UpdateSubscription,
        };
        let status = match self.status {
            CheckoutStatus::Open => pb::CheckoutSessionStatus::Open,
            CheckoutStatus::Pending => pb::CheckoutSessionStatus::Pending,
            CheckoutStatus::Completed => pb::CheckoutSessionStatus::Completed,
            CheckoutStatus::Rejected => pb::CheckoutSessionStatus::Rejected,
            CheckoutStatus::Failed => pb::CheckoutSessionStatus::Failed,
            CheckoutStatus::Expired => pb::CheckoutSessionStatus::Expired,
        };
        let (error_reason, error_message) = self
            .failure
            .map(|failure| (failure.reason, failure.message))
            .unwrap_or_default();
        pb::CheckoutSession {
            id: self.id.to_string(),
            business_id: self.business_id.to_string(),
            buyer_id: self.buyer_id.to_string(),
            kind: kind.into(),
            offering_code: self.order.offering_code().map(ToString::to_string).unwrap_or_default(),
            components: components_to_proto(self.order.components()),
            subscription_id: self
                .order
                .subscription_id()
                .map(ToString::to_string)
                .unwrap_or_default(),
            currency_code: self.order.currency_code().unwrap_or_default().to_owned(),
            coupon_code: self.order.coupon_code().map(ToString::to_string).unwrap_or_default(),
            return_url: self.return_url.as_str().to_owned(),
            status: status.into(),
            result_subscription_id: self.result_subscription_id.map(|id| id.to_string()).unwrap_or_default(),
            error_reason,
            error_message,
            create_time: Some(timestamp_to_proto(self.create_time)),
            expire_time: Some(timestamp_to_proto(self.expire_time)),
            complete_time: self.complete_time.map(timestamp_to_proto),
        }
    }
}
