//! Logging setup: structured `tracing` output, as text for people or JSON for collectors.
//!
//! Policy: log ids, types, outcomes and timings. Never the webhook secret, a signature, a request
//! body, an email or a name; Stack payloads are personal data.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; verbosity follows `RUST_LOG`, default `info` (with Postgres's
/// notices from warnings up: `if not exists` in sqlx's migrator says "already exists, skipping"
/// on every start). Logs go to
/// stderr, so that what a command prints for its user (summaries, reports, `status`) is alone
/// on stdout.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    // Colours only for a terminal: log files and collectors get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Longest text from a request that a log field holds.
const LOGGED_CHARS: usize = 100;

/// A caller-given text (a message id, an event type) as a log field: at most 100 characters,
/// with anything but letters, digits and `-_.:` shown as `?`, so that it can neither forge
/// other fields in text logs nor flood them. Real Svix ids and Stack types pass unchanged.
pub fn loggable(text: &str) -> String {
    text.chars()
        .take(LOGGED_CHARS)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_text_cannot_forge_fields_or_flood_the_log() {
        assert_eq!(
            loggable("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
            "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
        );
        assert_eq!(
            loggable("team_membership.created"),
            "team_membership.created"
        );
        assert_eq!(loggable("m outcome=applied"), "m?outcome?applied");
        assert_eq!(loggable(&"t".repeat(100_000)).len(), 100);
    }
}
