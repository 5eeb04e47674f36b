//! Catalog use cases.

use std::sync::Arc;

use billing_domain::catalog::{
    Coupon, CouponDraft, DirectoryOffering, Offering, OfferingDraft, OfferingUpdate, Product, ProductDraft,
    assign_offering,
};
use billing_domain::error::Violations;
use billing_domain::ids::{CouponId, OfferingId, ProductId};
use billing_domain::text::{Code, ExternalId};
use billing_domain::{DomainError, Reason};
use billing_storage::{OfferingFilter, OfferingKey, Store};
use uuid::Uuid;

use crate::access::CatalogView;
use crate::clock::Clock;
use crate::error::AppError;
use crate::paging::{Page, PageParams, PageRequest};

/// The most offerings one directory's product list is built from.
const MAX_DIRECTORY_OFFERINGS: u64 = 10_000;

/// How a request names one offering: GetOffering and UpdateOffering by
/// `offering_id` or `code`, a purchase by `offering_id` or `offering_code`.
#[derive(Clone, Debug, Default)]
pub enum OfferingRef {
    Id(String),
    Code(String),
    /// The client set neither.
    #[default]
    Missing,
}

impl OfferingRef {
    /// The checked id or code; `code_field` is the request's name for the
    /// code, under which a missing or bad one is reported.
    pub(crate) fn parse(&self, code_field: &str) -> Result<ParsedRef, DomainError> {
        match self {
            OfferingRef::Id(text) => OfferingId::parse(text)
                .map(ParsedRef::Id)
                .map_err(|error| error.prefixed("offering_id")),
            OfferingRef::Code(text) => Code::parse(text)
                .map(ParsedRef::Code)
                .map_err(|error| error.prefixed(code_field)),
            OfferingRef::Missing => Err(DomainError::field(
                code_field,
                Reason::FieldInvalid,
                format!("set {code_field} or offering_id"),
            )),
        }
    }
}

/// An offering reference whose id or code has been checked.
pub(crate) enum ParsedRef {
    Id(OfferingId),
    Code(Code),
}

impl ParsedRef {
    pub(crate) fn as_key(&self) -> OfferingKey<'_> {
        match self {
            ParsedRef::Id(id) => OfferingKey::Id(id),
            ParsedRef::Code(code) => OfferingKey::Code(code),
        }
    }

    pub(crate) fn not_found(&self) -> AppError {
        let message = match self {
            ParsedRef::Id(id) => format!("no offering has id {id}"),
            ParsedRef::Code(code) => format!("no offering has code {code}"),
        };
        DomainError::new(Reason::OfferingNotFound, message).into()
    }
}

/// Products, offerings, directory assignments and coupons.
#[derive(Clone, Debug)]
pub struct Catalog {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Catalog {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Catalog { store, clock }
    }

    pub async fn create_product(&self, draft: &ProductDraft) -> Result<Product, AppError> {
        let product = Product::create(draft, ProductId::from_uuid(Uuid::now_v7()), self.clock.now())?;
        self.store.catalog().insert_product(&product).await.map_err(|error| {
            AppError::on_conflict(
                error,
                "code",
                Reason::ProductAlreadyExists,
                format!("a product with code {} exists", product.code),
            )
        })?;
        tracing::info!(product_id = %product.id, code = %product.code, "product created");
        Ok(product)
    }

    /// Products the caller's view includes: all of them, or those the
    /// directory's offerings entitle to.
    pub async fn list_products(&self, view: &CatalogView, params: &PageParams) -> Result<Page<Product>, AppError> {
        let (scope, codes) = match view {
            CatalogView::Everything => ("products".to_owned(), None),
            CatalogView::Directory(directory_id) => {
                let filter = OfferingFilter {
                    directory_id: Some(directory_id.clone()),
                    include_hidden: true,
                };
                let offerings = self
                    .store
                    .catalog()
                    .list_offerings(&filter, None, MAX_DIRECTORY_OFFERINGS)
                    .await?;
                let mut codes: Vec<Code> = offerings
                    .into_iter()
                    .flat_map(|offering| offering.product_codes.clone())
                    .collect();
                codes.sort();
                codes.dedup();
                (format!("products|{directory_id}"), Some(codes))
            }
            CatalogView::Nothing => return Ok(Page::empty()),
        };
        let request = PageRequest::parse(params, scope)?;
        let rows = self
            .store
            .catalog()
            .list_products(codes.as_deref(), request.after.as_deref(), request.fetch_limit())
            .await?;
        Ok(request.page(rows, |product| product.id.as_str()))
    }

    /// Creates an offering. Field paths in errors are relative to the draft.
    pub async fn create_offering(&self, draft: &OfferingDraft) -> Result<Offering, AppError> {
        let tx = self.store.begin().await?;
        let named_products: Vec<Code> = draft
            .product_codes
            .iter()
            .filter_map(|text| Code::parse(text).ok())
            .collect();
        let existing_products = tx.catalog().existing_product_codes(&named_products).await?;
        let bundles = tx.catalog().bundle_graph().await?;
        let offering = Offering::create(
            draft,
            &existing_products,
            &bundles,
            OfferingId::from_uuid(Uuid::now_v7()),
            self.clock.now(),
        )?;
        tx.catalog().insert_offering(&offering).await.map_err(|error| {
            AppError::on_conflict(
                error,
                "code",
                Reason::OfferingAlreadyExists,
                format!("an offering with code {} exists", offering.code),
            )
        })?;
        tx.commit().await?;
        tracing::info!(offering_id = %offering.id, code = %offering.code, "offering created");
        Ok(offering)
    }

    /// One offering, if the caller's view includes it; one it does not
    /// include is as absent as one that does not exist.
    pub async fn get_offering(&self, lookup: &OfferingRef, view: &CatalogView) -> Result<Offering, AppError> {
        let key = lookup.parse("code")?;
        let offering = self
            .store
            .catalog()
            .get_offering(key.as_key())
            .await?
            .ok_or_else(|| key.not_found())?;
        let visible = match view {
            CatalogView::Everything => true,
            CatalogView::Directory(directory_id) => self
                .store
                .catalog()
                .get_directory_offering(directory_id, &offering.id)
                .await?
                .is_some(),
            CatalogView::Nothing => false,
        };
        if visible { Ok(offering) } else { Err(key.not_found()) }
    }

    /// Lists offerings; `directory_id` empty = every directory.
    pub async fn list_offerings(
        &self,
        directory_id: &str,
        include_hidden: bool,
        params: &PageParams,
    ) -> Result<Page<Offering>, AppError> {
        let directory_id = if directory_id.is_empty() {
            None
        } else {
            Some(ExternalId::parse(directory_id).map_err(|error| error.prefixed("directory_id"))?)
        };
        let scope = format!(
            "offerings|{}|{include_hidden}",
            directory_id.as_ref().map_or("", ExternalId::as_str)
        );
        let request = PageRequest::parse(params, scope)?;
        let filter = OfferingFilter {
            directory_id,
            include_hidden,
        };
        let rows = self
            .store
            .catalog()
            .list_offerings(&filter, request.after.as_deref(), request.fetch_limit())
            .await?;
        Ok(request.page(rows, |offering| offering.id.as_str()))
    }

    /// Applies an update. Errors name lookup fields (`offering_id`, `code`) at
    /// the top level and the update's own fields under `offering.`.
    pub async fn update_offering(&self, lookup: &OfferingRef, update: &OfferingUpdate) -> Result<Offering, AppError> {
        let key = lookup.parse("code")?;
        let tx = self.store.begin().await?;
        let current = tx
            .catalog()
            .get_offering_for_update(key.as_key())
            .await?
            .ok_or_else(|| key.not_found())?;
        let updated = current
            .update(update, self.clock.now())
            .map_err(|error| error.prefixed("offering"))?;
        tx.catalog().update_offering(&updated).await?;
        tx.commit().await?;
        tracing::info!(offering_id = %updated.id, status = updated.status.as_str(), "offering updated");
        Ok(updated)
    }

    pub async fn assign_offering(
        &self,
        directory_id: &str,
        offering_code: &str,
        is_default: bool,
    ) -> Result<DirectoryOffering, AppError> {
        let mut violations = Violations::new();
        let directory_id = violations.check("directory_id", ExternalId::parse(directory_id));
        let offering_code = violations.check("offering_code", Code::parse(offering_code));
        let (Some(directory_id), Some(offering_code)) = (directory_id, offering_code) else {
            return Err(violations.into_error().into());
        };
        let tx = self.store.begin().await?;
        // Two concurrent defaults of one family must not both pass the check.
        tx.lock(&format!("directory-offerings:{directory_id}")).await?;
        let offering = tx
            .catalog()
            .get_offering(OfferingKey::Code(&offering_code))
            .await?
            .ok_or_else(|| offering_not_found(&offering_code))?;
        let current = tx.catalog().get_directory_offering(&directory_id, &offering.id).await?;
        let defaults = tx.catalog().directory_default_offerings(&directory_id).await?;
        let assignment = assign_offering(
            directory_id,
            &offering,
            is_default,
            current.as_ref(),
            &defaults,
            self.clock.now(),
        )?;
        if current.as_ref() == Some(&assignment) {
            // Assigned as it already was: nothing to write or to tell.
            return Ok(assignment);
        }
        tx.catalog().upsert_directory_offering(&assignment).await?;
        tx.commit().await?;
        tracing::info!(
            directory_id = %assignment.directory_id,
            offering_code = %assignment.offering_code,
            is_default,
            "offering assigned"
        );
        Ok(assignment)
    }

    pub async fn list_directory_offerings(
        &self,
        directory_id: &str,
        params: &PageParams,
    ) -> Result<Page<DirectoryOffering>, AppError> {
        let directory_id = ExternalId::parse(directory_id).map_err(|error| error.prefixed("directory_id"))?;
        let request = PageRequest::parse(params, format!("directory-offerings|{directory_id}"))?;
        let rows = self
            .store
            .catalog()
            .list_directory_offerings(&directory_id, request.after.as_deref(), request.fetch_limit())
            .await?;
        Ok(request.page(rows, |assignment| assignment.offering_id.as_str()))
    }

    /// Creates a coupon; field paths in errors are relative to the draft.
    pub async fn create_coupon(&self, draft: &CouponDraft) -> Result<Coupon, AppError> {
        let named: Vec<Code> = draft
            .applies_to_offering_codes
            .iter()
            .filter_map(|text| Code::parse(text).ok())
            .collect();
        let existing = self.store.catalog().existing_offering_codes(&named).await?;
        let coupon = Coupon::create(draft, &existing, CouponId::from_uuid(Uuid::now_v7()), self.clock.now())?;
        self.store.catalog().insert_coupon(&coupon).await.map_err(|error| {
            AppError::on_conflict(
                error,
                "code",
                Reason::CouponAlreadyExists,
                format!("a coupon with code {} exists", coupon.code),
            )
        })?;
        tracing::info!(coupon_id = %coupon.id, code = %coupon.code, "coupon created");
        Ok(coupon)
    }

    pub async fn list_coupons(&self, params: &PageParams) -> Result<Page<Coupon>, AppError> {
        let request = PageRequest::parse(params, "coupons".to_owned())?;
        let rows = self
            .store
            .catalog()
            .list_coupons(request.after.as_deref(), request.fetch_limit())
            .await?;
        Ok(request.page(rows, |coupon| coupon.id.as_str()))
    }
}

pub(crate) fn offering_not_found(code: &Code) -> AppError {
    DomainError::new(Reason::OfferingNotFound, format!("no offering has code {code}")).into()
}
