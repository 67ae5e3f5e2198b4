//! Settings: embedded defaults (`config/default.toml`), then an optional file, then environment
//! variables. Built once at start and passed down; nothing reads the environment afterwards.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::signature::{SecretError, SigningKey};

const DEFAULTS: &str = include_str!("../config/default.toml");
const ENV_PREFIX: &str = "STACK_SYNC";

/// The plain variable names users expect, and the setting each one fills when the
/// `STACK_SYNC_` form of that setting is not set.
const PLAIN_VARIABLES: [(&str, &str); 6] = [
    ("DATABASE_URL", "database.url"),
    ("STACK_WEBHOOK_SECRET", "webhook.secret"),
    ("PORT", "server.port"),
    ("STACK_PROJECT_ID", "stack.project_id"),
    ("STACK_SECRET_SERVER_KEY", "stack.secret_server_key"),
    ("STACK_API_URL", "stack.api_url"),
];

/// Everything the service can be told.
#[derive(Debug, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub webhook: WebhookSettings,
    pub retention: RetentionSettings,
    pub stack: StackSettings,
    pub reconcile: ReconcileSettings,
    pub log: LogSettings,
}

#[derive(Debug, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub request_timeout_secs: u64,
}

#[derive(Debug, Deserialize)]
pub struct DatabaseSettings {
    pub url: Option<SecretString>,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    pub migrate_on_start: bool,
}

#[derive(Debug, Deserialize)]
pub struct WebhookSettings {
    /// One `whsec_` secret, or several separated by whitespace during a rotation.
    pub secret: Option<SecretString>,
    pub tolerance_secs: u64,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    /// Recorded messages older than this many days are deleted; 0 keeps them forever.
    pub days: u32,
    pub interval_secs: u64,
    pub batch_size: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StackSettings {
    pub project_id: Option<String>,
    pub secret_server_key: Option<SecretString>,
    pub api_url: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReconcileSettings {
    pub page_size: u32,
    pub max_delete_share: f64,
    pub interval_secs: u64,
    pub request_attempts: u32,
    pub retry_base_ms: u64,
}

/// What the Stack API client needs, all present.
#[derive(Debug, Clone)]
pub struct StackApiSettings {
    pub project_id: String,
    pub secret_server_key: SecretString,
    pub api_url: String,
    pub request_attempts: u32,
    pub retry_base: Duration,
}

#[derive(Debug, Deserialize)]
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
}

impl Settings {
    /// Loads settings from the defaults, `file` if given, and `env` (the process environment in
    /// production; a plain map in tests).
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(File::from(file).required(true));
        }
        let prefixed = Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(env.clone()));
        builder = builder.add_source(prefixed);
        for (variable, key) in PLAIN_VARIABLES {
            let prefixed_name = format!("{ENV_PREFIX}_{}", key.replace('.', "__")).to_uppercase();
            let value = env.get(variable).filter(|v| !v.trim().is_empty());
            if !env.contains_key(&prefixed_name)
                && let Some(value) = value
            {
                builder = builder.set_override(key, value.as_str())?;
            }
        }
        Ok(builder.build()?.try_deserialize()?)
    }

    /// The database URL, which every command needs.
    pub fn database_url(&self) -> Result<&SecretString, SettingsError> {
        self.database
            .url
            .as_ref()
            .filter(|url| !url.expose_secret().trim().is_empty())
            .ok_or(SettingsError::Missing {
                key: "database.url",
                variable: "DATABASE_URL",
            })
    }

    /// The webhook signing keys, one per secret given.
    pub fn signing_keys(&self) -> Result<Vec<SigningKey>, SettingsError> {
        let secrets = self.webhook.secret.as_ref().map(|s| s.expose_secret());
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
        if keys.is_empty() {
            return Err(SettingsError::Missing {
                key: "webhook.secret",
                variable: "STACK_WEBHOOK_SECRET",
            });
        }
        Ok(keys)
    }

    /// The Stack API settings `reconcile` needs; names every missing one at once.
    pub fn stack_api(&self) -> Result<StackApiSettings, SettingsError> {
        let stack = &self.stack;
        let project_id = stack.project_id.clone().filter(|id| !id.trim().is_empty());
        let key = stack
            .secret_server_key
            .clone()
            .filter(|key| !key.expose_secret().trim().is_empty());
        match (project_id, key) {
            (Some(project_id), Some(secret_server_key)) => Ok(StackApiSettings {
                project_id,
                secret_server_key,
                api_url: stack.api_url.trim_end_matches('/').to_owned(),
                request_attempts: self.reconcile.request_attempts.max(1),
                retry_base: Duration::from_millis(self.reconcile.retry_base_ms),
            }),
            (project_id, key) => {
                let missing: Vec<&str> = [
                    project_id
                        .is_none()
                        .then_some("stack.project_id (STACK_PROJECT_ID)"),
                    key.is_none()
                        .then_some("stack.secret_server_key (STACK_SECRET_SERVER_KEY)"),
                ]
                .into_iter()
                .flatten()
                .collect();
                Err(SettingsError::MissingStackApi(missing.join(", ")))
            }
        }
    }

    pub fn tolerance(&self) -> Duration {
        Duration::from_secs(self.webhook.tolerance_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_parse_and_need_the_two_required_settings() {
        let settings = Settings::load(None, &env(&[])).unwrap();
        assert_eq!(settings.server.port, 8080);
        assert_eq!(settings.webhook.max_body_bytes, 1024 * 1024);
        assert_eq!(settings.tolerance(), Duration::from_secs(300));
        assert!(settings.database.migrate_on_start);
        assert_eq!(settings.retention.days, 30);
        let missing_url = settings.database_url().unwrap_err().to_string();
        assert_eq!(
            missing_url,
            "missing setting database.url: set DATABASE_URL or `database.url` in a config file"
        );
        let missing_secret = settings.signing_keys().unwrap_err().to_string();
        assert!(
            missing_secret.contains("STACK_WEBHOOK_SECRET"),
            "{missing_secret}"
        );
    }

    #[test]
    fn plain_variables_fill_their_settings() {
        let settings = Settings::load(
            None,
            &env(&[
                ("DATABASE_URL", "postgres://localhost/app"),
                (
                    "STACK_WEBHOOK_SECRET",
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                ),
                ("PORT", "9000"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.server.port, 9000);
        assert_eq!(
            settings.database_url().unwrap().expose_secret(),
            "postgres://localhost/app"
        );
        assert_eq!(settings.signing_keys().unwrap().len(), 2);
    }

    #[test]
    fn prefixed_variables_win_over_plain_ones() {
        let settings = Settings::load(
            None,
            &env(&[
                ("PORT", "9000"),
                ("STACK_SYNC_SERVER__PORT", "9100"),
                ("STACK_SYNC_WEBHOOK__MAX_BODY_BYTES", "2048"),
                ("STACK_SYNC_LOG__FORMAT", "json"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.server.port, 9100);
        assert_eq!(settings.webhook.max_body_bytes, 2048);
        assert_eq!(settings.log.format, LogFormat::Json);
    }

    #[test]
    fn a_file_overrides_defaults_and_the_environment_overrides_the_file() {
        let path = std::env::temp_dir().join(format!("stack-sync-{}.toml", std::process::id()));
        std::fs::write(&path, "[server]\nport = 7000\nhost = \"127.0.0.1\"\n").unwrap();
        let settings = Settings::load(Some(&path), &env(&[("PORT", "7001")])).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(settings.server.host, "127.0.0.1");
        assert_eq!(settings.server.port, 7001);
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let result = Settings::load(Some(Path::new("/nonexistent/stack-sync.toml")), &env(&[]));
        assert!(matches!(result, Err(SettingsError::Invalid(_))));
    }

    #[test]
    fn a_bad_port_names_the_setting() {
        let err = Settings::load(None, &env(&[("PORT", "eighty")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.port"), "{err}");
    }

    #[test]
    fn a_bad_secret_is_named_by_position_without_its_value() {
        let settings = Settings::load(
            None,
            &env(&[(
                "STACK_WEBHOOK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_not-base64!",
            )]),
        )
        .unwrap();
        let err = settings.signing_keys().unwrap_err().to_string();
        assert_eq!(
            err,
            "webhook.secret (STACK_WEBHOOK_SECRET): secret number 2 is not valid standard base64 \
             after the optional `whsec_` prefix"
        );
    }

    #[test]
    fn stack_api_settings_use_the_sdk_variable_names() {
        let settings = Settings::load(
            None,
            &env(&[
                ("STACK_PROJECT_ID", "6f1c2e9a-0b7d-4e1f-9a3c-2d4e5f6a7b8c"),
                ("STACK_SECRET_SERVER_KEY", "ssk_test"),
                ("STACK_API_URL", "http://localhost:8102/"),
            ]),
        )
        .unwrap();
        let api = settings.stack_api().unwrap();
        assert_eq!(api.project_id, "6f1c2e9a-0b7d-4e1f-9a3c-2d4e5f6a7b8c");
        assert_eq!(api.secret_server_key.expose_secret(), "ssk_test");
        assert_eq!(api.api_url, "http://localhost:8102");
    }

    #[test]
    fn missing_stack_api_settings_are_named_together() {
        let settings = Settings::load(None, &env(&[])).unwrap();
        assert_eq!(settings.stack.api_url, "https://api.stack-auth.com");
        let err = settings.stack_api().unwrap_err().to_string();
        assert_eq!(
            err,
            "missing settings for Stack's API: stack.project_id (STACK_PROJECT_ID), \
             stack.secret_server_key (STACK_SECRET_SERVER_KEY)"
        );
    }

    #[test]
    fn blank_plain_variables_count_as_missing() {
        let settings = Settings::load(None, &env(&[("DATABASE_URL", "  ")])).unwrap();
        assert!(settings.database_url().is_err());
    }
}
