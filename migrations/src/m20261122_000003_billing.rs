//! Invoices, payment methods, account credit, and the invoice-number
//! counter.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, integer, json_binary, string, string_uniq, timestamp_with_time_zone,
    timestamp_with_time_zone_null,
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000003_billing"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Invoices::Table)
                    .col(string(Invoices::Id).primary_key())
                    .col(string_uniq(Invoices::Number))
                    .col(string(Invoices::SubscriptionId))
                    .col(string(Invoices::BusinessId))
                    .col(string(Invoices::Currency))
                    .col(json_binary(Invoices::Lines))
                    .col(big_integer(Invoices::SubtotalMinor))
                    .col(big_integer(Invoices::DiscountMinor))
                    .col(big_integer(Invoices::TotalMinor))
                    .col(big_integer(Invoices::CreditAppliedMinor))
                    .col(big_integer(Invoices::AmountDueMinor))
                    .col(big_integer(Invoices::CreditBalanceAfterMinor))
                    .col(boolean(Invoices::CouponApplied))
                    .col(string(Invoices::Status))
                    .col(integer(Invoices::AttemptCount))
                    .col(timestamp_with_time_zone_null(Invoices::NextAttemptTime))
                    .col(timestamp_with_time_zone(Invoices::CreateTime))
                    .col(timestamp_with_time_zone_null(Invoices::PaidTime))
                    .to_owned(),
            )
            .await?;
        for (name, first) in [
            ("idx_invoices_subscription_id", Invoices::SubscriptionId),
            ("idx_invoices_business_id", Invoices::BusinessId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Invoices::Table)
                        .col(first)
                        .col(Invoices::Id)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(PaymentMethods::Table)
                    .col(string(PaymentMethods::BusinessId).primary_key())
                    .col(string(PaymentMethods::Provider))
                    .col(string(PaymentMethods::Reference))
                    .col(string(PaymentMethods::Brand))
                    .col(string(PaymentMethods::Last4))
                    .col(integer(PaymentMethods::ExpMonth))
                    .col(integer(PaymentMethods::ExpYear))
                    .col(timestamp_with_time_zone(PaymentMethods::CreateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(CreditBalances::Table)
                    .col(string(CreditBalances::BusinessId))
                    .col(string(CreditBalances::Currency))
                    .col(big_integer(CreditBalances::AmountMinor))
                    .primary_key(
                        Index::create()
                            .col(CreditBalances::BusinessId)
                            .col(CreditBalances::Currency),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Counters::Table)
                    .col(string(Counters::Name).primary_key())
                    .col(big_integer(Counters::Value))
                    .to_owned(),
            )
            .await?;
        let seed = Query::insert()
            .into_table(Counters::Table)
            .columns([Counters::Name, Counters::Value])
            .values_panic(["invoice".into(), 0.into()])
            .to_owned();
        manager.exec_stmt(seed).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Counters::Table.into_iden(),
            CreditBalances::Table.into_iden(),
            PaymentMethods::Table.into_iden(),
            Invoices::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Invoices {
    Table,
    Id,
    Number,
    SubscriptionId,
    BusinessId,
    Currency,
    Lines,
    SubtotalMinor,
    DiscountMinor,
    TotalMinor,
    CreditAppliedMinor,
    AmountDueMinor,
    CreditBalanceAfterMinor,
    CouponApplied,
    Status,
    AttemptCount,
    NextAttemptTime,
    CreateTime,
    PaidTime,
}

#[derive(DeriveIden)]
enum PaymentMethods {
    Table,
    BusinessId,
    Provider,
    Reference,
    Brand,
    Last4,
    ExpMonth,
    ExpYear,
    CreateTime,
}

#[derive(DeriveIden)]
enum CreditBalances {
    Table,
    BusinessId,
    Currency,
    AmountMinor,
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}
