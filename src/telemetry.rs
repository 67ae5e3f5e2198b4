//! Logging setup: structured `tracing` output, as text for people or JSON for collectors.
//!
//! Policy: log ids, types, outcomes and timings. Never the webhook secret, a signature, a request
//! body, an email or a name; Stack payloads are personal data.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; verbosity follows `RUST_LOG`, default `info`. Logs go to
/// stderr, so that what a command prints for its user (summaries, reports, `status`) is alone
/// on stdout.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
