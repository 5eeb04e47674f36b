//! A change charged now waits beside the subscription for its payment
//! (the plan it would apply, its invoice, its expiry), as JSON.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::json_binary_null;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000008_held_change"
    }
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    HeldChange,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Subscriptions::Table)
                    .add_column(json_binary_null(Subscriptions::HeldChange))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Subscriptions::Table)
                    .drop_column(Subscriptions::HeldChange)
                    .to_owned(),
            )
            .await
    }
}
