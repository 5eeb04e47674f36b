//! Tenant scoping: whether the resources a request names are the caller's.
//!
//! The server asks before it calls a use case. A resource of another tenant
//! asked for by id answers exactly what an absent one does (`NOT_FOUND`, the
//! same message), so ids cannot be probed; a request that *names* a business
//! or directory outside the caller's scope is `PERMISSION_DENIED`. Platform
//! callers skip every lookup.

use billing_domain::access::{Caller, Owner, Scope, outside_scope};
use billing_domain::ids::{CheckoutSessionId, InvoiceId, SubscriptionId};
use billing_domain::text::ExternalId;
use billing_storage::Store;

use crate::AppError;
use crate::billing::invoice_not_found;
use crate::checkout::{session_not_found, token_hash, unknown_token};
use crate::subscriptions::subscription_not_found;

/// What part of the catalog a caller may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogView {
    /// Everything (the platform).
    Everything,
    /// What one directory sells.
    Directory(ExternalId),
    /// Nothing: a business that was never provisioned belongs to no
    /// directory yet.
    Nothing,
}

#[derive(Clone, Debug)]
pub struct Access {
    store: Store,
}

impl Access {
    pub fn new(store: Store) -> Self {
        Access { store }
    }

    /// A request naming `business_id` (to act for it or to filter by it).
    pub async fn business(&self, caller: &Caller, business_id: &str) -> Result<(), AppError> {
        match caller.scope() {
            Scope::Platform => Ok(()),
            Scope::Business(own) if own.as_str() == business_id => Ok(()),
            Scope::Business(_) => Err(outside_scope("business").into()),
            Scope::Directory(own) => {
                let directory_id = self.directory_of(business_id).await?;
                if directory_id.as_ref() == Some(own) {
                    Ok(())
                } else {
                    Err(outside_scope("business").into())
                }
            }
        }
    }

    /// A request naming `directory_id` (to provision into it or to read
    /// what it sells).
    pub async fn directory(&self, caller: &Caller, directory_id: &str) -> Result<(), AppError> {
        match self.catalog_view(caller).await? {
            CatalogView::Everything => Ok(()),
            CatalogView::Directory(own) if own.as_str() == directory_id => Ok(()),
            CatalogView::Directory(_) | CatalogView::Nothing => Err(outside_scope("directory").into()),
        }
    }

    /// A request that provisions `business_id` into `directory_id`: the
    /// caller must act for the directory, and the business must not belong
    /// to another one it cannot see.
    pub async fn provisioning(&self, caller: &Caller, business_id: &str, directory_id: &str) -> Result<(), AppError> {
        let Scope::Directory(own) = caller.scope() else {
            return Ok(());
        };
        if own.as_str() != directory_id {
            return Err(outside_scope("directory").into());
        }
        match self.directory_of(business_id).await? {
            Some(existing) if &existing != own => Err(outside_scope("business").into()),
            _ => Ok(()),
        }
    }

    /// The `(business_id, directory_id)` filter of a list, scoped: a filter
    /// the caller may not use is refused, and an empty one becomes the
    /// caller's own tenant.
    pub async fn list_filter(
        &self,
        caller: &Caller,
        business_id: String,
        directory_id: String,
    ) -> Result<(String, String), AppError> {
        if !business_id.is_empty() {
            self.business(caller, &business_id).await?;
        }
        if !directory_id.is_empty() {
            self.directory(caller, &directory_id).await?;
        }
        Ok(match caller.scope() {
            Scope::Business(own) if business_id.is_empty() => (own.as_str().to_owned(), directory_id),
            Scope::Directory(own) if directory_id.is_empty() => (business_id, own.as_str().to_owned()),
            _ => (business_id, directory_id),
        })
    }

    /// The part of the catalog the caller reads.
    pub async fn catalog_view(&self, caller: &Caller) -> Result<CatalogView, AppError> {
        Ok(match caller.scope() {
            Scope::Platform => CatalogView::Everything,
            Scope::Directory(own) => CatalogView::Directory(own.clone()),
            Scope::Business(own) => match self.store.subscriptions().get_business(own).await? {
                Some(business) => CatalogView::Directory(business.directory_id),
                None => CatalogView::Nothing,
            },
        })
    }

    /// A request for one subscription by id.
    pub async fn subscription(&self, caller: &Caller, subscription_id: &str) -> Result<(), AppError> {
        if caller.scope() == &Scope::Platform {
            return Ok(());
        }
        // A malformed id is left to the use case, which names the field.
        let Ok(id) = SubscriptionId::parse(subscription_id) else {
            return Ok(());
        };
        match self.store.subscriptions().get_subscription(&id).await? {
            Some(subscription)
                if !caller.sees(Owner {
                    business_id: &subscription.business_id,
                    directory_id: Some(&subscription.directory_id),
                }) =>
            {
                Err(subscription_not_found(&id))
            }
            _ => Ok(()),
        }
    }

    /// A request for one invoice by id.
    pub async fn invoice(&self, caller: &Caller, invoice_id: &str) -> Result<(), AppError> {
        if caller.scope() == &Scope::Platform {
            return Ok(());
        }
        let Ok(id) = InvoiceId::parse(invoice_id) else {
            return Ok(());
        };
        match self.store.billing().get_invoice(&id).await? {
            Some(invoice) if !self.owns(caller, &invoice.business_id).await? => Err(invoice_not_found(&id)),
            _ => Ok(()),
        }
    }

    /// A request for one checkout session by id.
    pub async fn checkout_session(&self, caller: &Caller, session_id: &str) -> Result<(), AppError> {
        if caller.scope() == &Scope::Platform {
            return Ok(());
        }
        let Ok(id) = CheckoutSessionId::parse(session_id) else {
            return Ok(());
        };
        match self.store.checkout().get_session(&id, false).await? {
            Some(session) if !self.owns(caller, &session.business_id).await? => Err(session_not_found(&id)),
            _ => Ok(()),
        }
    }

    /// A request that answers a checkout by its token: a token of another
    /// tenant's session is as unknown as a made-up one.
    pub async fn checkout_token(&self, caller: &Caller, token: &str) -> Result<(), AppError> {
        if caller.scope() == &Scope::Platform {
            return Ok(());
        }
        let Ok(hash) = token_hash(token) else {
            return Ok(());
        };
        match self.store.checkout().find_by_token_hash(&hash, false).await? {
            Some(session) if !self.owns(caller, &session.business_id).await? => Err(unknown_token()),
            _ => Ok(()),
        }
    }

    /// Whether a resource of `business_id` is the caller's.
    async fn owns(&self, caller: &Caller, business_id: &ExternalId) -> Result<bool, AppError> {
        let directory_id = match caller.scope() {
            Scope::Directory(_) => self.directory_of(business_id.as_str()).await?,
            Scope::Platform | Scope::Business(_) => None,
        };
        Ok(caller.sees(Owner {
            business_id,
            directory_id: directory_id.as_ref(),
        }))
    }

    /// The directory a business was provisioned in; `None` for an unknown
    /// or malformed business id.
    async fn directory_of(&self, business_id: &str) -> Result<Option<ExternalId>, AppError> {
        let Ok(id) = ExternalId::parse(business_id) else {
            return Ok(None);
        };
        Ok(self
            .store
            .subscriptions()
            .get_business(&id)
            .await?
            .map(|business| business.directory_id))
    }
}
