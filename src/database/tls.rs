//! libpq's TLS rules, resolved before sqlx connects: which `sslmode`, which roots, which client
//! certificate, from the URL first and then the settings; see
//! <https://www.postgresql.org/docs/current/libpq-ssl.html>.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::{ConnectError, TlsSettings};

/// What the URL's query said about TLS and the application name, taken out of it so that each
/// is resolved here once (sqlx would otherwise read them again, by its own rules).
#[derive(Debug, Default)]
pub struct UrlParameters {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub application_name: Option<String>,
}

/// Removes the TLS parameters and `application_name` (libpq's names and sqlx's aliases) from
/// `url`'s query and returns them.
pub fn take_url_parameters(url: &mut url::Url) -> UrlParameters {
    let mut given = UrlParameters::default();
    let mut kept = Vec::new();
    for (key, value) in url.query_pairs() {
        let value = value.into_owned();
        let slot = match &*key {
            "sslmode" | "ssl-mode" => &mut given.sslmode,
            "sslrootcert" | "ssl-root-cert" | "ssl-ca" => &mut given.sslrootcert,
            "sslcert" | "ssl-cert" => &mut given.sslcert,
            "sslkey" | "ssl-key" => &mut given.sslkey,
            "application_name" => &mut given.application_name,
            _ => {
                kept.push((key.into_owned(), value));
                continue;
            }
        };
        *slot = Some(value);
    }
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    given
}

/// Where the server's certificate must lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// A PEM file of trusted certificates (`sslrootcert=/path`).
    File(PathBuf),
    /// The operating system's trusted roots (`sslrootcert=system`, as libpq 16 and later).
    System,
}

/// The TLS a connection uses, resolved and checked.
#[derive(Debug, Clone)]
pub struct Tls {
    pub mode: PgSslMode,
    pub roots: Option<Roots>,
    /// A client certificate and its key.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl Tls {
    /// libpq's rules over the URL's parameters, then `settings`:
    /// - `sslmode` defaults to `prefer`, or `verify-full` with `sslrootcert=system`, which
    ///   allows no weaker mode;
    /// - `require` with a root file verifies the CA, as `verify-ca` does;
    /// - the verifying modes need roots: libpq looks in `~/.postgresql/root.crt`, stack-sync
    ///   asks for them by name, since a container has no such home.
    pub fn resolve(url: &UrlParameters, settings: &TlsSettings) -> Result<Self, ConnectError> {
        let path = |given: &Option<String>, set: &Option<PathBuf>| {
            given.as_ref().map(PathBuf::from).or_else(|| set.clone())
        };
        let roots = path(&url.sslrootcert, &settings.sslrootcert).map(|path| {
            if path == Path::new("system") {
                Roots::System
            } else {
                Roots::File(path)
            }
        });
        let mode = match url.sslmode.as_ref().or(settings.sslmode.as_ref()) {
            Some(mode) => parse_mode(mode)?,
            None if roots == Some(Roots::System) => PgSslMode::VerifyFull,
            None => PgSslMode::Prefer,
        };
        let mode = match (mode, &roots) {
            (PgSslMode::Require, Some(Roots::File(_))) => PgSslMode::VerifyCa,
            (PgSslMode::VerifyFull, _) | (_, None) => mode,
            (_, Some(Roots::System)) => return Err(ConnectError::WeakModeWithSystemRoots(mode)),
            (mode, _) => mode,
        };
        let verifies = matches!(mode, PgSslMode::VerifyCa | PgSslMode::VerifyFull);
        if verifies && roots.is_none() {
            return Err(ConnectError::NoRoots(mode));
        }
        let client = match (
            path(&url.sslcert, &settings.sslcert),
            path(&url.sslkey, &settings.sslkey),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => return Err(ConnectError::HalfAClientCertificate),
        };
        Ok(Self {
            mode,
            roots: roots.filter(|_| verifies),
            client: client.filter(|_| !matches!(mode, PgSslMode::Disable)),
        })
    }

    /// `options` with this TLS, after checking that every file it names can be read.
    pub fn apply(&self, options: PgConnectOptions) -> Result<PgConnectOptions, ConnectError> {
        let mut options = options.ssl_mode(self.mode);
        match &self.roots {
            Some(Roots::File(path)) => {
                let pem = readable("sslrootcert", path)?;
                if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                    return Err(ConnectError::NoCertificateIn(path.clone()));
                }
                options = options.ssl_root_cert(path);
            }
            Some(Roots::System) => options = options.ssl_root_cert_from_pem(system_roots()?),
            None => {}
        }
        if let Some((cert, key)) = &self.client {
            readable("sslcert", cert)?;
            readable("sslkey", key)?;
            options = options.ssl_client_cert(cert).ssl_client_key(key);
        }
        Ok(options)
    }
}

fn parse_mode(mode: &str) -> Result<PgSslMode, ConnectError> {
    match mode {
        "disable" => Ok(PgSslMode::Disable),
        "prefer" => Ok(PgSslMode::Prefer),
        "require" => Ok(PgSslMode::Require),
        "verify-ca" => Ok(PgSslMode::VerifyCa),
        "verify-full" => Ok(PgSslMode::VerifyFull),
        other => Err(ConnectError::UnknownMode(other.to_owned())),
    }
}

/// The file's bytes, or which setting names a file that cannot be read, and why.
fn readable(setting: &'static str, path: &Path) -> Result<Vec<u8>, ConnectError> {
    std::fs::read(path).map_err(|err| ConnectError::Unreadable {
        setting,
        path: path.to_owned(),
        reason: err.to_string(),
    })
}

/// The operating system's trusted roots as PEM, the form sqlx takes them in.
fn system_roots() -> Result<Vec<u8>, ConnectError> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        return Err(ConnectError::NoSystemRoots);
    }
    let mut pem = String::new();
    for cert in found.certs {
        let encoded = STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            // Base64 is ASCII, so every chunk is text.
            let _ = writeln!(pem, "{}", String::from_utf8_lossy(line));
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    Ok(pem.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(query: &str) -> UrlParameters {
        let mut url = url::Url::parse(&format!("postgres://u:p@db.example/app?{query}")).unwrap();
        take_url_parameters(&mut url)
    }

    fn resolve(query: &str, settings: &TlsSettings) -> Result<Tls, ConnectError> {
        Tls::resolve(&url(query), settings)
    }

    #[test]
    fn tls_parameters_are_taken_out_of_the_url_and_the_rest_kept() {
        let mut url = url::Url::parse(
            "postgres://u:p@db/app?sslmode=require&statement-cache-capacity=5&ssl-ca=/ca.pem",
        )
        .unwrap();
        let given = take_url_parameters(&mut url);
        assert_eq!(given.sslmode.as_deref(), Some("require"));
        assert_eq!(given.sslrootcert.as_deref(), Some("/ca.pem"));
        assert_eq!(url.query(), Some("statement-cache-capacity=5"));
    }

    #[test]
    fn the_default_is_prefer_as_in_libpq() {
        let tls = resolve("", &TlsSettings::default()).unwrap();
        assert!(matches!(tls.mode, PgSslMode::Prefer));
        assert_eq!(tls.roots, None);
    }

    #[test]
    fn the_url_wins_over_the_settings() {
        let settings = TlsSettings {
            sslmode: Some("disable".into()),
            ..TlsSettings::default()
        };
        assert!(matches!(
            resolve("sslmode=require", &settings).unwrap().mode,
            PgSslMode::Require
        ));
        assert!(matches!(
            resolve("", &settings).unwrap().mode,
            PgSslMode::Disable
        ));
    }

    #[test]
    fn system_roots_mean_verify_full_and_allow_nothing_weaker() {
        let tls = resolve("sslrootcert=system", &TlsSettings::default()).unwrap();
        assert!(matches!(tls.mode, PgSslMode::VerifyFull));
        assert_eq!(tls.roots, Some(Roots::System));
        let weak = resolve(
            "sslrootcert=system&sslmode=require",
            &TlsSettings::default(),
        );
        assert!(matches!(
            weak,
            Err(ConnectError::WeakModeWithSystemRoots(PgSslMode::Require))
        ));
    }

    #[test]
    fn require_with_a_root_file_verifies_the_ca() {
        let tls = resolve(
            "sslmode=require&sslrootcert=/ca.pem",
            &TlsSettings::default(),
        );
        assert!(matches!(tls.unwrap().mode, PgSslMode::VerifyCa));
    }

    #[test]
    fn verifying_without_roots_is_refused() {
        for mode in ["verify-ca", "verify-full"] {
            let refused = resolve(&format!("sslmode={mode}"), &TlsSettings::default());
            assert!(matches!(refused, Err(ConnectError::NoRoots(_))), "{mode}");
        }
    }

    #[test]
    fn unknown_and_unsupported_modes_are_refused() {
        for mode in ["allow", "verify_full", "on"] {
            let refused = resolve(&format!("sslmode={mode}"), &TlsSettings::default());
            assert!(matches!(refused, Err(ConnectError::UnknownMode(m)) if m == mode));
        }
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let refused = resolve("sslcert=/c.pem", &TlsSettings::default());
        assert!(matches!(refused, Err(ConnectError::HalfAClientCertificate)));
    }

    #[test]
    fn a_missing_root_file_is_named() {
        let tls = resolve(
            "sslmode=verify-full&sslrootcert=/no/such/ca.pem",
            &TlsSettings::default(),
        )
        .unwrap();
        let err = tls.apply(PgConnectOptions::new()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("sslrootcert: cannot read /no/such/ca.pem"),
            "{message}"
        );
    }
}
