//! The answer a request gives as committed, before the charge it waits for
//! settles: what a repeat returns if the first attempt died.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::blob_null;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000007_idempotency_provisional"
    }
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    ProvisionalResponse,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(blob_null(IdempotencyKeys::ProvisionalResponse))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .drop_column(IdempotencyKeys::ProvisionalResponse)
                    .to_owned(),
            )
            .await
    }
}
