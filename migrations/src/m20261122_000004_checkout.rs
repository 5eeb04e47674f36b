//! Checkout sessions: single-use consent tokens (kept only as hashes) and
//! what each one offers.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    json_binary, string, string_null, string_uniq, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000004_checkout"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CheckoutSessions::Table)
                    .col(string(CheckoutSessions::Id).primary_key())
                    .col(string_uniq(CheckoutSessions::TokenHash))
                    .col(string(CheckoutSessions::FormNonce))
                    .col(string(CheckoutSessions::BusinessId))
                    .col(string(CheckoutSessions::BuyerId))
                    .col(string(CheckoutSessions::Kind))
                    .col(string_null(CheckoutSessions::OfferingCode))
                    .col(string_null(CheckoutSessions::SubscriptionId))
                    .col(string_null(CheckoutSessions::CurrencyCode))
                    .col(string_null(CheckoutSessions::CouponCode))
                    .col(json_binary(CheckoutSessions::Components))
                    .col(string(CheckoutSessions::ReturnUrl))
                    .col(string(CheckoutSessions::Status))
                    .col(string_null(CheckoutSessions::Decision))
                    .col(string_null(CheckoutSessions::ResultSubscriptionId))
                    .col(string_null(CheckoutSessions::ErrorReason))
                    .col(string_null(CheckoutSessions::ErrorMessage))
                    .col(timestamp_with_time_zone(CheckoutSessions::CreateTime))
                    .col(timestamp_with_time_zone(CheckoutSessions::ExpireTime))
                    .col(timestamp_with_time_zone_null(CheckoutSessions::DecideTime))
                    .col(timestamp_with_time_zone_null(CheckoutSessions::CompleteTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_checkout_sessions_business_id")
                    .table(CheckoutSessions::Table)
                    .col(CheckoutSessions::BusinessId)
                    .col(CheckoutSessions::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CheckoutSessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum CheckoutSessions {
    Table,
    Id,
    TokenHash,
    FormNonce,
    BusinessId,
    BuyerId,
    Kind,
    OfferingCode,
    SubscriptionId,
    CurrencyCode,
    CouponCode,
    Components,
    ReturnUrl,
    Status,
    Decision,
    ResultSubscriptionId,
    ErrorReason,
    ErrorMessage,
    CreateTime,
    ExpireTime,
    DecideTime,
    CompleteTime,
}
