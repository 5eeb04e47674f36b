//! `billing.v1.EventService`: the event stream, listed or watched, scoped
//! to the caller's tenants.

use std::pin::Pin;
use std::time::Duration;

use billing_app::{Access, Events};
use billing_domain::access::Caller;
use billing_proto::v1 as pb;
use billing_proto::v1::event_service_server::EventService;
use billing_storage::{EventFilter, PublishedEvent};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::caller;
use super::status::to_status;
use crate::convert::{json_to_struct, page_params, timestamp_to_proto};

/// How often a watch looks for new events once it has caught up; an event
/// committed through any replica reaches every watcher within about this.
const WATCH_POLL: Duration = Duration::from_millis(200);
/// Events read per round trip while catching up.
const WATCH_BATCH: u64 = 200;

pub struct EventGrpc {
    events: Events,
    access: Access,
    /// Cancelled when the server stops taking calls: open watches end, so
    /// their clients resume on another replica.
    stopping: CancellationToken,
}

impl EventGrpc {
    pub fn new(events: Events, access: Access, stopping: CancellationToken) -> Self {
        EventGrpc {
            events,
            access,
            stopping,
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
                        () = tokio::time::sleep(WATCH_POLL) => {}
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
