//! Readers of the event stream filter by business, directory or
//! subscription and read in published order: one index for each, so a page
//! costs the same at a million events as at a thousand (the published
//! sequence alone made Postgres walk every later event of other tenants).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000011_event_reader_indexes"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum OutboxEvents {
    Table,
    BusinessId,
    DirectoryId,
    SubscriptionId,
    PublishedSequence,
}

const INDEXES: [(&str, OutboxEvents); 3] = [
    ("idx_outbox_events_business_published", OutboxEvents::BusinessId),
    ("idx_outbox_events_directory_published", OutboxEvents::DirectoryId),
    ("idx_outbox_events_subscription_published", OutboxEvents::SubscriptionId),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, column) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(OutboxEvents::Table)
                        .col(column)
                        .col(OutboxEvents::PublishedSequence)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(OutboxEvents::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}
