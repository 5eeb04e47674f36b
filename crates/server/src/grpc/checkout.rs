//! `billing.v1.CheckoutService`.

use billing_app::Checkout;
use billing_app::checkout::{Answerer, Completion};
use billing_proto::v1 as pb;
use billing_proto::v1::checkout_service_server::CheckoutService;
use tonic::{Request, Response, Status};

use super::context;
use super::status::to_status;
use crate::convert::{IntoProto, checkout_draft_from_proto, decision_from_proto, timestamp_to_proto};

pub struct CheckoutGrpc {
    checkout: Checkout,
}

impl CheckoutGrpc {
    pub fn new(checkout: Checkout) -> Self {
        CheckoutGrpc { checkout }
    }
}

#[tonic::async_trait]
impl CheckoutService for CheckoutGrpc {
    async fn create_checkout_session(
        &self,
        request: Request<pb::CreateCheckoutSessionRequest>,
    ) -> Result<Response<pb::CreateCheckoutSessionResponse>, Status> {
        let request = request.into_inner();
        let context = context(&request.request_id, &request);
        let draft = checkout_draft_from_proto(request);
        let opened = self
            .checkout
            .create_session(&context, &draft)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateCheckoutSessionResponse {
            expire_time: Some(timestamp_to_proto(opened.session.expire_time)),
            session: Some(opened.session.into_proto()),
            token: opened.token,
            url: opened.url,
        }))
    }

    async fn get_checkout_session(
        &self,
        request: Request<pb::GetCheckoutSessionRequest>,
    ) -> Result<Response<pb::GetCheckoutSessionResponse>, Status> {
        let pb::GetCheckoutSessionRequest { session_id } = request.into_inner();
        let session = self.checkout.get_session(&session_id).await.map_err(to_status)?;
        Ok(Response::new(pb::GetCheckoutSessionResponse {
            session: Some(session.into_proto()),
        }))
    }

    async fn complete_checkout(
        &self,
        request: Request<pb::CompleteCheckoutRequest>,
    ) -> Result<Response<pb::CompleteCheckoutResponse>, Status> {
        let pb::CompleteCheckoutRequest { token, decision } = request.into_inner();
        let decision = decision_from_proto(decision).map_err(|error| to_status(error.into()))?;
        let Completion {
            session,
            subscription,
            redirect_url,
        } = self
            .checkout
            .complete(&token, decision, Answerer::Api)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CompleteCheckoutResponse {
            session: Some(session.into_proto()),
            subscription: subscription.map(IntoProto::into_proto),
            redirect_url,
        }))
    }
}
