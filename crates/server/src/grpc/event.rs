//! `billing.v1.EventService`: the event stream, listed or watched, scoped
//! to the caller's tenants.

use std::pin::Pin;
use std::time::Duration;

use billing_app::webhooks::NewEndpoint;
use billing_app::{Access, Events, Webhooks};
use billing_domain::access::{Caller, Scope};
use billing_domain::{DomainError, Reason};
use billing_proto::v1 as pb;
use billing_proto::v1::event_service_server::EventService;
use billing_storage::{DeliveryStatus, Endpoint, EventFilter, PublishedEvent, WebhookDelivery};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::status::{invalid, to_status};
use super::{caller, context, idempotent};
use crate::convert::{json_to_struct, page_params, timestamp_to_proto};

/// How often a watch looks for new events once it has caught up, besides
/// waking at once on Postgres when a commit anywhere wrote events.
const WATCH_POLL: Duration = Duration::from_millis(200);
/// Events read per round trip while catching up.
const WATCH_BATCH: u64 = 200;

pub struct EventGrpc {
    events: Events,
    webhooks: Webhooks,
    access: Access,
    /// Cancelled when the server stops taking calls: open watches end, so
    /// their clients resume on another replica.
    stopping: CancellationToken,
    /// Bumped whenever a commit anywhere wrote events (Postgres NOTIFY);
    /// never on SQLite, where watches poll.
    wakeups: tokio::sync::watch::Receiver<u64>,
}

impl EventGrpc {
    pub fn new(
        events: Events,
        webhooks: Webhooks,
        access: Access,
        stopping: CancellationToken,
        wakeups: tokio::sync::watch::Receiver<u64>,
    ) -> Self {
        EventGrpc {
            events,
            webhooks,
            access,
            stopping,
            wakeups,
        }
    }

    /// The directory whose endpoints the caller manages: its own for a
    /// directory token, `None` (every one) for a service.
    fn endpoint_scope(caller: &Caller) -> Option<String> {
        match caller.scope() {
            Scope::Directory(own) => Some(own.as_str().to_owned()),
            Scope::Platform | Scope::Business(_) => None,
        }
    }

    /// The filter as asked, narrowed to what the caller may see.
    async fn scoped(
        &self,
        caller: &Caller,
        business_id: String,
        directory_id: String,
        subscription_id: String,
        types: Vec<String>,
    ) -> Result<EventFilter, Status> {
        let (business_id, directory_id) = self
            .access
            .list_filter(caller, business_id, directory_id)
            .await
            .map_err(to_status)?;
        if !subscription_id.is_empty() {
            self.access
                .subscription(caller, &subscription_id)
                .await
                .map_err(to_status)?;
        }
        Ok(EventFilter {
            business_id,
            directory_id,
            subscription_id,
            types,
        })
    }
}

fn event_to_proto(event: PublishedEvent) -> pb::Event {
    pb::Event {
        id: event.id,
        sequence: event.sequence,
        r#type: event.event_type,
        occur_time: Some(timestamp_to_proto(event.occur_time)),
        business_id: event.business_id,
        directory_id: event.directory_id,
        subscription_id: event.subscription_id,
        data: json_to_struct(event.payload),
    }
}

fn endpoint_to_proto(endpoint: &Endpoint) -> pb::WebhookEndpoint {
    pb::WebhookEndpoint {
        id: endpoint.id.clone(),
        url: endpoint.url.clone(),
        event_types: endpoint.event_types.clone(),
        directory_id: endpoint.directory_id.clone().unwrap_or_default(),
        description: endpoint.description.clone(),
        create_time: Some(timestamp_to_proto(endpoint.create_time)),
        previous_secret_expire_time: endpoint.previous_secret_expire_time.map(timestamp_to_proto),
    }
}

fn created(endpoint: Endpoint) -> pb::CreateWebhookEndpointResponse {
    pb::CreateWebhookEndpointResponse {
        endpoint: Some(endpoint_to_proto(&endpoint)),
        signing_secret: endpoint.secret,
    }
}

fn rotated(endpoint: Endpoint) -> pb::RotateWebhookSecretResponse {
    pb::RotateWebhookSecretResponse {
        endpoint: Some(endpoint_to_proto(&endpoint)),
        signing_secret: endpoint.secret,
    }
}

fn status_to_proto(status: DeliveryStatus) -> pb::DeliveryStatus {
    match status {
        DeliveryStatus::Pending => pb::DeliveryStatus::Pending,
        DeliveryStatus::Delivered => pb::DeliveryStatus::Delivered,
        DeliveryStatus::Failed => pb::DeliveryStatus::Failed,
    }
}

fn delivery_to_proto(delivery: WebhookDelivery) -> pb::Delivery {
    pb::Delivery {
        id: delivery.id,
        endpoint_id: delivery.endpoint_id,
        event_id: delivery.event_id,
        event_sequence: delivery.event_sequence,
        subscription_id: delivery.subscription_id,
        status: status_to_proto(delivery.status).into(),
        attempts: delivery.attempts,
        next_attempt_time: delivery.next_attempt_time.map(timestamp_to_proto),
        last_error: delivery.last_error.unwrap_or_default(),
        response_status: delivery.response_status.unwrap_or_default(),
        create_time: Some(timestamp_to_proto(delivery.create_time)),
        finish_time: delivery.finish_time.map(timestamp_to_proto),
    }
}

fn required(field: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        return Err(invalid(DomainError::field(field, Reason::FieldInvalid, "is required")));
    }
    Ok(())
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventService for EventGrpc {
    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListEventsRequest {
            after_sequence,
            business_id,
            directory_id,
            subscription_id,
            types,
            page_size,
            page_token,
        } = request.into_inner();
        let filter = self
            .scoped(&caller, business_id, directory_id, subscription_id, types)
            .await?;
        let page = self
            .events
            .list(&filter, after_sequence, &page_params(page_size, page_token))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListEventsResponse {
            events: page.items.into_iter().map(event_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    type WatchEventsStream = WatchStream;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let caller = caller(&request)?;
        let pb::WatchEventsRequest {
            after_sequence,
            business_id,
            directory_id,
            subscription_id,
            types,
        } = request.into_inner();
        let filter = self
            .scoped(&caller, business_id, directory_id, subscription_id, types)
            .await?;
        Events::check(&filter, after_sequence).map_err(to_status)?;
        let (sender, receiver) = tokio::sync::mpsc::channel(WATCH_BATCH as usize);
        let events = self.events.clone();
        let stopping = self.stopping.clone();
        let mut wakeups = self.wakeups.clone();
        tokio::spawn(async move {
            let mut after = after_sequence;
            loop {
                let batch = match events.next(&filter, after, WATCH_BATCH).await {
                    Ok(batch) => batch,
                    Err(error) => {
                        // The database went away: the client resumes later
                        // from the last sequence it received.
                        let _ = sender.send(Err(to_status(error))).await;
                        return;
                    }
                };
                let caught_up = (batch.len() as u64) < WATCH_BATCH;
                for event in batch {
                    after = event.sequence;
                    let item = pb::WatchEventsResponse {
                        event: Some(event_to_proto(event)),
                    };
                    if sender.send(Ok(item)).await.is_err() {
                        return;
                    }
                }
                if caught_up {
                    tokio::select! {
                        () = sender.closed() => return,
                        () = stopping.cancelled() => return,
                        _ = wakeups.changed() => {}
                        () = tokio::time::sleep(WATCH_POLL) => {}
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn create_webhook_endpoint(
        &self,
        request: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Result<Response<pb::CreateWebhookEndpointResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        let pb::CreateWebhookEndpointRequest {
            request_id: _,
            url,
            event_types,
            directory_id,
            description,
        } = request;
        if !directory_id.is_empty() {
            self.access.directory(&caller, &directory_id).await.map_err(to_status)?;
        }
        let directory_id = Self::endpoint_scope(&caller).or(Some(directory_id));
        idempotent(created, |encode| {
            self.webhooks.create_endpoint(
                &context,
                NewEndpoint {
                    url,
                    event_types,
                    directory_id,
                    description,
                },
                encode,
            )
        })
        .await
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Result<Response<pb::ListWebhookEndpointsResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListWebhookEndpointsRequest {
            directory_id,
            page_size,
            page_token,
        } = request.into_inner();
        if !directory_id.is_empty() {
            self.access.directory(&caller, &directory_id).await.map_err(to_status)?;
        }
        let scope = Self::endpoint_scope(&caller).or((!directory_id.is_empty()).then_some(directory_id));
        let page = self
            .webhooks
            .list_endpoints(scope.as_deref(), &page_params(page_size, page_token))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListWebhookEndpointsResponse {
            endpoints: page.items.iter().map(endpoint_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<pb::DeleteWebhookEndpointRequest>,
    ) -> Result<Response<pb::DeleteWebhookEndpointResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        required("endpoint_id", &request.endpoint_id)?;
        let scope = Self::endpoint_scope(&caller);
        idempotent(
            |()| pb::DeleteWebhookEndpointResponse {},
            // The empty reply is stored as no bytes, which the use case does itself.
            |_empty| {
                self.webhooks
                    .delete_endpoint(&context, &request.endpoint_id, scope.as_deref())
            },
        )
        .await
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        required("endpoint_id", &request.endpoint_id)?;
        let scope = Self::endpoint_scope(&caller);
        idempotent(rotated, |encode| {
            self.webhooks
                .rotate_secret(&context, &request.endpoint_id, scope.as_deref(), encode)
        })
        .await
    }

    async fn list_deliveries(
        &self,
        request: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let caller = caller(&request)?;
        let pb::ListDeliveriesRequest {
            endpoint_id,
            status,
            page_size,
            page_token,
        } = request.into_inner();
        required("endpoint_id", &endpoint_id)?;
        let status = match pb::DeliveryStatus::try_from(status) {
            Ok(pb::DeliveryStatus::Unspecified) => None,
            Ok(pb::DeliveryStatus::Pending) => Some(DeliveryStatus::Pending),
            Ok(pb::DeliveryStatus::Delivered) => Some(DeliveryStatus::Delivered),
            Ok(pb::DeliveryStatus::Failed) => Some(DeliveryStatus::Failed),
            Err(_) => {
                return Err(invalid(DomainError::field(
                    "status",
                    Reason::FieldInvalid,
                    "is not a delivery status",
                )));
            }
        };
        let page = self
            .webhooks
            .list_deliveries(
                &endpoint_id,
                Self::endpoint_scope(&caller).as_deref(),
                status,
                &page_params(page_size, page_token),
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: page.items.into_iter().map(delivery_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn redeliver_events(
        &self,
        request: Request<pb::RedeliverEventsRequest>,
    ) -> Result<Response<pb::RedeliverEventsResponse>, Status> {
        let caller = caller(&request)?;
        let request = request.into_inner();
        let context = context(&caller, &request.request_id, &request);
        let pb::RedeliverEventsRequest {
            request_id: _,
            endpoint_id,
            event_ids,
            after_sequence,
            through_sequence,
        } = request;
        required("endpoint_id", &endpoint_id)?;
        let range = (through_sequence > 0).then_some((after_sequence, through_sequence));
        let scheduled = |count: u64| pb::RedeliverEventsResponse {
            scheduled: i64::try_from(count).unwrap_or(i64::MAX),
        };
        let scope = Self::endpoint_scope(&caller);
        idempotent(scheduled, |encode| {
            self.webhooks
                .redeliver(&context, &endpoint_id, scope.as_deref(), &event_ids, range, encode)
        })
        .await
    }
}

/// Turns Postgres notifications of commits that wrote events into bumps of
/// `wakeups`, until `stopping`; reconnects after a lost connection (watches
/// poll meanwhile). On SQLite it only waits for `stopping`.
pub async fn listen_for_events(
    store: billing_storage::Store,
    wakeups: tokio::sync::watch::Sender<u64>,
    stopping: CancellationToken,
) {
    loop {
        let listener = tokio::select! {
            () = stopping.cancelled() => return,
            listener = store.listen_events() => listener,
        };
        let mut listener = match listener {
            Ok(Some(listener)) => listener,
            // SQLite: nothing to listen to; the sender stays (a dropped one
            // would wake every watch at once, forever) until the end.
            Ok(None) => return stopping.cancelled().await,
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for events; watches poll");
                tokio::select! {
                    () = stopping.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                woke = listener.next() => match woke {
                    Ok(()) => wakeups.send_modify(|count| *count = count.wrapping_add(1)),
                    Err(error) => {
                        tracing::warn!(error = %error, "event notifications lost; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}
