//! `billing.v1.InvoiceService`.

use billing_app::Billing;
use billing_proto::v1 as pb;
use billing_proto::v1::invoice_service_server::InvoiceService;
use tonic::{Request, Response, Status};

use super::status::to_status;
use crate::convert::{IntoProto, page_params};

pub struct InvoiceGrpc {
    billing: Billing,
}

impl InvoiceGrpc {
    pub fn new(billing: Billing) -> Self {
        InvoiceGrpc { billing }
    }
}

#[tonic::async_trait]
impl InvoiceService for InvoiceGrpc {
    async fn list_invoices(
        &self,
        request: Request<pb::ListInvoicesRequest>,
    ) -> Result<Response<pb::ListInvoicesResponse>, Status> {
        let pb::ListInvoicesRequest {
            business_id,
            subscription_id,
            page_size,
            page_token,
        } = request.into_inner();
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
        let pb::GetInvoiceRequest { invoice_id } = request.into_inner();
        let invoice = self.billing.get_invoice(&invoice_id).await.map_err(to_status)?;
        Ok(Response::new(pb::GetInvoiceResponse {
            invoice: Some(invoice.into_proto()),
        }))
    }
}
