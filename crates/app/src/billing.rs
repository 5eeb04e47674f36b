//! Payment methods and invoices.

use std::sync::Arc;

use billing_domain::error::Violations;
use billing_domain::ids::{InvoiceId, SubscriptionId};
use billing_domain::invoice::Invoice;
use billing_domain::subscription::Business;
use billing_domain::text::ExternalId;
use billing_domain::{DomainError, Reason, Refusal};
use billing_provider_api::{ProviderError, ProviderErrorKind};
use billing_storage::{InvoiceFilter, Store, StoredPaymentMethod, Tx};

use crate::clock::Clock;
use crate::error::AppError;
use crate::idempotency::{self, Outcome, RequestContext};
use crate::paging::{Page, PageParams, PageRequest};
use crate::providers::{Biller, Providers};

/// Longest accepted provider token.
const MAX_TOKEN_LEN: usize = 255;

/// A provider's failure in the service's vocabulary: a request it refused
/// (naming `field`), no answer, or a fault on its side.
pub(crate) fn provider_error(error: ProviderError, field: &str) -> AppError {
    match error.kind() {
        ProviderErrorKind::InvalidRequest => Refusal::invalid(field, error.message()).into(),
        ProviderErrorKind::Unavailable => AppError::provider_unavailable(error.message()),
        ProviderErrorKind::Internal => AppError::fault(format!("the billing provider failed: {}", error.message())),
    }
}

#[derive(Clone, Debug)]
pub struct Billing {
    store: Store,
    clock: Arc<dyn Clock>,
    providers: Providers,
}

impl Billing {
    pub fn new(store: Store, clock: Arc<dyn Clock>, providers: Providers) -> Self {
        Billing {
            store,
            clock,
            providers,
        }
    }

    async fn provisioned(&self, business_id: &str) -> Result<Business, AppError> {
        let business_id = ExternalId::parse(business_id).map_err(|error| error.prefixed("business_id"))?;
        self.store
            .subscriptions()
            .get_business(&business_id)
            .await?
            .ok_or_else(|| {
                DomainError::new(
                    Reason::BusinessNotProvisioned,
                    format!("business {business_id} is not provisioned; call ProvisionBusiness first"),
                )
                .into()
            })
    }

    /// Attaches a payment method by provider token, replacing the one on
    /// file. The provider is asked first, outside any transaction; attaching
    /// the same token again is harmless at every provider.
    pub async fn attach_payment_method(
        &self,
        context: &RequestContext,
        business_id: &str,
        token: &str,
        encode: impl FnOnce(&StoredPaymentMethod) -> Vec<u8>,
    ) -> Result<Outcome<StoredPaymentMethod>, AppError> {
        // Every bad field at once, before anything is looked up.
        let mut violations = Violations::new();
        violations.check("business_id", ExternalId::parse(business_id));
        if billing_domain::payment_method::looks_like_card_number(token) {
            // Neither echoed nor logged: the value is card data.
            violations.push(
                "token",
                Reason::FieldInvalid,
                "looks like a card number; send a provider token (e.g. pm_…), never card data",
            );
        } else if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            violations.push(
                "token",
                Reason::FieldInvalid,
                format!("must be a provider token of 1–{MAX_TOKEN_LEN} characters, e.g. pm_card_visa"),
            );
        }
        violations.into_result()?;
        let business = self.provisioned(business_id).await?;
        let business_id = business.business_id.clone();
        let provider = match self.providers.biller_for(&business.directory_id)? {
            Biller::Gateway(provider) => provider,
            Biller::Engine(engine) => {
                return Err(DomainError::field(
                    "business_id",
                    Reason::FieldInvalid,
                    format!(
                        "directory {} is billed by {}, which keeps its own payment methods",
                        business.directory_id,
                        engine.name()
                    ),
                )
                .into());
            }
        };
        let method = provider
            .attach_payment_method(business_id.as_str(), token)
            .await
            .map_err(|error| provider_error(error, "token"))?;
        let now = self.clock.now();
        idempotency::run(&self.store, context, "AttachPaymentMethod", now, encode, async |tx: &Tx| {
            tx.billing().put_payment_method(&business_id, &method, now).await?;
            tracing::info!(business_id = %business_id, brand = %method.brand, last4 = %method.last4, "payment method attached");
            Ok(StoredPaymentMethod {
                business_id: business_id.clone(),
                method: method.clone(),
                create_time: now,
            })
        })
        .await
    }

    pub async fn get_payment_method(&self, business_id: &str) -> Result<StoredPaymentMethod, AppError> {
        let business_id = ExternalId::parse(business_id).map_err(|error| error.prefixed("business_id"))?;
        self.store
            .billing()
            .get_payment_method(&business_id)
            .await?
            .ok_or_else(|| payment_method_not_found(&business_id))
    }

    pub async fn detach_payment_method(
        &self,
        context: &RequestContext,
        business_id: &str,
        encode: impl FnOnce(&()) -> Vec<u8>,
    ) -> Result<Outcome<()>, AppError> {
        let business_id = ExternalId::parse(business_id).map_err(|error| error.prefixed("business_id"))?;
        let now = self.clock.now();
        idempotency::run(
            &self.store,
            context,
            "DetachPaymentMethod",
            now,
            encode,
            async |tx: &Tx| {
                if tx.billing().delete_payment_method(&business_id).await? {
                    Ok(())
                } else {
                    Err(payment_method_not_found(&business_id))
                }
            },
        )
        .await
    }

    /// Invoices of a business or of one subscription (exactly one is set).
    pub async fn list_invoices(
        &self,
        business_id: &str,
        subscription_id: &str,
        params: &PageParams,
    ) -> Result<Page<Invoice>, AppError> {
        let filter = match (business_id.is_empty(), subscription_id.is_empty()) {
            (false, true) => {
                InvoiceFilter::Business(ExternalId::parse(business_id).map_err(|error| error.prefixed("business_id"))?)
            }
            (true, false) => InvoiceFilter::Subscription(
                SubscriptionId::parse(subscription_id).map_err(|error| error.prefixed("subscription_id"))?,
            ),
            _ => {
                return Err(DomainError::field(
                    "business_id",
                    Reason::FieldInvalid,
                    "set exactly one of business_id and subscription_id",
                )
                .into());
            }
        };
        let request = PageRequest::parse(params, format!("invoices|{business_id}|{subscription_id}"))?;
        let rows = self
            .store
            .billing()
            .list_invoices(&filter, request.after.as_deref(), request.fetch_limit())
            .await?;
        Ok(request.page(rows, |invoice| invoice.id.as_str()))
    }

    pub async fn get_invoice(&self, invoice_id: &str) -> Result<Invoice, AppError> {
        let id = InvoiceId::parse(invoice_id).map_err(|error| error.prefixed("invoice_id"))?;
        self.store
            .billing()
            .get_invoice(&id)
            .await?
            .ok_or_else(|| invoice_not_found(&id))
    }
}

pub(crate) fn invoice_not_found(id: &InvoiceId) -> AppError {
    DomainError::new(Reason::InvoiceNotFound, format!("no invoice has id {id}")).into()
}

fn payment_method_not_found(business_id: &ExternalId) -> AppError {
    DomainError::new(
        Reason::PaymentMethodNotFound,
        format!("business {business_id} has no payment method; attach one with AttachPaymentMethod"),
    )
    .into()
}
