//! The public pages: what the people in the CRM reach through links in messages (the
//! unsubscribe page and its one-click POST, the preference centre, the sign-up form's posts and
//! their confirmation, the data request page), what the organisation's mail system forwards
//! (requests to the unsubscribe mailbox, bounce and complaint reports) and the replies the SMS
//! gateway forwards. They are served on a listener of their own
//! (`public_bind`), which serves nothing else, so that the staff API can stay on the office
//! network; the staff listener serves none of these.
//!
//! Hardened for the open internet from the first page: plain HTML without JavaScript under a
//! strict Content-Security-Policy, security headers on every answer, small bodies, a time limit,
//! answers that slow a client sending bad tokens (never one with a valid token), the client's
//! address taken from `X-Forwarded-For` only when the peer is a trusted proxy, no URI in the log
//! (only the route's template) and one HTML error mapping ([`error::PageError`]).
//!
//! Architecture invariant: handlers extract, call a domain service and map; the decisions are the
//! services' (`service::unsubscribe`).

pub mod client;
pub mod data_requests;
pub mod error;
pub mod forms;
pub mod page;
pub mod preferences;
pub mod reports;
pub mod signups;
pub mod sms;
pub mod unsubscribe;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::Router;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::api::{common_headers, with_headers};
use crate::auth::throttle::LoginThrottle;
use crate::store::Db;
pub use client::TrustedProxies;

/// The largest form a page takes.
pub const FORM_LIMIT: usize = 16 * 1024;
/// The largest forwarded email taken (a request to unsubscribe quotes little, but a client may
/// attach the message it answers).
pub const MAIL_LIMIT: usize = 1024 * 1024;
/// A public request still running after this long is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What every public handler can reach.
#[derive(Clone)]
pub struct PublicState {
    pub db: Db,
    /// The organisation's name, as its pages say it.
    pub organisation: Option<String>,
    /// The address the public pages are reached at (`public_url`), without a trailing slash.
    pub public_url: String,
    /// The unsubscribe mailbox, recorded as the source of a request that came through it.
    pub unsubscribe_mailto: Option<String>,
    /// The return path whose tags name the messages bounces are about.
    pub return_path: Option<String>,
    /// The bearer secret of forwarded reports; absent: `/mail/reports` is not served.
    pub reports_secret: Option<crate::config::Secret>,
    /// The SMS gateway's auth token, which signs the replies it forwards; absent (no gateway):
    /// `/sms/inbound` is not served.
    pub sms_auth_token: Option<crate::config::Secret>,
    pub proxies: Arc<TrustedProxies>,
    /// Bad tokens per client address (an IPv6 client by its /64).
    pub bad_tokens: Arc<LoginThrottle>,
    /// The key of the CSRF tokens of the forms these pages serve.
    pub forms: Arc<forms::FormKey>,
    pub signups: Arc<crate::service::signups::Settings>,
    /// Sign-ups per client address (an IPv6 client by its /64) in [`SIGNUP_WINDOW`].
    pub signup_throttle: Arc<LoginThrottle>,
}

/// The window of the limit of sign-ups per client address (`signups_per_address`).
pub const SIGNUP_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Bad tokens taken from one client address in [`BAD_TOKEN_WINDOW`] before it must wait.
pub const BAD_TOKENS_ALLOWED: u32 = 20;
pub const BAD_TOKEN_WINDOW: Duration = Duration::from_secs(10 * 60);

/// The throttle of bad tokens: per client address only (a token names no account).
pub fn bad_token_throttle() -> LoginThrottle {
    LoginThrottle::per_address(BAD_TOKEN_WINDOW, BAD_TOKENS_ALLOWED)
}

/// The headers of every public answer besides the common ones: no script and nothing framed or
/// embedded; no page's address (which holds a token) sent on as a referrer.
fn page_headers() -> [(HeaderName, HeaderValue); 6] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            page::content_security_policy(),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
        ),
    ]
}

/// The public pages, with their fallbacks and hardening.
pub fn app(state: PublicState) -> Router {
    // The public pages are HTML for people, not part of the API: they are not in its OpenAPI
    // description, so they are routed here with axum's own router.
    #[allow(clippy::disallowed_methods)]
    let router = Router::new()
        .route(
            "/u/{token}",
            axum::routing::get(unsubscribe::page).post(unsubscribe::submit),
        )
        .route(
            "/p/{token}",
            axum::routing::get(preferences::page).post(preferences::submit),
        )
        .route("/s/{form}", axum::routing::post(signups::submit))
        .route(
            "/r",
            axum::routing::get(data_requests::page).post(data_requests::submit),
        )
        .route(
            "/v/{token}",
            axum::routing::get(data_requests::verification_page).post(data_requests::verify),
        )
        .route(
            "/c/{token}",
            axum::routing::get(signups::page).post(signups::confirm),
        )
        .route(
            "/unsubscribe/mail",
            axum::routing::post(unsubscribe::forwarded_mail)
                .layer(DefaultBodyLimit::max(MAIL_LIMIT)),
        )
        .route(
            "/mail/reports",
            axum::routing::post(reports::take).layer(DefaultBodyLimit::max(MAIL_LIMIT)),
        )
        .route(sms::INBOUND_PATH, axum::routing::post(sms::inbound))
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    let router = router
        .fallback(|| async { error::PageError::NotFound })
        .method_not_allowed_fallback(|| async { error::PageError::MethodNotAllowed })
        .with_state(state)
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(
            TraceLayer::new_for_http()
                // The route's template only: the path holds a token.
                .make_span_with(|request: &Request| {
                    let route = crate::telemetry::route_of(request);
                    tracing::info_span!("public", method = %request.method(), route)
                })
                .on_request(())
                .on_response(crate::telemetry::log_served),
        );
    // Outermost, so that every answer has them (a timeout's and a rejection's too).
    with_headers(with_headers(router, &common_headers()), &page_headers())
}
