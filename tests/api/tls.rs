//! Connecting to a Postgres that accepts TLS connections only, as managed providers run it:
//! every `sslmode` that should connect does, and every one that should not says, in one line
//! without the password, which setting to change.

use sqlx::{Connection, PgConnection};

use crate::support::command::{stack_sync, stderr_of};
use crate::support::example;
use crate::support::postgres::{Certificates, PrivateCluster};
use crate::support::serve_process::{ServeProcess, signed};

const PASSWORD: &str = "s3cret-pw";

struct TlsServer {
    cluster: PrivateCluster,
    certificates: Certificates,
}

impl TlsServer {
    fn start() -> Self {
        let (cluster, certificates) = PrivateCluster::start_tls_only();
        Self {
            cluster,
            certificates,
        }
    }

    /// A URL for `host` with `query`, the file names in it (`ca.crt`, …) made whole.
    fn url(&self, host: &str, query: &str) -> String {
        let query = ["ca.crt", "other-ca.crt"]
            .iter()
            .fold(query.to_owned(), |query, name| {
                query.replace(
                    &format!("={name}"),
                    &format!("={}", self.certificates.path(name)),
                )
            });
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres?{query}",
            self.cluster.port
        )
    }
}

/// `stack-sync migrate` with `vars`: whether it succeeded, and what it printed on stderr.
fn migrate(vars: &[(&str, &str)]) -> (bool, String) {
    let output = stack_sync(&["migrate"], vars).output().unwrap();
    (output.status.success(), stderr_of(&output))
}

#[test]
fn every_mode_that_should_connect_does() {
    let server = TlsServer::start();
    for (host, query) in [
        ("127.0.0.1", ""),
        ("127.0.0.1", "sslmode=prefer"),
        ("127.0.0.1", "sslmode=require"),
        ("127.0.0.1", "sslmode=verify-ca&sslrootcert=ca.crt"),
        ("127.0.0.1", "sslmode=require&sslrootcert=ca.crt"),
        ("localhost", "sslmode=verify-full&sslrootcert=ca.crt"),
    ] {
        let url = server.url(host, query);
        let (migrated, stderr) = migrate(&[("DATABASE_URL", &url)]);
        assert!(migrated, "{host} {query}: {stderr}");
    }
}

#[test]
fn libpq_variables_set_the_mode_and_the_url_overrides_them() {
    let server = TlsServer::start();
    let ca = server.certificates.path("ca.crt");
    let plain = server.url("localhost", "");
    let from_variables = [
        ("DATABASE_URL", plain.as_str()),
        ("PGSSLMODE", "verify-full"),
        ("PGSSLROOTCERT", ca.as_str()),
    ];
    let (migrated, stderr) = migrate(&from_variables);
    assert!(migrated, "{stderr}");

    let disabled = server.url("localhost", "sslmode=disable");
    let overridden = [
        ("DATABASE_URL", disabled.as_str()),
        ("PGSSLMODE", "require"),
    ];
    let (migrated, stderr) = migrate(&overridden);
    assert!(!migrated);
    assert!(stderr.contains("accepts only TLS connections"), "{stderr}");
}

#[test]
fn every_mode_that_should_fail_names_what_to_change_in_one_line() {
    let server = TlsServer::start();
    let other_ca = server.certificates.path("other-ca.crt");
    let missing = server.certificates.path("missing.crt");
    let cases = [
        (
            server.url("127.0.0.1", "sslmode=disable"),
            "the server at 127.0.0.1 accepts only TLS connections, but sslmode is disable",
        ),
        (
            server.url("localhost", "sslmode=verify-full&sslrootcert=other-ca.crt"),
            &format!("not signed by a CA in sslrootcert ({other_ca}): the CA is wrong") as &str,
        ),
        (
            server.url("127.0.0.1", "sslmode=verify-full&sslrootcert=ca.crt"),
            "not valid for the host name 127.0.0.1: the host name is wrong",
        ),
        (
            server.url("localhost", "sslmode=verify-full"),
            "sslmode=verify-full checks the server's certificate, but no sslrootcert",
        ),
        (
            server.url(
                "localhost",
                &format!("sslmode=verify-ca&sslrootcert={missing}"),
            ),
            &format!("sslrootcert: cannot read {missing}") as &str,
        ),
    ];
    for (url, expected) in cases {
        let (migrated, stderr) = migrate(&[("DATABASE_URL", &url)]);
        assert!(!migrated, "{url}");
        assert!(stderr.contains(expected), "{url}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");
    }
}

#[test]
fn a_server_without_tls_is_refused_when_tls_is_required() {
    let plain = PrivateCluster::start();
    let url = format!("{}?sslmode=require", plain.url());
    let (migrated, stderr) = migrate(&[("DATABASE_URL", &url)]);
    assert!(!migrated);
    assert!(
        stderr.contains("does not offer TLS, but sslmode is require"),
        "{stderr}"
    );
    let (migrated, stderr) = migrate(&[("DATABASE_URL", &plain.url())]);
    assert!(
        migrated,
        "prefer falls back to a plain connection: {stderr}"
    );
}

#[tokio::test]
async fn serve_applies_a_signed_webhook_over_verify_full() {
    let server = TlsServer::start();
    let url = server.url("localhost", "sslmode=verify-full&sslrootcert=ca.crt");
    let service = ServeProcess::start_with_url(&url, &[]);
    let body = example("user.created").to_string();
    let (id, timestamp, signature) = signed(&body);

    let response = service.post(&id, timestamp, &signature, &body).await;

    assert_eq!(response.status(), 200);
    let mut reader = PgConnection::connect(&url).await.unwrap();
    let (users, encrypted): (i64, bool) = sqlx::query_as(
        "select (select count(*) from stack.users),
                (select bool_and(ssl) from pg_stat_ssl s join pg_stat_activity a using (pid)
                 where a.application_name = 'stack-sync')",
    )
    .fetch_one(&mut reader)
    .await
    .unwrap();
    assert_eq!(users, 1);
    assert!(encrypted, "the service's connections use TLS");
}
