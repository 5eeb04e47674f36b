//! The inbound webhook inbox (raw, verified deliveries, processed by a job),
//! the outbox of operations owed to a provider that is the billing engine,
//! and the last provider event applied to each mirrored subscription.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    integer, string, string_null, text, text_null, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000005_inbox"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Inbound webhooks and outbound provider operations queue alike: a
        // row per delivery or operation, claimed under a lease, retried with
        // backoff, dead after the last attempt.
        for (table, index) in [
            (Queue::WebhookInbox, "idx_webhook_inbox_due"),
            (Queue::ProviderOutbox, "idx_provider_outbox_due"),
        ] {
            manager
                .create_table(
                    Table::create()
                        .table(table)
                        // Inbox: `{provider}:{event id}`, so a redelivery hits it.
                        .col(string(WebhookInbox::Id).primary_key())
                        .col(string(WebhookInbox::Provider))
                        // Inbox: the event id; outbox: the subscription id.
                        .col(string(WebhookInbox::EventId))
                        // Inbox: the event type; outbox: the operation.
                        .col(string(WebhookInbox::EventType))
                        .col(text(WebhookInbox::Payload))
                        .col(timestamp_with_time_zone(WebhookInbox::ReceivedTime))
                        .col(string(WebhookInbox::Status))
                        .col(integer(WebhookInbox::Attempts))
                        .col(timestamp_with_time_zone_null(WebhookInbox::NextAttemptTime))
                        .col(timestamp_with_time_zone_null(WebhookInbox::LeaseExpires))
                        .col(text_null(WebhookInbox::LastError))
                        .col(string_null(WebhookInbox::Outcome))
                        .col(timestamp_with_time_zone_null(WebhookInbox::ProcessedTime))
                        .to_owned(),
                )
                .await?;
            manager
                .create_index(
                    Index::create()
                        .name(index)
                        .table(table)
                        .col(WebhookInbox::Status)
                        .col(WebhookInbox::NextAttemptTime)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ProviderStates::Table)
                    .col(string(ProviderStates::SubscriptionId).primary_key())
                    .col(string(ProviderStates::Provider))
                    .col(timestamp_with_time_zone(ProviderStates::LastEventTime))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ProviderStates::Table).to_owned())
            .await?;
        for table in [Queue::ProviderOutbox, Queue::WebhookInbox] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, DeriveIden)]
enum Queue {
    WebhookInbox,
    ProviderOutbox,
}

#[derive(DeriveIden)]
enum WebhookInbox {
    Id,
    Provider,
    EventId,
    EventType,
    Payload,
    ReceivedTime,
    Status,
    Attempts,
    NextAttemptTime,
    LeaseExpires,
    LastError,
    Outcome,
    ProcessedTime,
}

#[derive(DeriveIden)]
enum ProviderStates {
    Table,
    SubscriptionId,
    Provider,
    LastEventTime,
}
