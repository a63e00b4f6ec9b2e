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

/// The route template a request matched (`/api/v1/contacts/{id}`, `/u/{token}`), never its URI:
/// a path may hold a token and a query string a search for a person's name or email address.
pub fn route_of(request: &axum::extract::Request) -> String {
    request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// The one log line of every answered request: its status and how long it took.
pub fn log_served(
    response: &axum::response::Response,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    tracing::info!(
        status = response.status().as_u16(),
        latency_ms = latency.as_millis() as u64,
        "served"
    );
}
