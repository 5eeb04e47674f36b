//! `billing.v1.SubscriptionService`.

use billing_app::subscriptions::{
    ComponentsRequest, ComponentsUpdated, PlanChangeRequest, PlanChanged, PreviewRequest, Provisioned, Purchase,
};
use billing_app::{Access, Subscriptions};
use billing_domain::Reason;
use billing_domain::access::{Caller, Role};
use billing_domain::subscription::Subscription;
use billing_proto::v1 as pb;
use billing_proto::v1::subscription_service_server::SubscriptionService;
use tonic::{Request, Response, Status};

use super::status::{invalid, refused, to_status};
use super::{caller, context, idempotent};
use crate::convert::{
    IntoProto, cancel_timing_from_proto, change_timing_from_proto, components_from_proto, list_filter_from_proto,
    page_params, proration_from_proto, purchase_from_proto, timestamp_to_proto,
};

pub struct SubscriptionGrpc {
    subscriptions: Subscriptions,
    access: Access,
}

impl SubscriptionGrpc {
    pub fn new(subscriptions: Subscriptions, access: Access) -> Self {
        SubscriptionGrpc { subscriptions, access }
    }

    /// The caller, after checking the subscription the request names is
    /// theirs (another tenant's is NOT_FOUND).
    async fn subscription_caller<T>(&self, request: &Request<T>, subscription_id: &str) -> Result<Caller, Status> {
        let caller = caller(request)?;
        self.access
            .subscription(&caller, subscription_id)
            .await
            .map_err(to_status)?;
        Ok(caller)
    }

    /// The caller, after checking a purchase for `business_id` is theirs to
    /// make; sponsored grants are the platform's or the directory's.
    async fn purchase_caller<T>(
        &self,
        request: &Request<T>,
        business_id: &str,
        sponsored: bool,
    ) -> Result<Caller, Status> {
        let caller = caller(request)?;
        if sponsored && caller.role() == Role::Business {
            return Err(refused(
                Reason::PermissionDenied,
                "a business token may not grant a sponsored subscription",
            ));
        }
        self.access.business(&caller, business_id).await.map_err(to_status)?;
        Ok(caller)
    }
}

fn provisioned(value: Provisioned) -> pb::ProvisionBusinessResponse {
    pb::ProvisionBusinessResponse {
        business: Some(value.business.into_proto()),
        default_subscriptions: value
            .default_subscriptions
            .into_iter()
            .map(IntoProto::into_proto)
            .collect(),
    }
}

fn purchased(value: Purchase) -> pb::CreateSubscriptionResponse {
    pb::CreateSubscriptionResponse {
        subscription: Some(value.subscription.into_proto()),
        bundled_subscriptions: value
            .bundled_subscriptions
            .into_iter()
            .map(IntoProto::into_proto)
            .collect(),
        invoice: value.invoice.map(IntoProto::into_proto),
    }
}

fn plan_changed(value: PlanChanged) -> pb::ChangePlanResponse {
    pb::ChangePlanResponse {
        subscription: Some(value.subscription.into_proto()),
        effective_time: Some(timestamp_to_proto(value.effective_time)),
        invoice: value.invoice.map(IntoProto::into_proto),
    }
}

fn components_updated(value: ComponentsUpdated) -> pb::UpdateComponentsResponse {
    pb::UpdateComponentsResponse {
        subscription: Some(value.subscription.into_proto()),
        invoice: value.invoice.map(IntoProto::into_proto),
    }
}

fn canceled(value: Subscription) -> pb::CancelResponse {
    pb::CancelResponse {
        subscription: Some(value.into_proto()),
    }
}

fn reactivated(value: Subscription) -> pb::ReactivateResponse {
    pb::ReactivateResponse {
        subscription: Some(value.into_proto()),
    }
}

#[tonic::async_trait]
impl SubscriptionService for SubscriptionGrpc {
    async fn provision_business(
        &self,
        request: Request<pb::ProvisionBusinessRequest>,
    ) -> Result<Response<pb::ProvisionBusinessResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        self.access
            .provisioning(&caller, &request.business_id, &request.directory_id)
            .await
            .map_err(to_status)?;
        let context = context(&caller, &request.request_id, &request);
        let pb::ProvisionBusinessRequest {
            request_id: _,
            business_id,
            directory_id,
            buyer_id,
        } = request;
        idempotent(provisioned, |encode| {
            self.subscriptions
                .provision_business(&context, &business_id, &directory_id, &buyer_id, encode)
        })
        .await
    }

    async fn create_subscription(
        &self,
        request: Request<pb::CreateSubscriptionRequest>,
    ) -> Result<Response<pb::CreateSubscriptionResponse>, Status> {
        let (business_id, sponsored) = (request.get_ref().business_id.clone(), request.get_ref().sponsored);
        let caller = self.purchase_caller(&request, &business_id, sponsored).await?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        let purchase = purchase_from_proto(request);
        idempotent(purchased, |encode| {
            self.subscriptions.create_subscription(&context, &purchase, encode)
        })
        .await
    }

    async fn get_subscription(
        &self,
        request: Request<pb::GetSubscriptionRequest>,
    ) -> Result<Response<pb::GetSubscriptionResponse>, Status> {
        self.subscription_caller(&request, &request.get_ref().subscription_id)
            .await?;
        let pb::GetSubscriptionRequest { subscription_id } = request.into_inner();
        let subscription = self
            .subscriptions
            .get_subscription(&subscription_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::GetSubscriptionResponse {
            subscription: Some(subscription.into_proto()),
        }))
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Result<Response<pb::ListSubscriptionsResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListSubscriptionsRequest {
            business_id,
            directory_id,
            states,
            offering_code,
            active_only,
            page_size,
            page_token,
        } = request.into_inner();
        let (business_id, directory_id) = self
            .access
            .list_filter(&caller, business_id, directory_id)
            .await
            .map_err(to_status)?;
        let filter =
            list_filter_from_proto(business_id, directory_id, &states, offering_code, active_only).map_err(invalid)?;
        let page = self
            .subscriptions
            .list_subscriptions(&filter, &page_params(page_size, page_token))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: page.items.into_iter().map(IntoProto::into_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn change_plan(
        &self,
        request: Request<pb::ChangePlanRequest>,
    ) -> Result<Response<pb::ChangePlanResponse>, Status> {
        let caller = self
            .subscription_caller(&request, &request.get_ref().subscription_id)
            .await?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        let pb::ChangePlanRequest {
            request_id: _,
            subscription_id,
            offering_code,
            timing,
            proration,
            etag,
        } = request;
        let change = PlanChangeRequest {
            subscription_id,
            offering_code,
            timing: change_timing_from_proto(timing).map_err(invalid)?,
            prorate: proration_from_proto(proration).map_err(invalid)?,
            etag,
        };
        idempotent(plan_changed, |encode| {
            self.subscriptions.change_plan(&context, &change, encode)
        })
        .await
    }

    async fn update_components(
        &self,
        request: Request<pb::UpdateComponentsRequest>,
    ) -> Result<Response<pb::UpdateComponentsResponse>, Status> {
        let caller = self
            .subscription_caller(&request, &request.get_ref().subscription_id)
            .await?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        let pb::UpdateComponentsRequest {
            request_id: _,
            subscription_id,
            components,
            etag,
        } = request;
        let update = ComponentsRequest {
            subscription_id,
            components: components_from_proto(components),
            etag,
        };
        idempotent(components_updated, |encode| {
            self.subscriptions.update_components(&context, &update, encode)
        })
        .await
    }

    async fn cancel(&self, request: Request<pb::CancelRequest>) -> Result<Response<pb::CancelResponse>, Status> {
        let caller = self
            .subscription_caller(&request, &request.get_ref().subscription_id)
            .await?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        let pb::CancelRequest {
            request_id: _,
            subscription_id,
            timing,
            reason,
            etag,
        } = request;
        let timing = cancel_timing_from_proto(timing).map_err(invalid)?;
        idempotent(canceled, |encode| {
            self.subscriptions
                .cancel(&context, &subscription_id, timing, &reason, &etag, encode)
        })
        .await
    }

    async fn reactivate(
        &self,
        request: Request<pb::ReactivateRequest>,
    ) -> Result<Response<pb::ReactivateResponse>, Status> {
        let caller = self
            .subscription_caller(&request, &request.get_ref().subscription_id)
            .await?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        let pb::ReactivateRequest {
            request_id: _,
            subscription_id,
            etag,
        } = request;
        idempotent(reactivated, |encode| {
            self.subscriptions.reactivate(&context, &subscription_id, &etag, encode)
        })
        .await
    }

    async fn preview_invoice(
        &self,
        request: Request<pb::PreviewInvoiceRequest>,
    ) -> Result<Response<pb::PreviewInvoiceResponse>, Status> {
        match &request.get_ref().change {
            Some(pb::preview_invoice_request::Change::CreateSubscription(create)) => {
                let (business_id, sponsored) = (create.business_id.clone(), create.sponsored);
                self.purchase_caller(&request, &business_id, sponsored).await?;
            }
            Some(pb::preview_invoice_request::Change::ChangePlan(pb::ChangePlanRequest {
                subscription_id, ..
            }))
            | Some(pb::preview_invoice_request::Change::UpdateComponents(pb::UpdateComponentsRequest {
                subscription_id,
                ..
            })) => {
                self.subscription_caller(&request, subscription_id).await?;
            }
            None => {}
        }
        let pb::PreviewInvoiceRequest { change } = request.into_inner();
        let preview = match change {
            Some(pb::preview_invoice_request::Change::CreateSubscription(create)) => {
                PreviewRequest::Purchase(purchase_from_proto(create))
            }
            Some(pb::preview_invoice_request::Change::ChangePlan(change)) => {
                let pb::ChangePlanRequest {
                    request_id: _,
                    subscription_id,
                    offering_code,
                    timing,
                    proration,
                    etag: _,
                } = change;
                PreviewRequest::PlanChange(PlanChangeRequest {
                    subscription_id,
                    offering_code,
                    timing: change_timing_from_proto(timing).map_err(|error| invalid(error.prefixed("change_plan")))?,
                    prorate: proration_from_proto(proration).map_err(|error| invalid(error.prefixed("change_plan")))?,
                    etag: String::new(),
                })
            }
            Some(pb::preview_invoice_request::Change::UpdateComponents(update)) => {
                let pb::UpdateComponentsRequest {
                    request_id: _,
                    subscription_id,
                    components,
                    etag: _,
                } = update;
                PreviewRequest::Components(ComponentsRequest {
                    subscription_id,
                    components: components_from_proto(components),
                    etag: String::new(),
                })
            }
            None => {
                return Err(invalid(billing_domain::DomainError::field(
                    "change",
                    billing_domain::Reason::FieldInvalid,
                    "set create_subscription, change_plan or update_components",
                )));
            }
        };
        let draft = self.subscriptions.preview_invoice(&preview).await.map_err(to_status)?;
        Ok(Response::new(pb::PreviewInvoiceResponse {
            invoice: draft.map(IntoProto::into_proto),
        }))
    }

    async fn check_entitlement(
        &self,
        request: Request<pb::CheckEntitlementRequest>,
    ) -> Result<Response<pb::CheckEntitlementResponse>, Status> {
        let caller = caller(&request)?;
        let pb::CheckEntitlementRequest {
            business_id,
            product_code,
        } = request.into_inner();
        self.access.business(&caller, &business_id).await.map_err(to_status)?;
        let entitlement = self
            .subscriptions
            .check_entitlement(&business_id, &product_code)
            .await
            .map_err(to_status)?;
        Ok(Response::new(entitlement.into_proto()))
    }

    async fn list_subscription_history(
        &self,
        request: Request<pb::ListSubscriptionHistoryRequest>,
    ) -> Result<Response<pb::ListSubscriptionHistoryResponse>, Status> {
        self.subscription_caller(&request, &request.get_ref().subscription_id)
            .await?;
        let pb::ListSubscriptionHistoryRequest {
            subscription_id,
            page_size,
            page_token,
        } = request.into_inner();
        let page = self
            .subscriptions
            .list_history(&subscription_id, &page_params(page_size, page_token))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListSubscriptionHistoryResponse {
            entries: page.items.into_iter().map(IntoProto::into_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
