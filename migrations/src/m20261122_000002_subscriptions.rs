//! Businesses, subscriptions, entitlements, audit, outbox, idempotency keys
//! and the job queue.
//!
//! `entitlements` holds one row per business and product, rewritten in the
//! transaction of every change to the business's subscriptions, so that
//! CheckEntitlement (the platform's hottest read) is one primary-key lookup.
//! `jobs` holds at most one row per subscription: the next moment work is due
//! for it (renewal, trial end, pending change, expiry).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_pk_auto, blob_null, boolean, date, integer, json_binary, string, string_null, string_uniq, text,
    text_null, timestamp_with_time_zone, timestamp_with_time_zone_null,
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261122_000002_subscriptions"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Businesses::Table)
                    .col(string(Businesses::BusinessId).primary_key())
                    .col(string(Businesses::DirectoryId))
                    .col(timestamp_with_time_zone(Businesses::CreateTime))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Subscriptions::Table)
                    .col(string(Subscriptions::Id).primary_key())
                    .col(string(Subscriptions::DisplayName))
                    .col(string(Subscriptions::BusinessId))
                    .col(string(Subscriptions::BuyerId))
                    .col(string(Subscriptions::DirectoryId))
                    .col(string(Subscriptions::OfferingId))
                    .col(string(Subscriptions::OfferingCode))
                    .col(string(Subscriptions::OfferingType))
                    .col(string(Subscriptions::Family))
                    .col(string(Subscriptions::State))
                    .col(string(Subscriptions::PaymentType))
                    .col(string(Subscriptions::PriceCurrency))
                    .col(big_integer(Subscriptions::PriceMinor))
                    .col(string(Subscriptions::BillingInterval))
                    .col(date(Subscriptions::BillingAnchor))
                    .col(json_binary(Subscriptions::Components))
                    .col(string_null(Subscriptions::CouponCode))
                    .col(timestamp_with_time_zone_null(Subscriptions::TrialEndTime))
                    .col(date(Subscriptions::PeriodStart))
                    .col(date(Subscriptions::PeriodEnd))
                    .col(timestamp_with_time_zone_null(Subscriptions::CancellationTime))
                    .col(text(Subscriptions::CancelReason))
                    .col(timestamp_with_time_zone_null(Subscriptions::ExpirationTime))
                    .col(boolean(Subscriptions::AutoRenew))
                    .col(string_null(Subscriptions::BundledFromSubscriptionId))
                    .col(string_null(Subscriptions::PendingOfferingId))
                    .col(string_null(Subscriptions::PendingOfferingCode))
                    .col(timestamp_with_time_zone_null(Subscriptions::PendingEffectiveTime))
                    .col(string(Subscriptions::PaymentStatus))
                    .col(integer(Subscriptions::DunningAttemptCount))
                    .col(timestamp_with_time_zone_null(Subscriptions::DunningFirstFailureTime))
                    .col(timestamp_with_time_zone_null(Subscriptions::DunningNextRetryTime))
                    .col(timestamp_with_time_zone_null(Subscriptions::DunningGraceEndTime))
                    .col(integer(Subscriptions::CouponPeriodsUsed))
                    .col(string(Subscriptions::Provider))
                    .col(string_null(Subscriptions::ProviderSubscriptionId))
                    .col(big_integer(Subscriptions::Version))
                    .col(timestamp_with_time_zone(Subscriptions::CreateTime))
                    .col(timestamp_with_time_zone(Subscriptions::UpdateTime))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_subscriptions_business_family",
                vec![Subscriptions::BusinessId, Subscriptions::Family],
            ),
            (
                "idx_subscriptions_directory_id",
                vec![Subscriptions::DirectoryId, Subscriptions::Id],
            ),
            (
                "idx_subscriptions_bundled_from",
                vec![Subscriptions::BundledFromSubscriptionId],
            ),
            (
                "idx_subscriptions_state_id",
                vec![Subscriptions::State, Subscriptions::Id],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Subscriptions::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Entitlements::Table)
                    .col(string(Entitlements::BusinessId))
                    .col(string(Entitlements::ProductCode))
                    .col(boolean(Entitlements::Entitled))
                    .col(string_null(Entitlements::SubscriptionId))
                    .col(string_null(Entitlements::OfferingCode))
                    .col(string(Entitlements::SubscriberStatus))
                    .col(boolean(Entitlements::InGracePeriod))
                    .col(timestamp_with_time_zone_null(Entitlements::ExpirationTime))
                    .primary_key(
                        Index::create()
                            .col(Entitlements::BusinessId)
                            .col(Entitlements::ProductCode),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEntries::Table)
                    .col(string(AuditEntries::Id).primary_key())
                    .col(string(AuditEntries::SubscriptionId))
                    .col(string(AuditEntries::BusinessId))
                    .col(string(AuditEntries::Action))
                    .col(string(AuditEntries::Actor))
                    .col(string(AuditEntries::RequestId))
                    .col(text(AuditEntries::Detail))
                    .col(timestamp_with_time_zone(AuditEntries::CreateTime))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_entries_subscription_id")
                    .table(AuditEntries::Table)
                    .col(AuditEntries::SubscriptionId)
                    .col(AuditEntries::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OutboxEvents::Table)
                    .col(big_pk_auto(OutboxEvents::Sequence))
                    .col(string_uniq(OutboxEvents::Id))
                    .col(string(OutboxEvents::EventType))
                    .col(string(OutboxEvents::BusinessId))
                    .col(string(OutboxEvents::SubscriptionId))
                    .col(timestamp_with_time_zone(OutboxEvents::OccurTime))
                    .col(json_binary(OutboxEvents::Payload))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(string(IdempotencyKeys::Caller))
                    .col(string(IdempotencyKeys::RequestId))
                    .col(string(IdempotencyKeys::Operation))
                    .col(string(IdempotencyKeys::RequestHash))
                    .col(blob_null(IdempotencyKeys::Response))
                    .col(text_null(IdempotencyKeys::Error))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreateTime))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::Caller)
                            .col(IdempotencyKeys::RequestId),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(string(Jobs::SubscriptionId).primary_key())
                    .col(timestamp_with_time_zone(Jobs::DueTime))
                    .col(string_null(Jobs::LeaseOwner))
                    .col(timestamp_with_time_zone_null(Jobs::LeaseExpires))
                    .col(integer(Jobs::Attempts))
                    .col(text(Jobs::LastError))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_jobs_due_time")
                    .table(Jobs::Table)
                    .col(Jobs::DueTime)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Jobs::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            OutboxEvents::Table.into_iden(),
            AuditEntries::Table.into_iden(),
            Entitlements::Table.into_iden(),
            Subscriptions::Table.into_iden(),
            Businesses::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Businesses {
    Table,
    BusinessId,
    DirectoryId,
    CreateTime,
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Id,
    DisplayName,
    BusinessId,
    BuyerId,
    DirectoryId,
    OfferingId,
    OfferingCode,
    OfferingType,
    Family,
    State,
    PaymentType,
    PriceCurrency,
    PriceMinor,
    BillingInterval,
    BillingAnchor,
    Components,
    CouponCode,
    TrialEndTime,
    PeriodStart,
    PeriodEnd,
    CancellationTime,
    CancelReason,
    ExpirationTime,
    AutoRenew,
    BundledFromSubscriptionId,
    PendingOfferingId,
    PendingOfferingCode,
    PendingEffectiveTime,
    PaymentStatus,
    DunningAttemptCount,
    DunningFirstFailureTime,
    DunningNextRetryTime,
    DunningGraceEndTime,
    CouponPeriodsUsed,
    Provider,
    ProviderSubscriptionId,
    Version,
    CreateTime,
    UpdateTime,
}

#[derive(DeriveIden)]
enum Entitlements {
    Table,
    BusinessId,
    ProductCode,
    Entitled,
    SubscriptionId,
    OfferingCode,
    SubscriberStatus,
    InGracePeriod,
    ExpirationTime,
}

#[derive(DeriveIden)]
enum AuditEntries {
    Table,
    Id,
    SubscriptionId,
    BusinessId,
    Action,
    Actor,
    RequestId,
    Detail,
    CreateTime,
}

#[derive(DeriveIden)]
enum OutboxEvents {
    Table,
    Sequence,
    Id,
    EventType,
    BusinessId,
    SubscriptionId,
    OccurTime,
    Payload,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Caller,
    RequestId,
    Operation,
    RequestHash,
    Response,
    Error,
    CreateTime,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    SubscriptionId,
    DueTime,
    LeaseOwner,
    LeaseExpires,
    Attempts,
    LastError,
}
