//! Structured logs (tracing) to standard error, as text or JSON lines.
//!
//! Architecture invariant: log events carry ids, route templates, statuses and timings only —
//! never names, email addresses, phone numbers, search terms, tokens or passwords. Request URIs
//! are not logged (their query strings may hold searches) and the Authorization header is marked
//! sensitive.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

pub fn init(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // try_init fails only if a subscriber is already set (tests): keep that one.
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
