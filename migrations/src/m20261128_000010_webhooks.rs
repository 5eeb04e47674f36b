//! Outgoing webhooks: the endpoints events are sent to (with their signing
//! secrets and how far they have been fanned out) and one delivery per
//! endpoint and event, claimed under a lease and retried on a schedule.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, integer, integer_null, json_binary, string, string_null, text, text_null, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000010_webhooks"
    }
}

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    Url,
    EventTypes,
    DirectoryId,
    Description,
    Secret,
    PreviousSecret,
    PreviousSecretExpireTime,
    Cursor,
    CreateTime,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    EndpointId,
    EventId,
    EventSequence,
    SubscriptionId,
    Status,
    Attempts,
    NextAttemptTime,
    LeaseExpires,
    LastError,
    ResponseStatus,
    CreateTime,
    FinishTime,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(string(WebhookEndpoints::Id).primary_key())
                    .col(text(WebhookEndpoints::Url))
                    .col(json_binary(WebhookEndpoints::EventTypes))
                    .col(string_null(WebhookEndpoints::DirectoryId))
                    .col(text(WebhookEndpoints::Description))
                    .col(string(WebhookEndpoints::Secret))
                    .col(string_null(WebhookEndpoints::PreviousSecret))
                    .col(timestamp_with_time_zone_null(
                        WebhookEndpoints::PreviousSecretExpireTime,
                    ))
                    // The last published event fanned out to it.
                    .col(big_integer(WebhookEndpoints::Cursor))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(string(WebhookDeliveries::Id).primary_key())
                    .col(string(WebhookDeliveries::EndpointId))
                    .col(string(WebhookDeliveries::EventId))
                    .col(big_integer(WebhookDeliveries::EventSequence))
                    .col(string(WebhookDeliveries::SubscriptionId))
                    .col(string(WebhookDeliveries::Status))
                    .col(integer(WebhookDeliveries::Attempts))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::NextAttemptTime))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::LeaseExpires))
                    .col(text_null(WebhookDeliveries::LastError))
                    .col(integer_null(WebhookDeliveries::ResponseStatus))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreateTime))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::FinishTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_event")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::EndpointId)
                    .col(WebhookDeliveries::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptTime)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_order")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::EndpointId)
                    .col(WebhookDeliveries::SubscriptionId)
                    .col(WebhookDeliveries::EventSequence)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(WebhookEndpoints::Table).to_owned())
            .await
    }
}
