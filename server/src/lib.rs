//! The loyalty server: the staff dashboard and its API over the hardened PostgreSQL core.

pub mod backup;
pub mod contact_key;
pub mod database;
pub mod embedded;
mod layers;
pub mod listener;
pub mod observe;
pub mod restore;
pub mod seed;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tls;
pub mod wallet;

use app::backups::BackupReport;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list, handle_server_fns_with_context};
use sqlx::PgPool;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// What every request handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub leptos_options: LeptosOptions,
    /// Mark the session cookie `Secure`: the server is reached over HTTPS only.
    pub secure_cookies: bool,
    /// The wallets passes are provisioned in; none by default.
    pub wallet: wallet::WalletConfig,
    /// The secret of members' contacts' digests.
    pub contact_key: app::contacts::db::ContactKey,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(state: &AppState) -> Self {
        state.pool.clone()
    }
}

/// Where the dashboard's compiled browser code and styles are, and the address it is served at.
pub fn leptos_options(site_root: &str, addr: std::net::SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name(app::OUTPUT_NAME)
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The whole HTTP application, built as a function so tests can serve it on any listener.
pub fn router(state: AppState) -> Router {
    router_reporting(state, BackupReport::default())
}

/// [`router`] for a server that keeps backups: its pages and `/metrics` show how they stand.
pub fn router_reporting(state: AppState, backups: BackupReport) -> Router {
    let routes = generate_route_list(app::App);
    let metrics = std::sync::Arc::new(observe::Metrics::reporting(backups.clone()));
    let recorder = metrics.clone();
    let pool = state.pool.clone();
    let counter = app::db::CounterPool::like(&pool);
    let cookies = app::request::SecureCookies(state.secure_cookies);
    let https = state.secure_cookies;
    let wallet_buttons = state.wallet.buttons();
    let contact_key = state.contact_key.clone();
    let context = move || {
        provide_context(pool.clone());
        provide_context(counter.clone());
        provide_context(cookies);
        provide_context(backups.clone());
        provide_context(wallet_buttons);
        provide_context(contact_key.clone());
    };
    let options = state.leptos_options.clone();
    let server_fns = {
        let context = context.clone();
        move |req: Request<Body>| handle_server_fns_with_context(context.clone(), req)
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/history.csv", get(app::history::csv_download))
        .route(app::rights::EXPORT_PATH, get(app::rights::export_download))
        .route(app::batches::CSV_PATH, get(app::batches::csv_download))
        .route(
            app::numbers::NUMBERS_CSV_PATH,
            get(app::numbers::csv_download),
        )
        .route(
            app::passes::STAFF_PKPASS_PATH,
            get(wallet::downloads::staff_pkpass),
        )
        .route(
            "/pass/{token}/wallet.pkpass",
            get(wallet::downloads::member_pkpass),
        )
        .route(
            "/pass/{token}/google-wallet",
            get(wallet::downloads::member_google_link),
        )
        .merge(wallet::apple_service::routes())
        .route("/api/{*name}", post(server_fns))
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, app::shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            layers::session,
        ))
        .layer(axum::middleware::from_fn(layers::api_body))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
        .route("/metrics", get(move || async move { metrics.render() }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(observe::request_span)
                .on_request(())
                .on_response(observe::log_answer)
                // Failures are logged once, with their detail, where they happen.
                .on_failure(()),
        )
        .layer(axum::middleware::from_fn_with_state(
            recorder,
            observe::record,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(layers::content_security_policy())
        .layer(layers::no_sniffing())
        .layer(layers::referrer_policy())
        .layer(layers::strict_transport_security(https))
}

/// How long /healthz waits for the database before it says it is unavailable.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// 200 when the database answers, 503 when it does not answer within [`HEALTH_TIMEOUT`].
async fn healthz(State(pool): State<PgPool>) -> (StatusCode, &'static str) {
    let query = sqlx::query("select 1").execute(&pool);
    match tokio::time::timeout(HEALTH_TIMEOUT, query).await {
        Ok(Ok(_)) => (StatusCode::OK, "ok\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n"),
    }
}
