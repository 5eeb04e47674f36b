//! `billingd`: the billing service.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use billing_app::Catalog;
use billing_server::auth::mint::TokenRequest;
use billing_server::config::Settings;
use billing_server::startup::{Application, build_clock, connect_store};
use billing_server::telemetry::OtelSettings;
use billing_server::{demo, telemetry};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "billingd", version, about = "Subscription billing over gRPC")]
struct Cli {
    /// A TOML config file; environment variables BILLING__SECTION__KEY override it.
    #[arg(long, env = billing_server::config::CONFIG_FILE_VAR, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC and the HTTP side (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load the demo catalog (products, offerings, a coupon, directory "demo") and exit. Idempotent.
    LoadDemo,
    /// Print an HS256 token signed with auth.hs256_secret (for operators and local use).
    MintToken {
        /// The caller (`sub`); idempotency keys are scoped to it.
        #[arg(long)]
        sub: String,
        /// service, directory or business.
        #[arg(long)]
        role: String,
        /// The directory a `directory` token acts for.
        #[arg(long)]
        directory_id: Option<String>,
        /// The business a `business` token acts for.
        #[arg(long)]
        business_id: Option<String>,
        /// How long the token is valid (`15m`, `1h`, `24h`).
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: HashMap<String, String> = std::env::vars().collect();
    let otel = OtelSettings::from_env(&env);
    let settings = match Settings::load(cli.config.as_deref(), env) {
        Ok(settings) => settings,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("billingd: {error}");
            }
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(settings.telemetry.log_format, &otel) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("billingd: cannot set up telemetry: {error:#}");
            }
            return ExitCode::from(2);
        }
    };
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::LoadDemo => load_demo(settings).await,
        Command::MintToken {
            sub,
            role,
            directory_id,
            business_id,
            ttl,
        } => mint_token(
            &settings,
            &TokenRequest {
                subject: sub,
                role,
                directory_id,
                business_id,
                lifetime: ttl,
            },
        ),
    };
    let code = match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "billingd failed");
            ExitCode::FAILURE
        }
    };
    // Spans and metrics still buffered go out before the process does.
    telemetry.shutdown(TELEMETRY_FLUSH_TIMEOUT).await;
    code
}

/// The longest the exporters may take to send what is left at exit.
const TELEMETRY_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let address = settings.server.grpc_addr;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("bind server.grpc_addr {address}"))?;
    let http_address = settings.server.http_addr;
    let http_listener = tokio::net::TcpListener::bind(http_address)
        .await
        .with_context(|| format!("bind server.http_addr {http_address}"))?;
    let application = Application::build(settings, listener, http_listener).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    application.run(shutdown).await
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let mut database = settings.database;
    database.run_migrations = true;
    connect_store(&database).await?.close().await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn load_demo(settings: Settings) -> anyhow::Result<()> {
    let store = connect_store(&settings.database).await?;
    let catalog = Catalog::new(store.clone(), build_clock(&settings).clock());
    let summary = demo::load(&catalog).await?;
    store.close().await?;
    tracing::info!(
        created = summary.created,
        already_there = summary.existing,
        directory = demo::DIRECTORY_ID,
        "demo catalog loaded"
    );
    Ok(())
}

fn mint_token(settings: &Settings, request: &TokenRequest) -> anyhow::Result<()> {
    let token = billing_server::auth::mint::mint_token(&settings.auth, request)?;
    #[allow(clippy::print_stdout)]
    {
        println!("{token}");
    }
    Ok(())
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => tracing::info!("SIGINT received"),
                    _ = terminate.recv() => tracing::info!("SIGTERM received"),
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for SIGTERM; only SIGINT stops the server");
                interrupt.await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    interrupt.await.ok();
    shutdown.cancel();
}
