//! `billing.v1.InvoiceService`.

use billing_app::{Access, Billing};
use billing_domain::access::Scope;
use billing_proto::v1 as pb;
use billing_proto::v1::invoice_service_server::InvoiceService;
use tonic::{Request, Response, Status};

use super::caller;
use super::status::to_status;
use crate::convert::{IntoProto, page_params};

pub struct InvoiceGrpc {
    billing: Billing,
    access: Access,
}

impl InvoiceGrpc {
    pub fn new(billing: Billing, access: Access) -> Self {
        InvoiceGrpc { billing, access }
    }
}

#[tonic::async_trait]
impl InvoiceService for InvoiceGrpc {
    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListInvoicesRequest {
            mut business_id,
            subscription_id,
            page_size,
            page_token,
        } = request.into_inner();
        if !business_id.is_empty() {
            self.access.business(&caller, &business_id).await.map_err(to_status)?;
        }
        if !subscription_id.is_empty() {
            self.access
                .subscription(&caller, &subscription_id)
                .await
                .map_err(to_status)?;
        }
        // A business's list needs no filter: it is its own.
        if let (Scope::Business(own), true, true) = (caller.scope(), business_id.is_empty(), subscription_id.is_empty())
        {
            business_id = own.as_str().to_owned();
        }
        let page = self
            .billing
            .list_invoices(&business_id, &subscription_id, &page_params(page_size, page_token))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListInvoicesResponse {
            invoices: page.items.into_iter().map(IntoProto::into_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_invoice(
        &self,
        request: Request<pb::GetInvoiceRequest>,
    ) -> Result<Response<pb::GetInvoiceResponse>, Status> {
        let caller = caller(&request)?;
        let pb::GetInvoiceRequest { invoice_id } = request.into_inner();
        self.access.invoice(&caller, &invoice_id).await.map_err(to_status)?;
        let invoice = self.billing.get_invoice(&invoice_id).await.map_err(to_status)?;
        Ok(Response::new(pb::GetInvoiceResponse {
            invoice: Some(invoice.into_proto()),
        }))
    }
}
