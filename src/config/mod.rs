//! Settings: embedded defaults (`config/default.toml`), then an optional file, then environment
//! variables. Built once at start and passed down; nothing reads the environment afterwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

mod known_keys;
mod secret_files;

use crate::database::TlsSettings;
use crate::server::ConnectionLimits;
use crate::signature::{SecretError, SigningKey};

const DEFAULTS: &str = include_str!("../../config/default.toml");
const ENV_PREFIX: &str = "STACK_SYNC";

/// The plain variable names users expect, and the setting they fill when the `STACK_SYNC_`
/// form of that setting is not set. Where several name one setting, the first one set wins:
/// Hexclave's names (its SDKs' since the 2026 rename) before Stack Auth's, which it still reads.
const PLAIN_VARIABLES: [(&str, &[&str]); 12] = [
    ("database.url", &["DATABASE_URL"]),
    // libpq's own variables, which the URL's parameters override as in libpq.
    ("database.sslmode", &["PGSSLMODE"]),
    ("database.sslrootcert", &["PGSSLROOTCERT"]),
    ("database.sslcert", &["PGSSLCERT"]),
    ("database.sslkey", &["PGSSLKEY"]),
    ("database.application_name", &["PGAPPNAME"]),
    ("database.connect_timeout_secs", &["PGCONNECT_TIMEOUT"]),
    ("webhook.secret", &["STACK_WEBHOOK_SECRET"]),
    ("server.port", &["PORT"]),
    (
        "stack.project_id",
        &["HEXCLAVE_PROJECT_ID", "STACK_PROJECT_ID"],
    ),
    (
        "stack.secret_server_key",
        &["HEXCLAVE_SECRET_SERVER_KEY", "STACK_SECRET_SERVER_KEY"],
    ),
    ("stack.api_url", &["HEXCLAVE_API_URL", "STACK_API_URL"]),
];

/// Everything the service can be told, each value checked. Built once at start by [`load`]
/// and passed down.
///
/// [`load`]: Settings::load
#[derive(Debug)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub webhook: WebhookSettings,
    pub retention: RetentionSettings,
    /// Stack's API, when its project id and key are given (reconcile needs them).
    pub stack: Option<StackApiSettings>,
    pub reconcile: ReconcileSettings,
    pub refresh: RefreshSettings,
    pub changes: ChangesSettings,
    pub forward: ForwardSettings,
    pub feed: FeedSettings,
    pub metrics: MetricsSettings,
    pub admin: AdminSettings,
    pub log: LogSettings,
}

/// The admin listener (`POST /forget/…`), apart from the webhook and metrics ports. It runs
/// only when a token is set: no admin endpoint ever answers without one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    pub host: String,
    /// 0 picks a free one.
    pub port: u16,
    /// The bearer token every admin request must carry.
    pub token: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// The address of the Prometheus listener; `None` is `server.host`'s.
    pub host: Option<String>,
    /// The port of the Prometheus listener; 0 picks a free one.
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// The channel every change is announced on with `NOTIFY`; `None` when the feed is off.
    pub channel: Option<String>,
}

#[derive(Debug)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub request_timeout: Duration,
    /// Time outs, connection cap and shutdown grace of both listeners.
    pub connections: ConnectionLimits,
}

#[derive(Debug)]
pub struct DatabaseSettings {
    /// Every command but `trigger` needs it: see [`Settings::database_url`].
    pub url: Option<SecretString>,
    /// TLS as given outside the URL; the URL's own parameters win.
    pub tls: TlsSettings,
    pub application_name: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub connect_timeout: Duration,
    /// A pooled connection unused this long is closed; `None` keeps it.
    pub idle_timeout: Option<Duration>,
    /// The longest one statement of the service may run; `None` is no limit.
    pub statement_timeout: Option<Duration>,
    /// The longest a statement waits for a lock another session holds; `None` is no limit.
    pub lock_timeout: Option<Duration>,
    pub migrate_on_start: bool,
}

#[derive(Debug)]
pub struct WebhookSettings {
    /// The signing keys, one per secret given (several during a rotation); `serve` refuses to
    /// start without one.
    pub keys: Vec<SigningKey>,
    pub tolerance: Duration,
    pub max_body_bytes: usize,
    pub keep_bodies: KeepBodies,
    /// Whether one of the secrets is [`DEVELOPMENT_SECRET`] (allowed for a local setup only).
    pub development_secret: bool,
}

/// The webhook secret `.env.example` publishes, so that `docker compose up` and `trigger` work
/// on a fresh clone with nothing to edit. Anyone can sign with it, so it is refused unless
/// `webhook.allow_development_secret` says the setup is local.
pub const DEVELOPMENT_SECRET: &str = "whsec_NzgS41ZAhf5EKiAvHaYSB6h8AxECu73+";

/// Which messages' bodies `stack.webhook_events` keeps (`webhook.keep_bodies`). Every message
/// is recorded either way, with its id, type, times and outcome: deduplication and ordering
/// need nothing more. A body is what `replay` re-applies, and it holds the personal data of
/// the user it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepBodies {
    /// Every body, so that any message can be replayed.
    All,
    /// Only the bodies of `failed` messages, and of `ignored` ones of a type a later version
    /// may mirror: those an operator may need to replay. The mirror already holds what
    /// applied messages carried.
    Unapplied,
    /// No body; a failed message keeps its error, and Svix's own retention keeps the body.
    None,
}

#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// Recorded messages older than this many days are deleted; `None` keeps them forever.
    pub days: Option<u32>,
    pub interval: Duration,
    pub batch_size: u32,
}

#[derive(Debug, Clone)]
pub struct ReconcileSettings {
    /// Users asked for per page, 1 to 1000.
    pub page_size: u32,
    /// The largest share of a table a run may delete, 0 to 1.
    pub max_delete_share: f64,
    /// How often `serve` runs reconcile; `None` is never.
    pub every: Option<Duration>,
}

/// Fetching a user's or team's current state after a webhook about it (`refresh.*`).
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// Whether `serve` refreshes after webhooks; it needs Stack's API settings.
    pub enabled: bool,
    /// How long after a webhook the fetch waits, so that a burst about one object is one fetch.
    pub delay: Duration,
    /// Refreshes in flight at once, per replica.
    pub concurrency: usize,
    /// The longest wait before retrying a refresh that failed.
    pub max_backoff: Duration,
}

/// The change log (`changes.*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesSettings {
    /// Whether writers log every committed change in `stack.changes` (`serve` sets it).
    pub enabled: bool,
    /// Changes older than this are pruned even if a registered consumer has not read them.
    pub max_age_days: u32,
}

/// Forwarding the change log to NATS JetStream (`forward.*`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSettings {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`; `forward` needs it.
    pub nats_url: Option<String>,
    /// The JetStream stream the changes go to; created if missing, over `<subject_prefix>.>`.
    pub stream: String,
    /// Each change is published to `<subject_prefix>.<table>.<operation>`.
    pub subject_prefix: String,
    /// Also run the forwarder inside `serve` (one replica forwards at a time).
    pub in_serve: bool,
    /// Changes read and published per round.
    pub batch_size: u32,
}

/// What the Stack API client needs, all present.
#[derive(Debug, Clone)]
pub struct StackApiSettings {
    pub project_id: String,
    pub secret_server_key: SecretString,
    pub api_url: String,
    pub request_attempts: u32,
    pub retry_base: Duration,
    /// Requests in flight at once, across the whole run.
    pub concurrency: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// What `serve` needs beyond the common settings, all present.
#[derive(Debug)]
pub struct ServeNeeds<'a> {
    /// At least one key.
    pub keys: &'a [SigningKey],
    /// The scheduled reconcile, with the API settings it needs.
    pub scheduled_reconcile: Option<(Duration, &'a StackApiSettings)>,
    /// The API settings refreshing after webhooks needs, when `refresh.enabled`.
    pub refresh: Option<&'a StackApiSettings>,
    /// The NATS server the forwarder publishes to, when `forward.in_serve`.
    pub forward: Option<&'a str>,
}

/// A setting that is missing or wrong. Messages name the setting, never its value.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid configuration: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("missing setting {key}: set {variable} or `{key}` in a config file")]
    Missing {
        key: &'static str,
        variable: &'static str,
    },
    #[error("missing settings for Stack's API: {0}")]
    MissingStackApi(String),
    #[error("webhook.secret (STACK_WEBHOOK_SECRET): secret number {position} {reason}")]
    BadSecret {
        position: usize,
        reason: SecretError,
    },
    #[error(
        "webhook.secret (STACK_WEBHOOK_SECRET) is the development secret published in \
         .env.example, which anyone can sign with: give the endpoint's own secret from the \
         Hexclave dashboard, or set webhook.allow_development_secret \
         (STACK_SYNC_WEBHOOK__ALLOW_DEVELOPMENT_SECRET=true) for a local setup"
    )]
    DevelopmentSecret,
    #[error(transparent)]
    SecretFile(#[from] secret_files::SecretFileError),
    /// Settings that do not exist, each with the closest one that does.
    #[error("{0}")]
    Unknown(String),
    #[error("{key} must be {expected}")]
    OutOfRange {
        key: &'static str,
        expected: &'static str,
    },
}

/// The settings as written, before they are checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    server: RawServer,
    database: RawDatabase,
    webhook: RawWebhook,
    retention: RawRetention,
    stack: RawStack,
    reconcile: RawReconcile,
    refresh: RawRefresh,
    changes: ChangesSettings,
    forward: ForwardSettings,
    feed: RawFeed,
    metrics: MetricsSettings,
    admin: AdminSettings,
    log: LogSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    enabled: bool,
    channel: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    host: String,
    port: u16,
    request_timeout_secs: u64,
    header_read_timeout_secs: u64,
    max_connections: usize,
    shutdown_grace_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<SecretString>,
    sslmode: Option<String>,
    sslrootcert: Option<PathBuf>,
    sslcert: Option<PathBuf>,
    sslkey: Option<PathBuf>,
    application_name: String,
    max_connections: u32,
    acquire_timeout_secs: u64,
    connect_timeout_secs: u64,
    idle_timeout_secs: Limit,
    statement_timeout_secs: Limit,
    lock_timeout_secs: Limit,
    migrate_on_start: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    secret: Option<SecretString>,
    tolerance_secs: u64,
    max_body_bytes: usize,
    keep_bodies: KeepBodies,
    allow_development_secret: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    days: Limit,
    interval_secs: u64,
    batch_size: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStack {
    project_id: Option<String>,
    secret_server_key: Option<SecretString>,
    api_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    page_size: u32,
    max_delete_share: f64,
    interval_secs: Option<Limit>,
    request_attempts: u32,
    retry_base_ms: u64,
    concurrency: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefresh {
    enabled: bool,
    delay_ms: u64,
    concurrency: usize,
    max_backoff_secs: u64,
}

/// A number, or a word that turns the limit off (`"forever"`, `"off"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Limit {
    Number(u64),
    Word(String),
}

impl Limit {
    /// The number, `None` for `off_word`; anything else, and 0, is out of range.
    fn parse(
        self,
        off_word: &str,
        key: &'static str,
        expected: &'static str,
    ) -> Result<Option<u64>, SettingsError> {
        match self {
            Self::Number(n) if n > 0 => Ok(Some(n)),
            Self::Word(word) if word == off_word => Ok(None),
            _ => Err(SettingsError::OutOfRange { key, expected }),
        }
    }
}

impl Settings {
    /// Loads settings from the defaults, `file` if given, and `env` (the process environment in
    /// production; a plain map in tests), with secrets read from the files their `_FILE`
    /// variables name, and checks every value.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let env = &secret_files::resolve(env)?;
        let mut unknown = known_keys::unknown_variables(env);
        if let Some(file) = file {
            unknown.extend(known_keys::unknown_in_file(file)?);
        }
        if !unknown.is_empty() {
            return Err(SettingsError::Unknown(known_keys::describe(&unknown)));
        }
        let mut settings_env = env.clone();
        settings_env.remove(known_keys::CONFIG_VARIABLE);
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(File::from(file).required(true));
        }
        let prefixed = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(settings_env));
        builder = builder.add_source(prefixed);
        for (key, variables) in PLAIN_VARIABLES {
            let value = variables
                .iter()
                .find_map(|variable| env.get(*variable).filter(|v| !v.trim().is_empty()));
            if !env.contains_key(&known_keys::variable_for(key))
                && let Some(value) = value
            {
                builder = builder.set_override(key, value.as_str())?;
            }
        }
        let raw: Raw = builder.build()?.try_deserialize()?;
        raw.check()
    }

    /// The database URL, which every command but `trigger` needs.
    pub fn database_url(&self) -> Result<&SecretString, SettingsError> {
        self.database.url.as_ref().ok_or(SettingsError::Missing {
            key: "database.url",
            variable: "DATABASE_URL",
        })
    }

    /// The signing keys: at least one, or what is missing.
    pub fn signing_keys(&self) -> Result<&[SigningKey], SettingsError> {
        if self.webhook.keys.is_empty() {
            return Err(SettingsError::Missing {
                key: "webhook.secret",
                variable: "STACK_WEBHOOK_SECRET",
            });
        }
        Ok(&self.webhook.keys)
    }

    /// What `serve` needs beyond the common settings: the database, a signing key, and Stack's
    /// API when reconcile is scheduled. Names what is missing.
    pub fn serve_needs(&self) -> Result<ServeNeeds<'_>, SettingsError> {
        self.database_url()?;
        let keys = self.signing_keys()?;
        let scheduled_reconcile = match self.reconcile.every {
            Some(every) => Some((every, self.stack_api()?)),
            None => None,
        };
        let refresh = match self.refresh.enabled {
            true => Some(self.stack_api()?),
            false => None,
        };
        let forward = match self.forward.in_serve {
            true => Some(self.nats_url()?),
            false => None,
        };
        Ok(ServeNeeds {
            keys,
            scheduled_reconcile,
            refresh,
            forward,
        })
    }

    /// The NATS server `forward` publishes to.
    pub fn nats_url(&self) -> Result<&str, SettingsError> {
        self.forward
            .nats_url
            .as_deref()
            .ok_or(SettingsError::Missing {
                key: "forward.nats_url",
                variable: "STACK_SYNC_FORWARD__NATS_URL",
            })
    }

    /// Stack's API settings, which `reconcile` needs; names every missing one at once.
    pub fn stack_api(&self) -> Result<&StackApiSettings, SettingsError> {
        self.stack.as_ref().ok_or_else(|| {
            SettingsError::MissingStackApi(
                "stack.project_id (HEXCLAVE_PROJECT_ID or STACK_PROJECT_ID), \
                 stack.secret_server_key (HEXCLAVE_SECRET_SERVER_KEY or STACK_SECRET_SERVER_KEY)"
                    .to_owned(),
            )
        })
    }
}

/// `value` unless it is 0.
fn positive<T: PartialEq + Default>(value: T, key: &'static str) -> Result<T, SettingsError> {
    if value == T::default() {
        return Err(SettingsError::OutOfRange {
            key,
            expected: "at least 1",
        });
    }
    Ok(value)
}

fn seconds(value: u64, key: &'static str) -> Result<Duration, SettingsError> {
    positive(value, key).map(Duration::from_secs)
}

/// A text that is not blank.
fn given<T>(value: Option<T>, text: impl Fn(&T) -> &str) -> Option<T> {
    value.filter(|value| !text(value).trim().is_empty())
}

impl Raw {
    fn check(self) -> Result<Settings, SettingsError> {
        Ok(Settings {
            server: ServerSettings {
                host: self.server.host,
                port: self.server.port,
                request_timeout: seconds(
                    self.server.request_timeout_secs,
                    "server.request_timeout_secs",
                )?,
                connections: ConnectionLimits {
                    header_read_timeout: seconds(
                        self.server.header_read_timeout_secs,
                        "server.header_read_timeout_secs",
                    )?,
                    max_connections: positive(
                        self.server.max_connections,
                        "server.max_connections",
                    )?,
                    shutdown_grace: seconds(
                        self.server.shutdown_grace_secs,
                        "server.shutdown_grace_secs",
                    )?,
                },
            },
            database: self.database.check()?,
            webhook: self.webhook.check()?,
            retention: self.retention.check()?,
            stack: check_stack(self.stack, &self.reconcile)?,
            reconcile: self.reconcile.check()?,
            refresh: self.refresh.check()?,
            changes: ChangesSettings {
                max_age_days: positive(self.changes.max_age_days, "changes.max_age_days")?,
                ..self.changes
            },
            forward: check_forward(self.forward)?,
            feed: self.feed.check()?,
            metrics: self.metrics,
            admin: self.admin,
            log: self.log,
        })
    }
}

impl RawDatabase {
    fn check(self) -> Result<DatabaseSettings, SettingsError> {
        let path = |path: Option<PathBuf>| path.filter(|p| !p.as_os_str().is_empty());
        let limit = |limit: Limit, key| {
            let limit = limit.parse("off", key, "a number of seconds, or \"off\"")?;
            Ok::<_, SettingsError>(limit.map(Duration::from_secs))
        };
        Ok(DatabaseSettings {
            url: given(self.url, |url| url.expose_secret()),
            tls: TlsSettings {
                sslmode: given(self.sslmode, |mode| mode.as_str()),
                sslrootcert: path(self.sslrootcert),
                sslcert: path(self.sslcert),
                sslkey: path(self.sslkey),
            },
            application_name: self.application_name,
            max_connections: positive(self.max_connections, "database.max_connections")?,
            acquire_timeout: seconds(self.acquire_timeout_secs, "database.acquire_timeout_secs")?,
            connect_timeout: seconds(self.connect_timeout_secs, "database.connect_timeout_secs")?,
            idle_timeout: limit(self.idle_timeout_secs, "database.idle_timeout_secs")?,
            statement_timeout: limit(
                self.statement_timeout_secs,
                "database.statement_timeout_secs",
            )?,
            lock_timeout: limit(self.lock_timeout_secs, "database.lock_timeout_secs")?,
            migrate_on_start: self.migrate_on_start,
        })
    }
}

impl RawWebhook {
    fn check(self) -> Result<WebhookSettings, SettingsError> {
        let secrets = self.secret.as_ref().map(|s| s.expose_secret());
        let development_secret = secrets
            .unwrap_or_default()
            .split_whitespace()
            .any(|secret| secret == DEVELOPMENT_SECRET);
        if development_secret && !self.allow_development_secret {
            return Err(SettingsError::DevelopmentSecret);
        }
        let keys = secrets
            .unwrap_or_default()
            .split_whitespace()
            .enumerate()
            .map(|(index, secret)| {
                SigningKey::from_secret(secret).map_err(|reason| SettingsError::BadSecret {
                    position: index + 1,
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WebhookSettings {
            keys,
            tolerance: seconds(self.tolerance_secs, "webhook.tolerance_secs")?,
            max_body_bytes: positive(self.max_body_bytes, "webhook.max_body_bytes")?,
            keep_bodies: self.keep_bodies,
            development_secret,
        })
    }
}

impl RawFeed {
    fn check(self) -> Result<FeedSettings, SettingsError> {
        // Postgres truncates identifiers past 63 bytes, and the channel is one.
        if self.channel.is_empty() || self.channel.len() > 63 {
            return Err(SettingsError::OutOfRange {
                key: "feed.channel",
                expected: "a name of 1 to 63 bytes",
            });
        }
        Ok(FeedSettings {
            channel: self.enabled.then_some(self.channel),
        })
    }
}

impl RawRetention {
    fn check(self) -> Result<RetentionSettings, SettingsError> {
        let days = self
            .days
            .parse(
                "forever",
                "retention.days",
                "a number of days, or \"forever\"",
            )?
            .map(|days| u32::try_from(days).unwrap_or(u32::MAX));
        Ok(RetentionSettings {
            days,
            interval: seconds(self.interval_secs, "retention.interval_secs")?,
            batch_size: positive(self.batch_size, "retention.batch_size")?,
        })
    }
}

impl RawReconcile {
    fn check(self) -> Result<ReconcileSettings, SettingsError> {
        if !(1..=1000).contains(&self.page_size) {
            return Err(SettingsError::OutOfRange {
                key: "reconcile.page_size",
                expected: "from 1 to 1000 (Stack's largest page)",
            });
        }
        if !(0.0..=1.0).contains(&self.max_delete_share) {
            return Err(SettingsError::OutOfRange {
                key: "reconcile.max_delete_share",
                expected: "a share from 0 to 1",
            });
        }
        let every = match self.interval_secs {
            None => None,
            Some(limit) => limit.parse(
                "off",
                "reconcile.interval_secs",
                "a number of seconds, or \"off\"",
            )?,
        };
        Ok(ReconcileSettings {
            page_size: self.page_size,
            max_delete_share: self.max_delete_share,
            every: every.map(Duration::from_secs),
        })
    }
}

fn check_forward(forward: ForwardSettings) -> Result<ForwardSettings, SettingsError> {
    let name_part = |text: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !name_part(&forward.stream) {
        return Err(SettingsError::OutOfRange {
            key: "forward.stream",
            expected: "a JetStream stream name: letters, digits, - and _",
        });
    }
    if !forward.subject_prefix.split('.').all(name_part) {
        return Err(SettingsError::OutOfRange {
            key: "forward.subject_prefix",
            expected: "NATS subject tokens (letters, digits, - and _) separated by dots",
        });
    }
    Ok(ForwardSettings {
        nats_url: given(forward.nats_url, |url| url.as_str()),
        batch_size: positive(forward.batch_size, "forward.batch_size")?,
        ..forward
    })
}

impl RawRefresh {
    fn check(self) -> Result<RefreshSettings, SettingsError> {
        Ok(RefreshSettings {
            enabled: self.enabled,
            delay: Duration::from_millis(self.delay_ms),
            concurrency: positive(self.concurrency, "refresh.concurrency")?,
            max_backoff: seconds(self.max_backoff_secs, "refresh.max_backoff_secs")?,
        })
    }
}

/// Stack's API settings when both the project id and the key are given, none when neither
/// is; one without the other is a mistake worth stopping for.
fn check_stack(
    stack: RawStack,
    reconcile: &RawReconcile,
) -> Result<Option<StackApiSettings>, SettingsError> {
    let project_id = given(stack.project_id, |id| id.as_str());
    let key = given(stack.secret_server_key, |key| key.expose_secret());
    match (project_id, key) {
        (Some(project_id), Some(secret_server_key)) => Ok(Some(StackApiSettings {
            project_id,
            secret_server_key,
            api_url: stack.api_url.trim_end_matches('/').to_owned(),
            request_attempts: positive(reconcile.request_attempts, "reconcile.request_attempts")?,
            retry_base: Duration::from_millis(reconcile.retry_base_ms),
            concurrency: positive(reconcile.concurrency, "reconcile.concurrency")?,
        })),
        (None, None) => Ok(None),
        (None, Some(_)) => Err(SettingsError::MissingStackApi(
            "stack.project_id (HEXCLAVE_PROJECT_ID or STACK_PROJECT_ID)".to_owned(),
        )),
        (Some(_), None) => Err(SettingsError::MissingStackApi(
            "stack.secret_server_key (HEXCLAVE_SECRET_SERVER_KEY or STACK_SECRET_SERVER_KEY)"
                .to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: (&str, &str) = ("DATABASE_URL", "postgres://localhost/app");

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The settings with a database URL and `pairs` on top.
    fn load(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let mut vars = env(pairs);
        vars.entry(URL.0.to_owned()).or_insert(URL.1.to_owned());
        Settings::load(None, &vars)
    }

    #[test]
    fn the_published_development_secret_is_refused_unless_the_setup_is_local() {
        let refused = load(&[("STACK_WEBHOOK_SECRET", DEVELOPMENT_SECRET)])
            .unwrap_err()
            .to_string();
        let in_a_rotation = load(&[(
            "STACK_WEBHOOK_SECRET",
            &format!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw {DEVELOPMENT_SECRET}"),
        )]);
        let local = load(&[
            ("STACK_WEBHOOK_SECRET", DEVELOPMENT_SECRET),
            ("STACK_SYNC_WEBHOOK__ALLOW_DEVELOPMENT_SECRET", "true"),
        ])
        .unwrap();

        assert!(
            refused.contains("development secret published in .env.example"),
            "{refused}"
        );
        assert!(matches!(
            in_a_rotation,
            Err(SettingsError::DevelopmentSecret)
        ));
        assert!(local.webhook.development_secret);
        assert_eq!(local.webhook.keys.len(), 1);
    }

    #[test]
    fn env_example_holds_the_development_secret_and_allows_it() {
        let example = include_str!("../../.env.example");

        assert!(
            example
                .lines()
                .any(|line| line == format!("STACK_WEBHOOK_SECRET={DEVELOPMENT_SECRET}")),
            "{example}"
        );
        assert!(
            example
                .lines()
                .any(|line| line == "STACK_SYNC_WEBHOOK__ALLOW_DEVELOPMENT_SECRET=true")
        );
    }

    #[test]
    fn defaults_parse_and_need_the_two_required_settings() {
        let without_url = Settings::load(None, &env(&[])).unwrap();
        let missing_url = without_url.database_url().unwrap_err().to_string();
        assert_eq!(
            missing_url,
            "missing setting database.url: set DATABASE_URL or `database.url` in a config file"
        );
        let settings = load(&[]).unwrap();
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.webhook.max_body_bytes, 1024 * 1024);
        assert_eq!(settings.webhook.tolerance, Duration::from_secs(300));
        assert!(settings.database.migrate_on_start);
        assert_eq!(settings.retention.days, Some(30));
        assert_eq!(settings.reconcile.every, None);
        assert_eq!(settings.feed.channel, None);
        let missing_secret = settings.serve_needs().unwrap_err().to_string();
        assert!(
            missing_secret.contains("STACK_WEBHOOK_SECRET"),
            "{missing_secret}"
        );
    }

    #[test]
    fn plain_variables_fill_their_settings() {
        let settings = load(&[
            (
                "STACK_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            ),
            ("PORT", "9000"),
        ])
        .unwrap();
        assert_eq!(settings.server.port, 9000);
        assert_eq!(settings.database_url().unwrap().expose_secret(), URL.1);
        assert_eq!(settings.serve_needs().unwrap().keys.len(), 2);
    }

    #[test]
    fn prefixed_variables_win_over_plain_ones() {
        let settings = load(&[
            ("PORT", "9000"),
            ("STACK_SYNC_SERVER__PORT", "9100"),
            ("STACK_SYNC_WEBHOOK__MAX_BODY_BYTES", "2048"),
            ("STACK_SYNC_LOG__FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!(settings.server.port, 9100);
        assert_eq!(settings.webhook.max_body_bytes, 2048);
        assert_eq!(settings.log.format, LogFormat::Json);
    }

    #[test]
    fn a_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let path = std::env::temp_dir().join(format!("stack-sync-{}.toml", std::process::id()));
        std::fs::write(&path, "[server]\nport = 7000\nhost = \"127.0.0.1\"\n").unwrap();
        let settings = Settings::load(Some(&path), &env(&[URL, ("PORT", "7001")])).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(settings.server.host, "127.0.0.1");
        assert_eq!(settings.server.port, 7001);
    }

    #[test]
    fn misspelt_keys_stop_the_load_naming_each_with_the_key_meant() {
        let path =
            std::env::temp_dir().join(format!("stack-sync-typo-{}.toml", std::process::id()));
        std::fs::write(&path, "[retention]\nday = 7\n[sever]\nport = 1\n").unwrap();
        let vars = env(&[
            URL,
            ("STACK_SYNC_CONFIG", "named by clap, not a setting"),
            ("STACK_SYNC_DATABASE__SSL_MODE", "require"),
        ]);
        let err = Settings::load(Some(&path), &vars).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        let file = path.display();
        assert_eq!(
            err,
            format!(
                "unknown settings: STACK_SYNC_DATABASE__SSL_MODE (did you mean \
                 STACK_SYNC_DATABASE__SSLMODE?), `retention.day` in {file} (did you mean \
                 `retention.days`?), `sever.port` in {file} (did you mean `server.port`?)"
            )
        );
    }

    #[test]
    fn the_config_variable_is_not_taken_for_a_setting() {
        let settings = load(&[("STACK_SYNC_CONFIG", "/nowhere.toml")]).unwrap();
        assert_eq!(settings.server.port, 8080);
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let result = Settings::load(
            Some(Path::new("/nonexistent/stack-sync.toml")),
            &env(&[URL]),
        );
        assert!(matches!(result, Err(SettingsError::Invalid(_))));
    }

    #[test]
    fn a_bad_port_names_the_setting() {
        let err = load(&[("PORT", "eighty")]).unwrap_err().to_string();
        assert!(err.contains("server.port"), "{err}");
    }

    #[test]
    fn a_bad_secret_is_named_by_position_without_its_value() {
        let err = load(&[(
            "STACK_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_not-base64!",
        )])
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "webhook.secret (STACK_WEBHOOK_SECRET): secret number 2 is not valid standard base64 \
             after the optional `whsec_` prefix"
        );
    }

    #[test]
    fn stack_api_settings_use_the_sdk_variable_names() {
        let settings = load(&[
            ("STACK_PROJECT_ID", "6f1c2e9a-0b7d-4e1f-9a3c-2d4e5f6a7b8c"),
            ("STACK_SECRET_SERVER_KEY", "ssk_test"),
            ("STACK_API_URL", "http://localhost:8102/"),
        ])
        .unwrap();
        let api = settings.stack_api().unwrap();
        assert_eq!(api.project_id, "6f1c2e9a-0b7d-4e1f-9a3c-2d4e5f6a7b8c");
        assert_eq!(api.secret_server_key.expose_secret(), "ssk_test");
        assert_eq!(api.api_url, "http://localhost:8102");
    }

    #[test]
    fn hexclave_names_win_over_stack_auth_names_and_either_alone_works() {
        let both = load(&[
            ("HEXCLAVE_PROJECT_ID", "hexclave-project"),
            ("STACK_PROJECT_ID", "stack-project"),
            ("HEXCLAVE_SECRET_SERVER_KEY", "ssk_hexclave"),
            ("STACK_SECRET_SERVER_KEY", "ssk_stack"),
            ("HEXCLAVE_API_URL", "https://api.hexclave.example"),
            ("STACK_API_URL", "https://api.stack.example"),
        ])
        .unwrap();
        let api = both.stack_api().unwrap();
        assert_eq!(api.project_id, "hexclave-project");
        assert_eq!(api.secret_server_key.expose_secret(), "ssk_hexclave");
        assert_eq!(api.api_url, "https://api.hexclave.example");

        let hexclave_only = load(&[
            ("HEXCLAVE_PROJECT_ID", "p"),
            ("HEXCLAVE_SECRET_SERVER_KEY", "ssk_h"),
        ])
        .unwrap();
        let api = hexclave_only.stack_api().unwrap();
        assert_eq!(
            api.api_url, "https://api.hexclave.com",
            "the default origin"
        );
        let mixed = load(&[
            ("HEXCLAVE_PROJECT_ID", "p"),
            ("STACK_SECRET_SERVER_KEY", "ssk_s"),
        ]);
        assert_eq!(mixed.unwrap().stack_api().unwrap().project_id, "p");
    }

    #[test]
    fn missing_stack_api_settings_are_named_together() {
        let settings = load(&[]).unwrap();
        assert!(settings.stack.is_none());
        let err = settings.stack_api().unwrap_err().to_string();
        assert_eq!(
            err,
            "missing settings for Stack's API: stack.project_id (HEXCLAVE_PROJECT_ID or \
             STACK_PROJECT_ID), stack.secret_server_key (HEXCLAVE_SECRET_SERVER_KEY or \
             STACK_SECRET_SERVER_KEY)"
        );
        let half = load(&[("STACK_PROJECT_ID", "p")]).unwrap_err().to_string();
        assert!(
            half.ends_with(
                "stack.secret_server_key (HEXCLAVE_SECRET_SERVER_KEY or STACK_SECRET_SERVER_KEY)"
            ),
            "{half}"
        );
    }

    #[test]
    fn blank_plain_variables_count_as_missing() {
        let settings = Settings::load(None, &env(&[("DATABASE_URL", "  ")])).unwrap();
        let err = settings.database_url().unwrap_err();
        assert!(matches!(
            err,
            SettingsError::Missing {
                key: "database.url",
                ..
            }
        ));
    }

    #[test]
    fn out_of_range_values_are_refused_naming_their_key() {
        for (variable, value, key) in [
            (
                "STACK_SYNC_RECONCILE__PAGE_SIZE",
                "0",
                "reconcile.page_size",
            ),
            (
                "STACK_SYNC_RECONCILE__PAGE_SIZE",
                "1001",
                "reconcile.page_size",
            ),
            (
                "STACK_SYNC_RECONCILE__MAX_DELETE_SHARE",
                "1.5",
                "reconcile.max_delete_share",
            ),
            (
                "STACK_SYNC_RECONCILE__INTERVAL_SECS",
                "0",
                "reconcile.interval_secs",
            ),
            ("STACK_SYNC_RETENTION__DAYS", "0", "retention.days"),
            ("STACK_SYNC_RETENTION__DAYS", "never", "retention.days"),
            (
                "STACK_SYNC_RETENTION__BATCH_SIZE",
                "0",
                "retention.batch_size",
            ),
            (
                "STACK_SYNC_RETENTION__INTERVAL_SECS",
                "0",
                "retention.interval_secs",
            ),
            (
                "STACK_SYNC_DATABASE__MAX_CONNECTIONS",
                "0",
                "database.max_connections",
            ),
            (
                "STACK_SYNC_WEBHOOK__TOLERANCE_SECS",
                "0",
                "webhook.tolerance_secs",
            ),
            (
                "STACK_SYNC_SERVER__REQUEST_TIMEOUT_SECS",
                "0",
                "server.request_timeout_secs",
            ),
        ] {
            let err = load(&[(variable, value)]).unwrap_err().to_string();
            assert!(err.starts_with(key), "{variable}={value}: {err}");
        }
    }

    #[test]
    fn the_feed_is_enabled_on_its_channel() {
        let on = load(&[("STACK_SYNC_FEED__ENABLED", "true")]).unwrap();
        assert_eq!(on.feed.channel.as_deref(), Some("stack_sync"));
        let renamed = load(&[
            ("STACK_SYNC_FEED__ENABLED", "true"),
            ("STACK_SYNC_FEED__CHANNEL", "mirror"),
        ])
        .unwrap();
        assert_eq!(renamed.feed.channel.as_deref(), Some("mirror"));
        let long = "x".repeat(64);
        let err = load(&[("STACK_SYNC_FEED__CHANNEL", long.as_str())]).unwrap_err();
        assert!(err.to_string().starts_with("feed.channel"), "{err}");
    }

    #[test]
    fn off_is_said_in_words() {
        let settings = load(&[
            ("STACK_SYNC_RETENTION__DAYS", "forever"),
            ("STACK_SYNC_RECONCILE__INTERVAL_SECS", "off"),
        ])
        .unwrap();
        assert_eq!(settings.retention.days, None);
        assert_eq!(settings.reconcile.every, None);
        let scheduled = load(&[("STACK_SYNC_RECONCILE__INTERVAL_SECS", "3600")]).unwrap();
        assert_eq!(scheduled.reconcile.every, Some(Duration::from_secs(3600)));
    }
}
