use billing_domain::invoice::{Invoice, InvoiceDraft, InvoiceLine, InvoiceStatus, LineKind};
use billing_proto::v1 as pb;
use billing_storage::StoredPaymentMethod;

use super::{IntoProto, timestamp_to_proto};

impl IntoProto<pb::PaymentMethod> for StoredPaymentMethod {
    fn into_proto(self) -> pb::PaymentMethod {
        pb::PaymentMethod {
            business_id: self.business_id.to_string(),
            provider: self.method.provider.as_str().to_owned(),
            brand: self.method.brand,
            last4: self.method.last4,
            exp_month: i32::try_from(self.method.exp_month).unwrap_or(0),
            exp_year: i32::try_from(self.method.exp_year).unwrap_or(0),
            status: pb::PaymentMethodStatus::Active.into(),
        }
    }
}

impl IntoProto<pb::InvoiceLine> for InvoiceLine {
    fn into_proto(self) -> pb::InvoiceLine {
        pb::InvoiceLine {
            kind: match self.kind {
                LineKind::Plan => pb::InvoiceLineKind::Plan,
                LineKind::Component => pb::InvoiceLineKind::Component,
                LineKind::ProrationCredit => pb::InvoiceLineKind::ProrationCredit,
                LineKind::ProrationCharge => pb::InvoiceLineKind::ProrationCharge,
                LineKind::Discount => pb::InvoiceLineKind::Discount,
            }
            .into(),
            description: self.description,
            offering_code: self.offering_code.map(|code| code.to_string()).unwrap_or_default(),
            component_code: self.component_code.map(|code| code.to_string()).unwrap_or_default(),
            quantity: i32::try_from(self.quantity).unwrap_or(i32::MAX),
            period_start_time: Some(timestamp_to_proto(self.period.start_time())),
            period_end_time: Some(timestamp_to_proto(self.period.end_time())),
            amount: Some(self.amount.into_proto()),
        }
    }
}

/// A draft as an invoice message (a preview: no id, number or times).
impl IntoProto<pb::Invoice> for InvoiceDraft {
    fn into_proto(self) -> pb::Invoice {
        pb::Invoice {
            currency_code: self.currency.code().to_owned(),
            lines: self.lines.into_iter().map(IntoProto::into_proto).collect(),
            subtotal: Some(self.subtotal.into_proto()),
            discount: Some(self.discount.into_proto()),
            total: Some(self.total.into_proto()),
            amount_due: Some(self.amount_due.into_proto()),
            credit_applied: Some(self.credit_applied.into_proto()),
            ..pb::Invoice::default()
        }
    }
}

impl IntoProto<pb::Invoice> for Invoice {
    fn into_proto(self) -> pb::Invoice {
        pb::Invoice {
            id: self.id.to_string(),
            number: self.number,
            subscription_id: self.subscription_id.to_string(),
            business_id: self.business_id.to_string(),
            status: match self.status {
                InvoiceStatus::Open => pb::InvoiceStatus::Open,
                InvoiceStatus::Paid => pb::InvoiceStatus::Paid,
                InvoiceStatus::PaymentFailed => pb::InvoiceStatus::PaymentFailed,
                InvoiceStatus::Void => pb::InvoiceStatus::Void,
                InvoiceStatus::Uncollectible => pb::InvoiceStatus::Uncollectible,
            }
            .into(),
            attempt_count: i32::try_from(self.attempt_count).unwrap_or(i32::MAX),
            next_attempt_time: self.next_attempt_time.map(timestamp_to_proto),
            create_time: Some(timestamp_to_proto(self.create_time)),
            paid_time: self.paid_time.map(timestamp_to_proto),
            ..self.draft.into_proto()
        }
    }
}
