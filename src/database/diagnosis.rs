//! Why a connection failed, in one line that names the setting to change; and the check that
//! refuses a pooler which would hand one connection's session to another.

use std::path::PathBuf;
use std::time::Duration;

use rustls::CertificateError;
use sqlx::postgres::PgSslMode;
use sqlx::{Executor, PgConnection, Row};

use super::mode_name;
use super::tls::{Roots, Tls};

const URL: &str = "database.url (DATABASE_URL)";
const MODE_SETTINGS: &str = "in database.url, database.sslmode or PGSSLMODE";

/// A connection that could not be made, or settings that cannot make one. No message holds a
/// password, a key or the URL.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("missing setting database.url: set DATABASE_URL or `database.url` in a config file")]
    MissingUrl,
    #[error("{URL} is not a valid Postgres URL")]
    NotAUrl,
    #[error("{URL} is not a Postgres URL: it must start with postgres://")]
    NotPostgres,
    #[error("{URL} is not a valid Postgres URL: {0}")]
    BadUrl(String),
    #[error(
        "sslmode `{0}` is not one of disable, prefer, require, verify-ca, verify-full \
         ({MODE_SETTINGS})"
    )]
    UnknownMode(String),
    #[error(
        "sslrootcert=system allows only sslmode=verify-full, as in libpq, but sslmode is {}: \
         set sslmode=verify-full or leave it out", mode_name(*.0)
    )]
    WeakModeWithSystemRoots(PgSslMode),
    #[error(
        "sslmode={} checks the server's certificate, but no sslrootcert says against what: set \
         sslrootcert to the file of the CA that signed it (managed providers publish theirs), or \
         to `system` for the operating system's roots", mode_name(*.0)
    )]
    NoRoots(PgSslMode),
    #[error("sslcert and sslkey go together: give the client certificate and its key, or neither")]
    HalfAClientCertificate,
    #[error("{setting}: cannot read {} ({reason})", path.display())]
    Unreadable {
        setting: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("sslrootcert: {} holds no PEM certificate", .0.display())]
    NoCertificateIn(PathBuf),
    #[error(
        "sslrootcert=system: the operating system has no trusted roots (install ca-certificates, \
         or point SSL_CERT_FILE at a bundle)"
    )]
    NoSystemRoots,
    #[error(
        "connecting to the database given by {URL} took longer than {} s \
         (database.connect_timeout_secs): check the host, the port and the network in between",
        .0.as_secs()
    )]
    TimedOut(Duration),
    #[error(
        "the server at {host} accepts only TLS connections, but sslmode is {}: set \
         sslmode=verify-full with sslrootcert, or sslmode=require ({MODE_SETTINGS})",
        mode_name(*mode)
    )]
    TlsRequiredByServer { host: String, mode: PgSslMode },
    #[error(
        "the server at {host} does not offer TLS, but sslmode is {}: turn on ssl on the \
         server, or set sslmode=prefer ({MODE_SETTINGS})",
        mode_name(*mode)
    )]
    ServerWithoutTls { host: String, mode: PgSslMode },
    #[error(
        "the certificate of the server at {host} is not signed by a CA in sslrootcert ({roots}): \
         the CA is wrong; give the one that signed the server's certificate"
    )]
    UntrustedCertificate { host: String, roots: String },
    #[error(
        "the certificate of the server is signed by a trusted CA but is not valid for the host \
         name {host}: the host name is wrong; connect with a name the certificate lists, or use \
         sslmode=verify-ca, which does not check it"
    )]
    WrongHost { host: String },
    #[error("the certificate of the server at {host} has expired or is not valid yet")]
    OutOfDate { host: String },
    #[error("TLS with the server at {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error(
        "{URL} leads to a pooler in transaction mode (two connections were served by one \
         Postgres session), which cannot carry stack-sync's prepared statements and session \
         locks: use the pooler's session mode or a direct connection (README, \"Databases\")"
    )]
    TransactionPooler,
    #[error("connecting to the database given by {URL}: {0}")]
    Other(String),
}

/// The line for `err`, met connecting to `host` with `tls`.
pub fn explain(err: &sqlx::Error, tls: &Tls, host: &str) -> ConnectError {
    let host = host.to_owned();
    if let Some(tls_err) = rustls_error(err) {
        return match tls_err {
            rustls::Error::InvalidCertificate(cert) => certificate(cert, tls, host),
            other => ConnectError::Tls {
                host,
                reason: other.to_string(),
            },
        };
    }
    match err {
        sqlx::Error::Tls(reason) if reason.to_string() == "server does not support TLS" => {
            ConnectError::ServerWithoutTls {
                host,
                mode: tls.mode,
            }
        }
        sqlx::Error::Tls(reason) => ConnectError::Tls {
            host,
            reason: reason.to_string(),
        },
        // pg_hba.conf matched no line for a plain connection: the server wants TLS.
        // https://www.postgresql.org/docs/current/auth-pg-hba-conf.html
        sqlx::Error::Database(db)
            if db.code().as_deref() == Some("28000") && db.message().ends_with("no encryption") =>
        {
            ConnectError::TlsRequiredByServer {
                host,
                mode: tls.mode,
            }
        }
        other => ConnectError::Other(other.to_string()),
    }
}

fn certificate(err: &CertificateError, tls: &Tls, host: String) -> ConnectError {
    match err {
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            ConnectError::WrongHost { host }
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => ConnectError::OutOfDate { host },
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            let roots = match &tls.roots {
                Some(Roots::File(path)) => path.display().to_string(),
                Some(Roots::System) => "the operating system's roots".to_owned(),
                None => "none given".to_owned(),
            };
            ConnectError::UntrustedCertificate { host, roots }
        }
        other => ConnectError::Tls {
            host,
            reason: format!("the server's certificate was refused: {other:?}"),
        },
    }
}

/// The TLS library's own error, where sqlx kept it (inside an I/O error, or as its TLS error).
fn rustls_error(err: &sqlx::Error) -> Option<&rustls::Error> {
    match err {
        sqlx::Error::Io(io) => io.get_ref()?.downcast_ref(),
        sqlx::Error::Tls(inner) => inner.downcast_ref(),
        _ => None,
    }
}

/// Whether two open connections are served by one Postgres session in turn, as through a
/// pooler that gives each transaction whichever server session is free (PgBouncer's
/// `pool_mode = transaction`). Directly, or through a pooler in session mode, two open
/// connections never share a backend; a transaction pooler hands the session that `first` has
/// just released to `second`, the next to ask. Plain (simple-protocol) queries, so the check
/// itself needs no prepared statement.
pub async fn share_a_session(
    first: &mut PgConnection,
    second: &mut PgConnection,
) -> Result<bool, sqlx::Error> {
    for _ in 0..3 {
        if backend(first).await? == backend(second).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn backend(connection: &mut PgConnection) -> Result<i32, sqlx::Error> {
    let row = connection.fetch_one("select pg_backend_pid()").await?;
    row.try_get(0)
}
