//! The loyalty server: the staff dashboard and its API over the hardened PostgreSQL core.

pub mod database;
pub mod embedded;
pub mod seed;
#[cfg(feature = "testkit")]
pub mod testkit;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use sqlx::PgPool;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
}

/// The whole HTTP application, built as a function so tests can serve it on any listener.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// 200 when the database answers, 503 when it does not.
async fn healthz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match sqlx::query("select 1").execute(&state.pool).await {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n"),
    }
}
