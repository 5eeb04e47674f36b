//! `billing.v1.TestClockService`: registered only with `clock.mode = "manual"`.

use std::sync::Arc;

use billing_app::TestClock;
use billing_domain::{DomainError, Reason};
use billing_proto::v1 as pb;
use billing_proto::v1::test_clock_service_server::TestClockService;
use tonic::{Request, Response, Status};

use super::status::{invalid, to_status};
use crate::convert::{timestamp_from_proto, timestamp_to_proto};

pub struct TestClockGrpc {
    clock: Arc<TestClock>,
}

impl TestClockGrpc {
    pub fn new(clock: Arc<TestClock>) -> Self {
        TestClockGrpc { clock }
    }
}

#[tonic::async_trait]
impl TestClockService for TestClockGrpc {
    async fn get_time(&self, _request: Request<pb::GetTimeRequest>) -> Result<Response<pb::GetTimeResponse>, Status> {
        Ok(Response::new(pb::GetTimeResponse {
            time: Some(timestamp_to_proto(self.clock.now())),
        }))
    }

    async fn advance_clock(
        &self,
        request: Request<pb::AdvanceClockRequest>,
    ) -> Result<Response<pb::AdvanceClockResponse>, Status> {
        let pb::AdvanceClockRequest { to_time } = request.into_inner();
        let to_time = to_time
            .ok_or_else(|| DomainError::field("to_time", Reason::FieldInvalid, "is required"))
            .and_then(|time| timestamp_from_proto("to_time", time))
            .map_err(invalid)?;
        let stats = self.clock.advance_to(to_time).await.map_err(to_status)?;
        Ok(Response::new(pb::AdvanceClockResponse {
            time: Some(timestamp_to_proto(self.clock.now())),
            jobs_run: i32::try_from(stats.succeeded).unwrap_or(i32::MAX),
            jobs_failed: i32::try_from(stats.failed).unwrap_or(i32::MAX),
        }))
    }
}
