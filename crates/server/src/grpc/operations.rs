//! `billing.v1.OperationsService`: failing background work, for operators
//! (service tokens only, by the gate's rules).

use billing_app::{Operations, PageParams};
use billing_domain::{DomainError, Reason};
use billing_proto::v1 as pb;
use billing_proto::v1::operations_service_server::OperationsService;
use billing_storage::{FailingWork, WorkKind};
use tonic::{Request, Response, Status};

use super::status::{invalid, to_status};
use crate::convert::timestamp_to_proto;

pub struct OperationsGrpc {
    operations: Operations,
}

impl OperationsGrpc {
    pub fn new(operations: Operations) -> Self {
        OperationsGrpc { operations }
    }
}

#[tonic::async_trait]
impl OperationsService for OperationsGrpc {
    async fn list_failing_work(
        &self,
        request: Request<pb::ListFailingWorkRequest>,
    ) -> Result<Response<pb::ListFailingWorkResponse>, Status> {
        let pb::ListFailingWorkRequest {
            kind,
            page_size,
            page_token,
        } = request.into_inner();
        let kind = match pb::WorkKind::try_from(kind) {
            Ok(pb::WorkKind::Unspecified) => None,
            _ => Some(kind_from_proto(kind).map_err(invalid)?),
        };
        let page = self
            .operations
            .list_failing(kind, &PageParams { page_size, page_token })
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListFailingWorkResponse {
            work: page.items.iter().map(work_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn retry_work(
        &self,
        request: Request<pb::RetryWorkRequest>,
    ) -> Result<Response<pb::RetryWorkResponse>, Status> {
        // Retrying is idempotent by nature (it makes the work due now), so
        // `request_id` needs no stored outcome.
        let pb::RetryWorkRequest {
            request_id: _,
            kind,
            id,
        } = request.into_inner();
        let kind = kind_from_proto(kind).map_err(invalid)?;
        if id.is_empty() {
            return Err(invalid(DomainError::field("id", Reason::FieldInvalid, "is required")));
        }
        let retried = self.operations.retry(kind, &id).await.map_err(to_status)?;
        Ok(Response::new(pb::RetryWorkResponse {
            work: retried.as_ref().map(work_to_proto),
        }))
    }
}

fn kind_from_proto(kind: i32) -> Result<WorkKind, DomainError> {
    match pb::WorkKind::try_from(kind) {
        Ok(pb::WorkKind::Job) => Ok(WorkKind::Job),
        Ok(pb::WorkKind::WebhookDelivery) => Ok(WorkKind::WebhookDelivery),
        Ok(pb::WorkKind::ProviderOperation) => Ok(WorkKind::ProviderOperation),
        _ => Err(DomainError::field(
            "kind",
            Reason::FieldInvalid,
            "must be WORK_KIND_JOB, WORK_KIND_WEBHOOK_DELIVERY or WORK_KIND_PROVIDER_OPERATION",
        )),
    }
}

fn work_to_proto(work: &FailingWork) -> pb::FailingWork {
    let kind = match work.kind {
        WorkKind::Job => pb::WorkKind::Job,
        WorkKind::WebhookDelivery => pb::WorkKind::WebhookDelivery,
        WorkKind::ProviderOperation => pb::WorkKind::ProviderOperation,
    };
    pb::FailingWork {
        kind: kind.into(),
        id: work.id.clone(),
        subscription_id: work.subscription_id.clone().unwrap_or_default(),
        status: if work.dead {
            pb::WorkStatus::Dead
        } else {
            pb::WorkStatus::Retrying
        }
        .into(),
        attempts: work.attempts,
        last_error: work.last_error.clone(),
        next_attempt_time: work.next_attempt_time.map(timestamp_to_proto),
    }
}
