//! The HTTP API: `/healthz` and `/api/v1/...`, one module per resource, each exposing its routes
//! with their OpenAPI description (utoipa), merged here into one router and one document.
//!
//! Architecture invariant: every route is registered through `routes!`, which documents it;
//! clippy's `disallowed-methods` (`server/clippy.toml`) refuses a route added another way.

pub mod body;
pub mod caller;
pub mod campaigns;
pub mod communications;
pub mod companies;
pub mod contacts;
pub mod data_requests;
pub mod decisions;
pub mod error;
pub mod extract;
pub mod filters;
pub mod formats;
pub mod health;
pub mod ledger;
pub mod policy;
pub mod sessions;
pub mod signups;
pub mod topics;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::throttle::LoginThrottle;
use crate::auth::SessionPolicy;
use crate::store::Db;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub sessions: SessionPolicy,
    pub throttle: Arc<LoginThrottle>,
    pub mail: Arc<Mail>,
    /// The phrases that flag a service message as promotional.
    pub marketing_phrases: Arc<Vec<String>>,
    /// How sign-up forms are published and answered.
    pub signups: Arc<crate::service::signups::Settings>,
}

/// Where messages go and whom they come from: email, and text messages.
pub struct Mail {
    pub outlet: crate::mail::Outlet,
    pub settings: crate::config::MailSettings,
    pub sms_outlet: crate::sms::SmsOutlet,
    pub sms: crate::sms::SmsSettings,
}

/// A request still running after this long is answered 503 and dropped.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub use body::BODY_LIMIT;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Assent API",
        description = "The Assent CRM server: contacts and companies, the consent ledger and the decision engine, \
                       the compliance policy and the topic catalogue, campaigns and their approval, users and sessions, and the audit trail. \
                       Every error has the shape `ApiError`. Authenticate with `Authorization: Bearer <token>` \
                       from `POST /api/v1/sessions`."
    ),
    modifiers(&BearerAuth),
    components(schemas(assent_shared::api::ApiError))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes and their OpenAPI description.
pub fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .nest(
            "/api/v1",
            OpenApiRouter::new()
                .merge(sessions::routes())
                .merge(users::routes())
                .merge(contacts::routes())
                .merge(companies::routes())
                .merge(ledger::routes())
                .merge(decisions::routes())
                .merge(filters::routes())
                .merge(policy::routes())
                .merge(topics::routes())
                .merge(campaigns::routes())
                .merge(communications::routes())
                .merge(signups::routes())
                .merge(data_requests::routes()),
        )
}

/// The routes and the OpenAPI description of the whole API, its formats stated as patterns.
fn described_routes() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut openapi) = documented_routes().split_for_parts();
    formats::Formats.modify(&mut openapi);
    (router, openapi)
}

/// The OpenAPI description of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    described_routes().1
}

/// The headers of every answer of both listeners: personal data must not linger in caches,
/// browsers must not guess content types, and the server is only ever reached over HTTPS.
pub fn common_headers() -> [(HeaderName, HeaderValue); 3] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ),
    ]
}

/// `router` with each of `headers` set on every answer (replacing one a handler set).
pub fn with_headers<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    headers: &[(HeaderName, HeaderValue)],
) -> Router<S> {
    headers.iter().fold(router, |router, (name, value)| {
        router.layer(SetResponseHeaderLayer::overriding(
            name.clone(),
            value.clone(),
        ))
    })
}

/// The whole application: routes, the OpenAPI document, fallbacks and middleware.
pub fn app(state: AppState) -> Router {
    let (router, openapi) = described_routes();
    let openapi = Arc::new(openapi);
    // The one route outside routes!(): the description itself.
    #[allow(clippy::disallowed_methods)]
    let router = router.route(
        "/api/v1/openapi.json",
        axum::routing::get(move || {
            let openapi = Arc::clone(&openapi);
            async move { axum::Json(openapi.as_ref().clone()) }
        }),
    );
    let router = router
        .fallback(|| async { error::Error::RouteNotFound })
        .method_not_allowed_fallback(|| async { error::Error::MethodNotAllowed })
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(body::limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(
            TraceLayer::new_for_http()
                // Only the route template is logged, never the URI: a query string may hold a
                // search for a person's name or email address.
                .make_span_with(|request: &Request| {
                    let route = crate::telemetry::route_of(request);
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_owned();
                    tracing::info_span!("request", method = %request.method(), route, request_id)
                })
                .on_request(())
                .on_response(crate::telemetry::log_served),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]));
    // Outermost, so that every answer has them (a timeout's too).
    with_headers(router, &common_headers())
}

#[cfg(test)]
mod tests {
    /// Routes can be registered only through `routes!` (clippy's `disallowed-methods`, in
    /// `server/clippy.toml`); this checks the description has them all.
    #[test]
    fn the_openapi_description_has_the_routes() {
        let spec = super::openapi();
        for path in [
            "/healthz",
            "/api/v1/sessions",
            "/api/v1/contacts/{id}",
            "/api/v1/companies/{id}/history",
        ] {
            assert!(spec.paths.paths.contains_key(path), "{path} is documented");
        }
    }
}
