//! Products, offerings, directory assignments and coupons.
//!
//! Ids are text (`off_<uuidv7 hex>`), so they sort by creation time and serve
//! as keyset cursors. Lists inside an offering (prices, components, …) are
//! JSON: the offering is always read and written whole.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean, integer, integer_null, json_binary, string, string_null, string_uniq,
    timestamp_with_time_zone, timestamp_with_time_zone_null,
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000001_catalog"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .col(string(Products::Id).primary_key())
                    .col(string_uniq(Products::Code))
                    .col(string(Products::DisplayName))
                    .col(string(Products::Description))
                    .col(timestamp_with_time_zone(Products::CreateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Offerings::Table)
                    .col(string(Offerings::Id).primary_key())
                    .col(string_uniq(Offerings::Code))
                    .col(string(Offerings::DisplayName))
                    .col(string(Offerings::Description))
                    .col(string(Offerings::OfferingType))
                    .col(string(Offerings::Family))
                    .col(json_binary(Offerings::ProductCodes))
                    .col(json_binary(Offerings::Prices))
                    .col(string(Offerings::BillingInterval))
                    .col(string(Offerings::BillingAlignment))
                    .col(integer(Offerings::TrialDays))
                    .col(json_binary(Offerings::BundledOfferingCodes))
                    .col(json_binary(Offerings::Components))
                    .col(string(Offerings::Status))
                    .col(json_binary(Offerings::ProviderRefs))
                    .col(boolean(Offerings::HasSubscriptions))
                    .col(timestamp_with_time_zone(Offerings::CreateTime))
                    .col(timestamp_with_time_zone(Offerings::UpdateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_offerings_status_id")
                    .table(Offerings::Table)
                    .col(Offerings::Status)
                    .col(Offerings::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DirectoryOfferings::Table)
                    .col(string(DirectoryOfferings::DirectoryId))
                    .col(string(DirectoryOfferings::OfferingId))
                    .col(string(DirectoryOfferings::OfferingCode))
                    .col(boolean(DirectoryOfferings::IsDefault))
                    .col(timestamp_with_time_zone(DirectoryOfferings::CreateTime))
                    .col(timestamp_with_time_zone(DirectoryOfferings::UpdateTime))
                    .primary_key(
                        Index::create()
                            .col(DirectoryOfferings::DirectoryId)
                            .col(DirectoryOfferings::OfferingId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_directory_offerings_offering")
                            .from(DirectoryOfferings::Table, DirectoryOfferings::OfferingId)
                            .to(Offerings::Table, Offerings::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Coupons::Table)
                    .col(string(Coupons::Id).primary_key())
                    .col(string_uniq(Coupons::Code))
                    .col(integer_null(Coupons::PercentOff))
                    .col(big_integer_null(Coupons::AmountOffMinor))
                    .col(string_null(Coupons::AmountOffCurrency))
                    .col(string(Coupons::Duration))
                    .col(integer(Coupons::DurationPeriods))
                    .col(big_integer_null(Coupons::MaxRedemptions))
                    .col(big_integer(Coupons::TimesRedeemed))
                    .col(timestamp_with_time_zone_null(Coupons::RedeemBy))
                    .col(json_binary(Coupons::AppliesToOfferingCodes))
                    .col(timestamp_with_time_zone(Coupons::CreateTime))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Coupons::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(DirectoryOfferings::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Offerings::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Products::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
    Code,
    DisplayName,
    Description,
    CreateTime,
}

#[derive(DeriveIden)]
enum Offerings {
    Table,
    Id,
    Code,
    DisplayName,
    Description,
    OfferingType,
    Family,
    ProductCodes,
    Prices,
    BillingInterval,
    BillingAlignment,
    TrialDays,
    BundledOfferingCodes,
    Components,
    Status,
    ProviderRefs,
    HasSubscriptions,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum DirectoryOfferings {
    Table,
    DirectoryId,
    OfferingId,
    OfferingCode,
    IsDefault,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Coupons {
    Table,
    Id,
    Code,
    PercentOff,
    AmountOffMinor,
    AmountOffCurrency,
    Duration,
    DurationPeriods,
    MaxRedemptions,
    TimesRedeemed,
    RedeemBy,
    AppliesToOfferingCodes,
    CreateTime,
}
