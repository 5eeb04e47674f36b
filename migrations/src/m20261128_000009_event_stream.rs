//! The event stream: each event's directory (for scoped readers and
//! webhook endpoints) and its published sequence, assigned in commit order
//! by one publisher at a time, so a reader following the sequence never
//! skips an event whose transaction committed late.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000009_event_stream"
    }
}

#[derive(DeriveIden)]
enum OutboxEvents {
    Table,
    DirectoryId,
    PublishedSequence,
}

const PUBLISHED_INDEX: &str = "outbox_events_published_sequence";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(OutboxEvents::Table)
                    .add_column(
                        ColumnDef::new(OutboxEvents::DirectoryId)
                            .string()
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(OutboxEvents::Table)
                    .add_column(ColumnDef::new(OutboxEvents::PublishedSequence).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PUBLISHED_INDEX)
                    .table(OutboxEvents::Table)
                    .col(OutboxEvents::PublishedSequence)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(PUBLISHED_INDEX)
                    .table(OutboxEvents::Table)
                    .to_owned(),
            )
            .await?;
        for column in [OutboxEvents::PublishedSequence, OutboxEvents::DirectoryId] {
            manager
                .alter_table(Table::alter().table(OutboxEvents::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
