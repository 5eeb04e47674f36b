//! PreviewInvoice: the very code of a purchase or change, run in a
//! transaction that is rolled back. Nothing is stored, charged or counted,
//! and the invoice is the one the real request would produce.

use billing_domain::ids::SubscriptionId;
use billing_domain::invoice::InvoiceDraft;
use billing_domain::subscription::{ChangeTiming, ComponentQuantityDraft};
use billing_domain::text::{Code, ExternalId};

use super::{PurchaseRequest, Subscriptions, parse_subscription_id};
use crate::AppError;

/// What to preview.
#[derive(Clone, Debug)]
pub enum PreviewRequest {
    Purchase(PurchaseRequest),
    PlanChange {
        subscription_id: String,
        offering_code: String,
        timing: ChangeTiming,
        prorate: bool,
    },
    Components {
        subscription_id: String,
        components: Vec<ComponentQuantityDraft>,
    },
}

impl Subscriptions {
    /// The invoice `request` would produce now; `None` if it bills nothing.
    pub async fn preview_invoice(&self, request: &PreviewRequest) -> Result<Option<InvoiceDraft>, AppError> {
        let now = self.clock.now();
        let actor = super::changes::Actor {
            name: "preview".to_owned(),
            request_id: String::new(),
        };
        let tx = self.store.begin().await?;
        let invoice = match request {
            PreviewRequest::Purchase(purchase) => {
                let business_id =
                    ExternalId::parse(&purchase.business_id).map_err(|error| error.prefixed("business_id"))?;
                self.create_in(&tx, &actor, &business_id, purchase, true, now)
                    .await?
                    .invoice
            }
            PreviewRequest::PlanChange {
                subscription_id,
                offering_code,
                timing,
                prorate,
            } => {
                let id: SubscriptionId = parse_subscription_id(subscription_id)?;
                let code = Code::parse(offering_code).map_err(|error| error.prefixed("offering_code"))?;
                self.change_in(&tx, &actor, &id, &code, *timing, *prorate, "", true, now)
                    .await?
                    .invoice
            }
            PreviewRequest::Components {
                subscription_id,
                components,
            } => {
                let id = parse_subscription_id(subscription_id)?;
                self.components_in(&tx, &actor, &id, components, "", true, now)
                    .await?
                    .invoice
            }
        };
        // Dropped, not committed: the preview leaves no trace.
        drop(tx);
        Ok(invoice.map(|invoice| invoice.draft))
    }
}
