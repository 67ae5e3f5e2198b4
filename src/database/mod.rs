//! Connecting to the app's database the way libpq does: TLS modes and certificates from the URL,
//! the settings or libpq's variables; the application name and per-statement time limits; and
//! one clear line, naming the setting to change, for each way a connection can fail.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection, PgPool};

use crate::config::DatabaseSettings;

mod diagnosis;
mod tls;

pub use diagnosis::ConnectError;
pub use tls::Tls;

/// The connection options `settings` describe, and the TLS they resolve to.
pub fn connect_options(
    settings: &DatabaseSettings,
) -> Result<(PgConnectOptions, Tls), ConnectError> {
    let url = settings.url.as_ref().ok_or(ConnectError::MissingUrl)?;
    let mut url = url::Url::parse(url.expose_secret()).map_err(|_| ConnectError::NotAUrl)?;
    if !["postgres", "postgresql"].contains(&url.scheme()) {
        return Err(ConnectError::NotPostgres);
    }
    let given = tls::take_url_parameters(&mut url);
    let tls = Tls::resolve(&given, &settings.tls)?;
    // The URL may hold a password: errors name the setting, never the value.
    let options = PgConnectOptions::from_str(url.as_str())
        .map_err(|err| ConnectError::BadUrl(err.to_string()))?;
    let application_name = given
        .application_name
        .as_deref()
        .unwrap_or(&settings.application_name);
    let options = tls
        .apply(options)?
        .application_name(application_name)
        // A startup parameter PgBouncer refuses unless told to ignore it; Postgres 12 and later
        // send floats exactly without it, and stack-sync supports 14 and later.
        .extra_float_digits(None);
    Ok((options, tls))
}

/// Opens the pool, failing now, with the reason, rather than on the first webhook.
pub async fn connect(settings: &DatabaseSettings) -> Result<PgPool, ConnectError> {
    let (options, tls) = connect_options(settings)?;
    let explain = |err: sqlx::Error| diagnosis::explain(&err, &tls, options.get_host());
    // Plain connections first: the pool retries until its timeout and then reports only
    // "pool timed out", hiding the cause (connection refused, a certificate, a password).
    let open = || async {
        tokio::time::timeout(
            settings.connect_timeout,
            PgConnection::connect_with(&options),
        )
        .await
        .map_err(|_| ConnectError::TimedOut(settings.connect_timeout))?
        .map_err(explain)
    };
    let mut first = open().await?;
    let mut second = open().await?;
    if diagnosis::share_a_session(&mut first, &mut second)
        .await
        .map_err(explain)?
    {
        return Err(ConnectError::TransactionPooler);
    }
    first.close().await.map_err(explain)?;
    second.close().await.map_err(explain)?;
    let session = session_settings(settings);
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        .idle_timeout(settings.idle_timeout)
        .after_connect(move |connection, _| {
            let session = AssertSqlSafe(session.clone());
            Box::pin(async move { connection.execute(session).await.map(drop) })
        })
        .connect_lazy_with(options))
}

/// The `set` statements every pooled connection starts with. A startup parameter (`options`)
/// would save the round trip, but PgBouncer refuses it; plain `set` passes every pooler that
/// keeps a session, and a pooler's reset (`discard all`) ends it with the session.
fn session_settings(settings: &DatabaseSettings) -> String {
    let millis = |limit: Option<Duration>| limit.map_or(0, |limit| limit.as_millis());
    format!(
        "set statement_timeout = {}; set lock_timeout = {}",
        millis(settings.statement_timeout),
        millis(settings.lock_timeout)
    )
}

/// The TLS mode a connection with `options` uses, in libpq's words.
pub fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// Where libpq-style TLS settings given outside the URL come from: the config file,
/// `STACK_SYNC_DATABASE__SSL*`, or libpq's own `PGSSL*` variables.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<PathBuf>,
    pub sslcert: Option<PathBuf>,
    pub sslkey: Option<PathBuf>,
}
