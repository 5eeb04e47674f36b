//! `renewal-bench --backend sqlite|postgres --subscriptions N`
//!
//! Seeds N monthly subscriptions (each with a good card) that all renew at
//! the same moment, then moves the manual clock past it in one
//! `AdvanceClock`: every renewal is a job that rolls the period, issues the
//! invoice, charges it through the local provider and records the payment
//! (three transactions). Prints renewals per second, checks that every
//! subscription got exactly one paid renewal invoice, then replays the same
//! statements per renewal straight into the database (`pgbench` on
//! Postgres, `sqlite3` on SQLite) and prints the ratio.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod replay;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, ensure};
use billing_app::charging::Charger;
use billing_app::{JobRunner, ManualClock, TestClock};
use billing_domain::catalog::{BillingInterval, BundleGraph, MoneyDraft, Offering, OfferingDraft, OfferingType};
use billing_domain::dunning::DunningPolicy;
use billing_domain::ids::{OfferingId, SubscriptionId};
use billing_domain::payment_method::PaymentMethod;
use billing_domain::subscription::{Business, CouponChoice, NewSubscription, create_subscription};
use billing_domain::text::ExternalId;
use billing_provider_local::LocalProvider;
use billing_storage::testing::TestDatabase;
use billing_storage::{Backend, InvoiceFilter, Store, StoreOptions};
use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    Sqlite,
    Postgres,
}

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum)]
    backend: BackendArg,
    #[arg(long, default_value_t = 100_000)]
    subscriptions: usize,
    /// Skip the pgbench / sqlite3 replay.
    #[arg(long)]
    no_replay: bool,
}

const SEED_BATCH: usize = 1_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = match args.backend {
        BackendArg::Sqlite => Backend::Sqlite,
        BackendArg::Postgres => Backend::Postgres,
    };
    let database = TestDatabase::create(backend).await;
    let mut options = StoreOptions::new(database.url());
    options.max_connections = 4;
    let store = Store::connect(&options).await?;
    store.migrate().await?;

    let start: DateTime<Utc> = "2026-03-10T09:00:00Z".parse()?;
    let due: DateTime<Utc> = "2026-04-10T00:00:01Z".parse()?;
    let seeding = Instant::now();
    let ids = seed(&store, args.subscriptions, start).await?;
    println!(
        "{backend:?}: seeded {} due subscriptions in {:.1} s",
        ids.len(),
        seeding.elapsed().as_secs_f64()
    );

    let clock = Arc::new(ManualClock::new(start));
    let charger = Charger::new(
        store.clone(),
        billing_app::Providers::local_only(Arc::new(LocalProvider::new())),
        DunningPolicy::default(),
    );
    let runner = JobRunner::new(store.clone(), clock.clone(), charger);
    let test_clock = TestClock::new(clock, runner);
    let renewing = Instant::now();
    let stats = test_clock.advance_to(due).await?;
    let elapsed = renewing.elapsed().as_secs_f64();
    ensure!(stats.failed == 0, "{} jobs failed", stats.failed);
    ensure!(
        stats.succeeded == ids.len(),
        "{} of {} renewed",
        stats.succeeded,
        ids.len()
    );
    for id in ids.iter().step_by((ids.len() / 100).max(1)) {
        let invoices = store
            .billing()
            .list_invoices(&InvoiceFilter::Subscription(id.clone()), None, 10)
            .await?;
        ensure!(
            invoices.len() == 1 && invoices[0].paid_time.is_some(),
            "subscription {id} has {} invoices",
            invoices.len()
        );
    }
    let service_rate = ids.len() as f64 / elapsed;
    println!(
        "{backend:?}: {} renewals (invoice + charge + period roll) in {elapsed:.1} s = {service_rate:.0} renewals/s",
        ids.len()
    );

    if !args.no_replay {
        let replay_rate = replay::run(backend, database.url(), &store, &ids).await?;
        println!(
            "{backend:?}: the same writes replayed raw: {replay_rate:.0} renewals/s; the service reaches {:.0}% of it",
            100.0 * service_rate / replay_rate
        );
    }
    store.close().await?;
    Ok(())
}

/// N businesses, each with a card and a Pro-like monthly subscription
/// bought at `start`, all due at the same period end.
async fn seed(store: &Store, count: usize, start: DateTime<Utc>) -> anyhow::Result<Vec<SubscriptionId>> {
    let draft = OfferingDraft {
        code: "bench-monthly".into(),
        display_name: "Bench".into(),
        offering_type: Some(OfferingType::App),
        prices: vec![MoneyDraft::new("USD", 1000)],
        billing_interval: Some(BillingInterval::Month),
        ..OfferingDraft::default()
    };
    let offering = Offering::create(
        &draft,
        &Default::default(),
        &BundleGraph::default(),
        OfferingId::from_uuid(uuid::Uuid::now_v7()),
        start,
    )?;
    store.catalog().insert_offering(&offering).await?;
    let card = PaymentMethod {
        provider: "local".into(),
        reference: "pm_card_visa".into(),
        brand: "visa".into(),
        last4: "4242".into(),
        exp_month: 12,
        exp_year: 2034,
    };
    let mut ids = Vec::with_capacity(count);
    for batch_start in (0..count).step_by(SEED_BATCH) {
        let tx = store.begin().await?;
        for index in batch_start..(batch_start + SEED_BATCH).min(count) {
            let business = Business {
                business_id: ExternalId::parse(&format!("bench-{index}"))?,
                directory_id: ExternalId::parse("bench")?,
                create_time: start,
            };
            tx.subscriptions().insert_business(&business).await?;
            tx.billing()
                .put_payment_method(&business.business_id, &card, start)
                .await?;
            let input = NewSubscription {
                business: &business,
                buyer_id: "owner",
                offering: &offering,
                currency_code: "USD",
                components: &[],
                coupon: CouponChoice::None,
                sponsored: false,
                available_in_directory: true,
                family_history: &[],
                bundled_offerings: &[],
                now: start,
            };
            let subscription =
                create_subscription(&input, || SubscriptionId::from_uuid(uuid::Uuid::now_v7()))?.subscription;
            tx.subscriptions().insert_subscription(&subscription).await?;
            tx.jobs()
                .schedule(&subscription.id, Some(subscription.current_period.end_time()))
                .await?;
            ids.push(subscription.id);
        }
        tx.commit().await.context("commit a seed batch")?;
    }
    Ok(ids)
}
