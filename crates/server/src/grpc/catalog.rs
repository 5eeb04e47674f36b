//! `billing.v1.CatalogService`.

use billing_app::{Access, Catalog, CatalogView, OfferingRef};
use billing_domain::catalog::ProductDraft;
use billing_proto::v1 as pb;
use billing_proto::v1::catalog_service_server::CatalogService;
use tonic::{Request, Response, Status};

use super::caller;
use super::status::{invalid, to_status};
use crate::convert::{
    FromProto, IntoProto, coupon_draft_from_proto, offering_draft_from_proto, offering_update_from_proto, page_params,
};

pub struct CatalogGrpc {
    catalog: Catalog,
    access: Access,
}

impl CatalogGrpc {
    pub fn new(catalog: Catalog, access: Access) -> Self {
        CatalogGrpc { catalog, access }
    }

    /// The catalog the caller of `request` may read.
    async fn view<T>(&self, request: &Request<T>) -> Result<CatalogView, Status> {
        let caller = caller(request)?;
        self.access.catalog_view(&caller).await.map_err(to_status)
    }

    /// The directory a directory-scoped read is about: the one named, if the
    /// caller may read it, else the caller's own; `None` when the caller's
    /// view is empty.
    async fn directory_for<T>(&self, request: &Request<T>, named: &str) -> Result<Option<String>, Status> {
        let caller = caller(request)?;
        if !named.is_empty() {
            self.access.directory(&caller, named).await.map_err(to_status)?;
            return Ok(Some(named.to_owned()));
        }
        Ok(match self.access.catalog_view(&caller).await.map_err(to_status)? {
            CatalogView::Everything => Some(String::new()),
            CatalogView::Directory(own) => Some(own.as_str().to_owned()),
            CatalogView::Nothing => None,
        })
    }
}

fn lookup(proto: Option<pb::get_offering_request::Lookup>) -> OfferingRef {
    match proto {
        Some(pb::get_offering_request::Lookup::OfferingId(id)) => OfferingRef::Id(id),
        Some(pb::get_offering_request::Lookup::Code(code)) => OfferingRef::Code(code),
        None => OfferingRef::Missing,
    }
}

fn update_lookup(proto: Option<pb::update_offering_request::Lookup>) -> OfferingRef {
    match proto {
        Some(pb::update_offering_request::Lookup::OfferingId(id)) => OfferingRef::Id(id),
        Some(pb::update_offering_request::Lookup::Code(code)) => OfferingRef::Code(code),
        None => OfferingRef::Missing,
    }
}

#[tonic::async_trait]
impl CatalogService for CatalogGrpc {
    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::CreateProductResponse>, Status> {
        let draft = ProductDraft::from_proto(request.into_inner());
        let product = self.catalog.create_product(&draft).await.map_err(to_status)?;
        Ok(Response::new(pb::CreateProductResponse {
            product: Some(product.into_proto()),
        }))
    }

    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let view = self.view(&request).await?;
        let pb::ListProductsRequest { page_size, page_token } = request.into_inner();
        let page = self
            .catalog
            .list_products(&view, &page_params(page_size, page_token))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListProductsResponse {
            products: page.items.into_iter().map(IntoProto::into_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_offering(
        &self,
        request: Request<pb::CreateOfferingRequest>,
    ) -> Result<Response<pb::CreateOfferingResponse>, Status> {
        let pb::CreateOfferingRequest { offering } = request.into_inner();
        let draft = offering_draft_from_proto(offering.unwrap_or_default())
            .map_err(|error| invalid(error.prefixed("offering")))?;
        let offering = self
            .catalog
            .create_offering(&draft)
            .await
            .map_err(|error| to_status(error.prefixed("offering")))?;
        Ok(Response::new(pb::CreateOfferingResponse {
            offering: Some(offering.into_proto()),
        }))
    }

    async fn get_offering(
        &self,
        request: Request<pb::GetOfferingRequest>,
    ) -> Result<Response<pb::GetOfferingResponse>, Status> {
        let view = self.view(&request).await?;
        let pb::GetOfferingRequest { lookup: by } = request.into_inner();
        let offering = self.catalog.get_offering(&lookup(by), &view).await.map_err(to_status)?;
        Ok(Response::new(pb::GetOfferingResponse {
            offering: Some(offering.into_proto()),
        }))
    }

    async fn list_offerings(
        &self,
        request: Request<pb::ListOfferingsRequest>,
    ) -> Result<Response<pb::ListOfferingsResponse>, Status> {
        let scoped = self.directory_for(&request, &request.get_ref().directory_id).await?;
        let pb::ListOfferingsRequest {
            directory_id: _,
            include_hidden,
            page_size,
            page_token,
        } = request.into_inner();
        let page = match scoped {
            Some(directory_id) => self
                .catalog
                .list_offerings(&directory_id, include_hidden, &page_params(page_size, page_token))
                .await
                .map_err(to_status)?,
            None => billing_app::Page::empty(),
        };
        Ok(Response::new(pb::ListOfferingsResponse {
            offerings: page.items.into_iter().map(IntoProto::into_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_offering(
        &self,
        request: Request<pb::UpdateOfferingRequest>,
    ) -> Result<Response<pb::UpdateOfferingResponse>, Status> {
        let pb::UpdateOfferingRequest {
            lookup: by,
            offering,
            update_mask,
        } = request.into_inner();
        let update = offering_update_from_proto(offering, update_mask).map_err(invalid)?;
        let offering = self
            .catalog
            .update_offering(&update_lookup(by), &update)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::UpdateOfferingResponse {
            offering: Some(offering.into_proto()),
        }))
    }

    async fn assign_offering(
        &self,
        request: Request<pb::AssignOfferingRequest>,
    ) -> Result<Response<pb::AssignOfferingResponse>, Status> {
        let pb::AssignOfferingRequest {
            directory_id,
            offering_code,
            is_default,
        } = request.into_inner();
        let assignment = self
            .catalog
            .assign_offering(&directory_id, &offering_code, is_default)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::AssignOfferingResponse {
            directory_offering: Some(assignment.into_proto()),
        }))
    }

    async fn list_directory_offerings(
        &self,
        request: Request<pb::ListDirectoryOfferingsRequest>,
    ) -> Result<Response<pb::ListDirectoryOfferingsResponse>, Status> {
        let scoped = self.directory_for(&request, &request.get_ref().directory_id).await?;
        let pb::ListDirectoryOfferingsRequest {
            directory_id: _,
            page_size,
            page_token,
        } = request.into_inner();
        let page = match scoped {
            Some(directory_id) => self
                .catalog
                .list_directory_offerings(&directory_id, &page_params(page_size, page_token))
                .await
                .map_err(to_status)?,
            None => billing_app::Page::empty(),
        };
        Ok(Response::new(pb::ListDirectoryOfferingsResponse {
            directory_offerings: page.items.into_iter().map(IntoProto::into_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn create_coupon(
        &self,
        request: Request<pb::CreateCouponRequest>,
    ) -> Result<Response<pb::CreateCouponResponse>, Status> {
        let pb::CreateCouponRequest { coupon } = request.into_inner();
        let draft =
            coupon_draft_from_proto(coupon.unwrap_or_default()).map_err(|error| invalid(error.prefixed("coupon")))?;
        let coupon = self
            .catalog
            .create_coupon(&draft)
            .await
            .map_err(|error| to_status(error.prefixed("coupon")))?;
        Ok(Response::new(pb::CreateCouponResponse {
            coupon: Some(coupon.into_proto()),
        }))
    }

    async fn list_coupons(
        &self,
        request: Request<pb::ListCouponsRequest>,
    ) -> Result<Response<pb::ListCouponsResponse>, Status> {
        let pb::ListCouponsRequest { page_size, page_token } = request.into_inner();
        let page = self
            .catalog
            .list_coupons(&page_params(page_size, page_token))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListCouponsResponse {
            coupons: page.items.into_iter().map(IntoProto::into_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
