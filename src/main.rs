//! The `stack-sync` command line: parses arguments and hands over to the library.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{ArgGroup, Args, Parser, Subcommand};
use stack_sync::config::Settings;
use stack_sync::model::{Kind, Position};
use stack_sync::reconcile::reconcile;
use stack_sync::refresh::Refresher;
use stack_sync::stack_api::StackApi;
use stack_sync::startup::{Application, connect, mirror};
use stack_sync::store::changes::LoggedChange;
use stack_sync::store::refresh::{Target, TargetKind};
use stack_sync::store::schema;
use stack_sync::store::webhook_events::{RecordedBody, StoredSelection, load_stored};
use stack_sync::telemetry;
use stack_sync::trigger::{self, Plan, Scenario, parse_set};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
    Migrate {
        /// Replace functions that a newer stack-sync wrote with this build's (a rollback);
        /// without it, migrate refuses to go back.
        #[arg(long)]
        allow_downgrade: bool,
    },
    /// Re-apply recorded webhook messages (e.g. failed ones after a fix) and report each.
    Replay(ReplayArgs),
    /// Make the tables equal to Stack's current state, read from its REST API (the backfill,
    /// on an empty database), and print what changed.
    Reconcile {
        /// Report the drift without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Send realistic, signed sample events to a running service, as Stack would, and print
    /// its answers (to try it locally before wiring Stack's dashboard).
    Trigger(TriggerArgs),
    /// Show what an operator asks first, from the database: the last webhooks, outcomes,
    /// failed messages waiting, delivery lag, the last reconcile, the schema and row counts.
    Status {
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a recorded message's body exactly as it was received, whether it is stored as
    /// received or compressed (stack.webhook_events.payload_encoding).
    Message {
        /// The message's svix-id.
        svix_id: String,
    },
    /// Erase a user or team from the mirror, for an erasure request: the bodies of every
    /// recorded message about them, their row with its memberships and permissions, and bury
    /// the id so that no late webhook or reconcile brings it back. Prints what it removed; safe
    /// to run again.
    Forget {
        /// What to forget.
        #[arg(value_enum)]
        kind: UserOrTeam,
        /// The user's or team's id.
        id: uuid::Uuid,
    },
    /// Fetch a user or team from Stack's API now, with their memberships and permissions, and
    /// apply it under reconcile's guards (a newer webhook still wins); print what changed. For
    /// what Stack changed without a webhook, or to check one object without a whole reconcile.
    Refresh {
        /// What to refresh.
        #[arg(value_enum)]
        kind: UserOrTeam,
        /// The user's or team's id.
        id: uuid::Uuid,
        /// Print JSON for scripts instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the change log (changes.enabled) after a position, oldest first: one line per
    /// change, or JSON lines.
    Changes {
        /// Print the changes after this position (`<xid>/<seq>`, as printed); by default every
        /// change kept.
        #[arg(long, value_name = "POSITION")]
        from: Option<Position>,
        /// Keep printing new changes as they commit (woken by the change feed when it is on).
        #[arg(long)]
        follow: bool,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Publish the change log to NATS JetStream (forward.nats_url), in order, each change once,
    /// until stopped; one forwarder runs at a time, others wait.
    Forward,
    /// Ask the local service whether it is ready (GET /readyz); exit 0 if so, 1 if not, within
    /// a few seconds. For container health checks, where there is no curl.
    Healthcheck {
        /// The readiness URL; by default the local service at server.port.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
}

/// What `forget` erases and `refresh` fetches.
#[derive(Clone, Copy, clap::ValueEnum)]
enum UserOrTeam {
    User,
    Team,
}

impl From<UserOrTeam> for Kind {
    fn from(object: UserOrTeam) -> Self {
        match object {
            UserOrTeam::User => Kind::User,
            UserOrTeam::Team => Kind::Team,
        }
    }
}

/// What `trigger` sends, and where.
#[derive(Args)]
#[command(group(ArgGroup::new("what").required(true).args(["event_type", "scenario"])))]
struct TriggerArgs {
    /// The event type to send, e.g. user.created (every type the service mirrors, and
    /// stack.test).
    event_type: Option<String>,
    /// A scripted sequence instead: signup, team-lifecycle or out-of-order.
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// The webhook endpoint; by default the local service at server.port.
    #[arg(long, value_name = "URL")]
    to: Option<String>,
    /// How many events of the type to send, each with fresh ids.
    #[arg(long, default_value_t = 1, conflicts_with = "scenario")]
    count: u32,
    /// Set a field of the event's `data` (repeatable); the value is JSON when it parses, else
    /// a string: --set display_name=Ada --set has_password=true.
    #[arg(long = "set", value_name = "FIELD=VALUE", value_parser = parse_set, conflicts_with = "scenario")]
    set: Vec<(String, serde_json::Value)>,
    /// Make ids, names and the out-of-order shuffle the same on every run (message ids are
    /// always fresh, or the service would take them for duplicates).
    #[arg(long)]
    seed: Option<u64>,
}

/// Which recorded messages to replay; the filters combine.
#[derive(Args)]
#[command(group(ArgGroup::new("selection").required(true).multiple(true)))]
struct ReplayArgs {
    /// Messages whose recorded outcome is `failed`.
    #[arg(long, group = "selection")]
    failed: bool,
    /// The message with this svix-id; repeat for several.
    #[arg(long = "id", value_name = "SVIX_ID", group = "selection")]
    ids: Vec<String>,
    /// Messages received at or after this time (RFC 3339, e.g. 2026-11-27T08:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time, group = "selection")]
    since: Option<OffsetDateTime>,
    /// Messages received before this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time, group = "selection")]
    until: Option<OffsetDateTime>,
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|err| format!("{err} (expected RFC 3339)"))
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
            if settings.webhook.development_secret {
                tracing::warn!(
                    "accepting the published development secret: anyone can sign webhooks for \
                     this service; use it for a local setup only"
                );
            }
            let app = Application::build(&settings).await?;
            tracing::info!(address = %app.local_addr()?, "listening");
            if let Some(address) = app.admin_addr() {
                tracing::info!(address = %address?, "admin endpoints listening");
            }
            app.run_until_stopped().await?;
        }
        Command::Migrate { allow_downgrade } => {
            let pool = connect(&settings).await?;
            let downgrade = if allow_downgrade {
                schema::Downgrade::Allow
            } else {
                schema::Downgrade::Refuse
            };
            schema::migrate_with(&pool, downgrade)
                .await
                .context("applying database migrations")?;
            tracing::info!("migrations applied");
        }
        Command::Replay(args) => replay(&settings, args).await?,
        Command::Trigger(args) => trigger(&settings, args).await?,
        Command::Status { json } => {
            let pool = connect(&settings).await?;
            let status = stack_sync::status::Status::read(&pool)
                .await
                .context("reading the status")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{status}");
            }
        }
        Command::Message { svix_id } => {
            let pool = connect(&settings).await?;
            let stored = load_stored(&pool, &svix_id)
                .await
                .context("reading the recorded message")?
                .with_context(|| format!("never recorded: {svix_id}"))?;
            match &stored.body {
                RecordedBody::Kept(body) => std::io::stdout().write_all(body)?,
                missing => anyhow::bail!(
                    "{svix_id} was recorded ({}, {}), but {}",
                    stored.event_type.as_deref().unwrap_or("no type"),
                    stored.outcome,
                    missing.missing_because().unwrap_or_default()
                ),
            }
        }
        Command::Forget { kind, id } => {
            let pool = connect(&settings).await?;
            let feed = settings.feed.channel.as_deref();
            let forgotten = stack_sync::forget::forget(&pool, kind.into(), id, feed)
                .await
                .context("forgetting")?;
            println!("{}", serde_json::to_string_pretty(&forgotten)?);
        }
        Command::Refresh { kind, id, json } => {
            let refresher = Refresher {
                api: StackApi::new(settings.stack_api()?)?,
                pool: connect(&settings).await?,
                feed_channel: settings.feed.channel.clone(),
            };
            let kind = match kind {
                UserOrTeam::User => TargetKind::User,
                UserOrTeam::Team => TargetKind::Team,
            };
            let target = Target {
                kind,
                id,
                with_links: true,
            };
            let report = refresher.refresh(target).await.context("refreshing")?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
        }
        Command::Changes { from, follow, json } => {
            let pool = connect(&settings).await?;
            let feed = follow.then_some(settings.feed.channel.as_deref());
            let from = from.unwrap_or(Position::START);
            let mut out = std::io::stdout().lock();
            stack_sync::changes::read(&pool, from, feed, |change| {
                let line = if json {
                    serde_json::to_string(change).expect("a change serializes")
                } else {
                    change_line(change)
                };
                // A closed pipe (`| head`) ends the command.
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    std::process::exit(0);
                }
            })
            .await
            .context("reading the change log")?;
        }
        Command::Forward => {
            settings.nats_url()?;
            let pool = connect(&settings).await?;
            let metrics = stack_sync::metrics::Metrics::new();
            let forward =
                stack_sync::changes::forward::run_forever(pool, settings.forward.clone(), metrics);
            tokio::select! {
                () = forward => {}
                () = stack_sync::startup::shutdown_signal() => {}
            }
        }
        Command::Healthcheck { url } => {
            let url =
                url.unwrap_or_else(|| format!("http://127.0.0.1:{}/readyz", settings.server.port));
            stack_sync::health_check::check(&url).await?;
        }
        Command::Reconcile { dry_run } => {
            let api = StackApi::new(settings.stack_api()?)?;
            let pool = connect(&settings).await?;
            let feed = settings.feed.channel.as_deref();
            let summary = reconcile(&pool, &api, &settings.reconcile, feed, dry_run).await?;
            print!("{summary}");
        }
    }
    Ok(())
}

/// Replays, printing one tab-separated line per message and a summary.
async fn replay(settings: &Settings, args: ReplayArgs) -> anyhow::Result<()> {
    let mirror = mirror(settings, connect(settings).await?);
    let selection = StoredSelection {
        only_failed: args.failed,
        ids: (!args.ids.is_empty()).then_some(args.ids),
        received_since: args.since,
        received_until: args.until,
    };
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let missing = stack_sync::replay::replay(&mirror, &selection, |replayed| {
        let event_type = replayed.event_type.as_deref().unwrap_or("-");
        let (outcome, detail) = match &replayed.outcome {
            Ok(outcome) => (outcome.as_str(), String::new()),
            Err(because) => ("not replayed", format!(": {because}")),
        };
        println!(
            "{}\t{event_type}\t{} -> {outcome}{detail}",
            replayed.svix_id, replayed.previous
        );
        *counts.entry(outcome).or_default() += 1;
    })
    .await
    .context("replaying")?;
    let summary: Vec<String> = counts
        .iter()
        .map(|(outcome, n)| format!("{n} {outcome}"))
        .collect();
    let total: usize = counts.values().sum();
    println!("replayed {total} messages: {}", summary.join(", "));
    if !missing.is_empty() {
        anyhow::bail!("never recorded: {}", missing.join(", "));
    }
    Ok(())
}

/// Sends the events `args` ask for, printing one tab-separated line per answer.
async fn trigger(settings: &Settings, args: TriggerArgs) -> anyhow::Result<()> {
    let key = &settings.signing_keys()?[0];
    let url = args
        .to
        .unwrap_or_else(|| format!("http://127.0.0.1:{}/webhooks/stack", settings.server.port));
    let plan = match (args.scenario, args.event_type) {
        (Some(scenario), _) => Plan::Scenario(scenario),
        (None, Some(event_type)) => Plan::Events {
            event_type,
            count: args.count,
            set: args.set,
        },
        (None, None) => unreachable!("clap requires an event type or a scenario"),
    };
    let deliveries = trigger::deliveries(&plan, args.seed)?;
    trigger::send(&url, key, &deliveries, |sent| {
        println!(
            "{}\t{}\t{}\t{}",
            sent.event_type, sent.svix_id, sent.ids, sent.status
        );
    })
    .await?;
    Ok(())
}

/// A change as one line: position, table, operation, ids, source, time.
fn change_line(change: &LoggedChange) -> String {
    let ids: Vec<String> = [
        change.user_id.map(|id| format!("user={id}")),
        change.team_id.map(|id| format!("team={id}")),
        change
            .permission_id
            .as_ref()
            .map(|id| format!("permission={id}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let source = match (&change.svix_id, change.run_id) {
        (Some(svix_id), _) => format!("{} {svix_id}", change.source),
        (None, Some(run)) => format!("{} {run}", change.source),
        (None, None) => change.source.clone(),
    };
    let at = change.changed_at.format(&Rfc3339).unwrap_or_default();
    format!(
        "{}\t{}\t{}\t{}\t{source}\t{at}",
        change.position,
        change.table_name,
        change.operation,
        ids.join(" ")
    )
}
