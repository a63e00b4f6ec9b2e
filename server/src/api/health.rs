//! `GET /healthz`: is the server up and its database reachable? No authentication, no data.

use assent_shared::api::Health;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiResult;
use super::AppState;
use crate::on_db;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, body = Health), (status = 500, body = assent_shared::api::ApiError)))]
async fn health(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    on_db!(&state.db, pool => {
        sqlx::query("SELECT 1").execute(pool).await.map_err(crate::store::StoreError::from)?.rows_affected()
    });
    Ok(axum::Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}
