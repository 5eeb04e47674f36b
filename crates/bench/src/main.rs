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

use anyhow::ensure;
use billing_app::charging::Charger;
use billing_app::{JobRunner, ManualClock, TestClock};
use billing_domain::dunning::DunningPolicy;
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
    /// Jobs worked at once (`jobs.workers`); default: the machine's cores.
    #[arg(long)]
    workers: Option<usize>,
    /// Skip the pgbench / sqlite3 replay.
    #[arg(long)]
    no_replay: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = match args.backend {
        BackendArg::Sqlite => Backend::Sqlite,
        BackendArg::Postgres => Backend::Postgres,
    };
    let database = TestDatabase::create(backend).await;
    let mut options = StoreOptions::new(database.url());
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get));
    options.max_connections = u32::try_from(workers + 2).unwrap_or(u32::MAX);
    let store = Store::connect(&options).await?;
    store.migrate().await?;

    let start: DateTime<Utc> = "2026-03-10T09:00:00Z".parse()?;
    let due: DateTime<Utc> = "2026-04-10T00:00:01Z".parse()?;
    let seeding = Instant::now();
    let ids = billing_storage::seed::due_renewals(&store, args.subscriptions, start).await?;
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
    let runner = JobRunner::new(store.clone(), clock.clone(), charger).with_workers(workers);
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
        "{backend:?}: {} renewals (invoice + charge + period roll) by {workers} workers in {elapsed:.1} s = {service_rate:.0} renewals/s",
        ids.len()
    );

    let (replay_rate, replay_clients) = if args.no_replay {
        (f64::NAN, 0)
    } else {
        let (rate, clients) = replay::run(backend, database.url(), &store, &ids).await?;
        println!(
            "{backend:?}: the same writes replayed raw: {rate:.0} renewals/s ({clients} clients); the service reaches {:.0}% of it",
            100.0 * service_rate / rate
        );
        (rate, clients)
    };
    // For scripts/bench.
    println!(
        "{}",
        serde_json::json!({
            "backend": format!("{backend:?}"),
            "renewals": ids.len(),
            "workers": workers,
            "service_per_s": service_rate,
            "replay_per_s": replay_rate,
            "replay_clients": replay_clients,
        })
    );
    store.close().await?;
    Ok(())
}
