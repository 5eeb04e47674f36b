//! PreviewInvoice: the very code of a purchase or change, run in a
//! transaction that is rolled back. Nothing is stored, charged or counted,
//! and the invoice is the one the real request would produce.

use billing_domain::invoice::InvoiceDraft;
use billing_domain::subscription::Subscription;
use billing_domain::text::Code;
use billing_storage::{OfferingKey, Tx};
use chrono::{DateTime, Utc};

use super::change::CheckedPlanChange;
use super::{ComponentsRequest, PlanChangeRequest, PurchaseRequest, Subscriptions, parse_subscription_id};
use crate::AppError;

/// What to preview.
#[derive(Clone, Debug)]
pub enum PreviewRequest {
    Purchase(PurchaseRequest),
    /// The etag is not checked: a preview changes nothing.
    PlanChange(PlanChangeRequest),
    /// The etag is not checked: a preview changes nothing.
    Components(ComponentsRequest),
}

/// What a purchase or change would produce now.
#[derive(Clone, Debug)]
pub struct Previewed {
    /// The subscription as it would be right after (a scheduled change shows
    /// as its `pending_change`).
    pub subscription: Subscription,
    /// The invoice it would bill now; `None` if it bills nothing.
    pub invoice: Option<InvoiceDraft>,
    /// When a plan change takes effect (now, or at the end of the period).
    pub effective_time: Option<DateTime<Utc>>,
}

impl Subscriptions {
    /// The invoice `request` would produce now; `None` if it bills nothing.
    /// A plan change of a subscription billed by an engine provider is what
    /// the provider's own preview says it would bill.
    pub async fn preview_invoice(&self, request: &PreviewRequest) -> Result<Option<InvoiceDraft>, AppError> {
        if let PreviewRequest::PlanChange(change) = request
            && let Some(draft) = self
                .engine_plan_preview(&change.subscription_id, &change.offering_code)
                .await?
        {
            return Ok(Some(draft));
        }
        let now = self.clock.now();
        let tx = self.store.begin().await?;
        let previewed = self.preview_in(&tx, request, now).await?;
        // Dropped, not committed: the preview leaves no trace.
        drop(tx);
        Ok(previewed.invoice)
    }

    /// The provider's preview of moving an engine-billed subscription to
    /// `offering_code` now; `None` for subscriptions billed here. Called
    /// outside any transaction.
    pub async fn engine_plan_preview(
        &self,
        subscription_id: &str,
        offering_code: &str,
    ) -> Result<Option<InvoiceDraft>, AppError> {
        let id = parse_subscription_id(subscription_id)?;
        let Some(subscription) = self.store.subscriptions().get_subscription(&id).await? else {
            return Ok(None);
        };
        let (Some(provider_id), Some(engine)) = (
            subscription.provider_subscription_id.clone(),
            self.charger.providers().engine(),
        ) else {
            return Ok(None);
        };
        if !subscription.provider.is_engine() {
            return Ok(None);
        }
        let code = Code::parse(offering_code).map_err(|error| error.prefixed("offering_code"))?;
        let Some(target) = self.store.catalog().get_offering(OfferingKey::Code(&code)).await? else {
            return Ok(None);
        };
        let (handle, price_point) = super::engine::product_handles(&target)?;
        let preview = engine
            .preview_plan_change(&provider_id, &handle, price_point.as_deref())
            .await
            .map_err(|error| crate::billing::provider_error(error, "offering_code"))?;
        Ok(Some(super::engine::preview_draft(
            &subscription,
            &target,
            &preview,
            self.clock.now(),
        ))
        .filter(|draft| !draft.lines.is_empty() || !draft.amount_due.is_zero()))
    }

    /// Runs `request` in `tx`, which the caller must drop (or roll back to a
    /// savepoint) rather than commit.
    pub async fn preview_in(
        &self,
        tx: &Tx,
        request: &PreviewRequest,
        now: DateTime<Utc>,
    ) -> Result<Previewed, AppError> {
        let actor = super::changes::Actor {
            name: "preview".to_owned(),
            request_id: String::new(),
        };
        match request {
            PreviewRequest::Purchase(purchase) => {
                let business_id = purchase.check()?;
                let purchase = self.create_in(tx, &actor, &business_id, purchase, true, now).await?;
                Ok(Previewed {
                    subscription: purchase.subscription,
                    invoice: purchase.invoice.map(|invoice| invoice.draft),
                    effective_time: None,
                })
            }
            PreviewRequest::PlanChange(change) => {
                let unversioned = PlanChangeRequest {
                    etag: String::new(),
                    ..change.clone()
                };
                let request = CheckedPlanChange::check(&unversioned)?;
                let changed = self.change_in(tx, &actor, &request, true, now).await?;
                Ok(Previewed {
                    subscription: changed.subscription,
                    invoice: changed.invoice.map(|invoice| invoice.draft),
                    effective_time: Some(changed.effective_time),
                })
            }
            PreviewRequest::Components(update) => {
                let id = parse_subscription_id(&update.subscription_id)?;
                let unversioned = ComponentsRequest {
                    etag: String::new(),
                    ..update.clone()
                };
                let updated = self.components_in(tx, &actor, &id, &unversioned, true, now).await?;
                Ok(Previewed {
                    subscription: updated.subscription,
                    invoice: updated.invoice.map(|invoice| invoice.draft),
                    effective_time: None,
                })
            }
        }
    }
}
