//! `billing.v1.CheckoutService`.

use billing_app::checkout::{Answerer, Completion};
use billing_app::{Access, Checkout};
use billing_proto::v1 as pb;
use billing_proto::v1::checkout_service_server::CheckoutService;
use tonic::{Request, Response, Status};

use super::status::to_status;
use super::{caller, context};
use crate::convert::{IntoProto, checkout_draft_from_proto, decision_from_proto, timestamp_to_proto};

pub struct CheckoutGrpc {
    checkout: Checkout,
    access: Access,
}

impl CheckoutGrpc {
    pub fn new(checkout: Checkout, access: Access) -> Self {
        CheckoutGrpc { checkout, access }
    }
}

#[tonic::async_trait]
impl CheckoutService for CheckoutGrpc {
    async fn create_checkout_session(
        &self,
        request: Request<pb::CreateCheckoutSessionRequest>,
    ) -> Result<Response<pb::CreateCheckoutSessionResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        self.access
            .business(&caller, &request.business_id)
            .await
            .map_err(to_status)?;
        if !request.subscription_id.is_empty() {
            self.access
                .subscription(&caller, &request.subscription_id)
                .await
                .map_err(to_status)?;
        }
        let context = context(&caller, &request.request_id, &request);
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
        let caller = caller(&request)?;
        let pb::GetCheckoutSessionRequest { session_id } = request.into_inner();
        self.access
            .checkout_session(&caller, &session_id)
            .await
            .map_err(to_status)?;
        let session = self.checkout.get_session(&session_id).await.map_err(to_status)?;
        Ok(Response::new(pb::GetCheckoutSessionResponse {
            session: Some(session.into_proto()),
        }))
    }

    async fn complete_checkout(
        &self,
        request: Request<pb::CompleteCheckoutRequest>,
    ) -> Result<Response<pb::CompleteCheckoutResponse>, Status> {
        let caller = caller(&request)?;
        let pb::CompleteCheckoutRequest { token, decision } = request.into_inner();
        self.access.checkout_token(&caller, &token).await.map_err(to_status)?;
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
