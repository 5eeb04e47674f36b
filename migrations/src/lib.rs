//! The schema, as an ordered list of migrations that run on SQLite and
//! Postgres alike.
//!
//! A migration that has shipped is never edited: change the schema by adding
//! the next one.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_catalog;
mod m20261122_000002_subscriptions;
mod m20261122_000003_billing;
mod m20261122_000004_checkout;
mod m20261122_000005_inbox;
mod m20261128_000006_job_lease_token;
mod m20261128_000007_idempotency_provisional;
mod m20261128_000008_held_change;
mod m20261128_000009_event_stream;
mod m20261128_000010_webhooks;
mod m20261128_000011_event_reader_indexes;
mod m20261128_000012_unpublished_events_index;
mod m20261128_000013_jobs_claim_order_index;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_catalog::Migration),
            Box::new(m20261122_000002_subscriptions::Migration),
            Box::new(m20261122_000003_billing::Migration),
            Box::new(m20261122_000004_checkout::Migration),
            Box::new(m20261122_000005_inbox::Migration),
            Box::new(m20261128_000006_job_lease_token::Migration),
            Box::new(m20261128_000007_idempotency_provisional::Migration),
            Box::new(m20261128_000008_held_change::Migration),
            Box::new(m20261128_000009_event_stream::Migration),
            Box::new(m20261128_000010_webhooks::Migration),
            Box::new(m20261128_000011_event_reader_indexes::Migration),
            Box::new(m20261128_000012_unpublished_events_index::Migration),
            Box::new(m20261128_000013_jobs_claim_order_index::Migration),
        ]
    }
}
