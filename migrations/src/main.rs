//! `billing-migrate up|down|status|fresh …` against `DATABASE_URL` (or `-u`).

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(billing_migrations::Migrator).await;
}
