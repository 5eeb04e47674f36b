//! `billing.v1.PaymentMethodService`.

use billing_app::{Access, Billing};
use billing_proto::v1 as pb;
use billing_proto::v1::payment_method_service_server::PaymentMethodService;
use billing_storage::StoredPaymentMethod;
use tonic::{Request, Response, Status};

use super::status::to_status;
use super::{caller, context, idempotent};
use crate::convert::IntoProto;

pub struct PaymentMethodGrpc {
    billing: Billing,
    access: Access,
}

impl PaymentMethodGrpc {
    pub fn new(billing: Billing, access: Access) -> Self {
        PaymentMethodGrpc { billing, access }
    }

    /// The caller, after checking the business the request names is theirs.
    async fn business_caller<T>(
        &self,
        request: &Request<T>,
        business_id: &str,
    ) -> Result<billing_domain::access::Caller, Status> {
        let caller = caller(request)?;
        self.access.business(&caller, business_id).await.map_err(to_status)?;
        Ok(caller)
    }
}

fn attached(method: StoredPaymentMethod) -> pb::AttachPaymentMethodResponse {
    pb::AttachPaymentMethodResponse {
        payment_method: Some(method.into_proto()),
    }
}

#[tonic::async_trait]
impl PaymentMethodService for PaymentMethodGrpc {
    async fn attach_payment_method(
        &self,
        request: Request<pb::AttachPaymentMethodRequest>,
    ) -> Result<Response<pb::AttachPaymentMethodResponse>, Status> {
        let caller = self.business_caller(&request, &request.get_ref().business_id).await?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        let pb::AttachPaymentMethodRequest {
            request_id: _,
            business_id,
            token,
        } = request;
        idempotent(attached, |encode| {
            self.billing
                .attach_payment_method(&context, &business_id, &token, encode)
        })
        .await
    }

    async fn get_payment_method(
        &self,
        request: Request<pb::GetPaymentMethodRequest>,
    ) -> Result<Response<pb::GetPaymentMethodResponse>, Status> {
        self.business_caller(&request, &request.get_ref().business_id).await?;
        let pb::GetPaymentMethodRequest { business_id } = request.into_inner();
        let method = self.billing.get_payment_method(&business_id).await.map_err(to_status)?;
        Ok(Response::new(pb::GetPaymentMethodResponse {
            payment_method: Some(method.into_proto()),
        }))
    }

    async fn detach_payment_method(
        &self,
        request: Request<pb::DetachPaymentMethodRequest>,
    ) -> Result<Response<pb::DetachPaymentMethodResponse>, Status> {
        let caller = self.business_caller(&request, &request.get_ref().business_id).await?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        let pb::DetachPaymentMethodRequest {
            request_id: _,
            business_id,
        } = request;
        idempotent(
            |()| pb::DetachPaymentMethodResponse {},
            |encode| self.billing.detach_payment_method(&context, &business_id, encode),
        )
        .await
    }
}
