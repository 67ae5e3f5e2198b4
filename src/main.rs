//! The `stack-sync` command line: parses arguments and hands over to the library.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use stack_sync::config::Settings;
use stack_sync::startup::{Application, MIGRATOR, connect};
use stack_sync::telemetry;

/// Mirrors a Stack Auth project into Postgres from its webhooks.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file overriding the built-in defaults (see config/default.toml).
    #[arg(long, global = true, env = "STACK_SYNC_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive webhooks (applies pending migrations first unless configured not to).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, with its causes, for people and for log collectors alike.
            eprintln!("stack-sync: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let settings = Settings::load(cli.config.as_deref(), &env)?;
    telemetry::init(settings.log.format);
    match cli.command {
        Command::Serve => {
            let app = Application::build(&settings).await?;
            tracing::info!(address = %app.local_addr()?, "listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let pool = connect(&settings).await?;
            MIGRATOR
                .run(&pool)
                .await
                .context("applying database migrations")?;
            tracing::info!("migrations applied");
        }
    }
    Ok(())
}
