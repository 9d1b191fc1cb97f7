//! What an operator sees: Prometheus metrics by endpoint and by error code, and a request id on every request,
//! its answer and its log lines.
//!
//! Every request carries an [`Outcome`] that whoever answers an API call sets once: the server function as it
//! answers, or the layer or download that refuses the call. The metrics count it and the request's log line
//! names it, so neither reads an answer back, and the app crate stays free of metrics.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::backups::{BackupEvent, BackupHealth, BackupReport};
use app::request::Outcome;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use loyalty_core::LoyaltyError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Span;
use tracing::field::Empty;

/// The header a request id travels in, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// The route label of whatever no route matched (static files, unknown pages).
const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Arc<str>,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    endpoint: Arc<str>,
    code: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The server's metrics. Every label is drawn from a bounded set: routes as declared (never a raw path with
/// ids in it), server functions by their registered path, error codes from [`LoyaltyError::code`].
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    outcomes: Family<OutcomeLabels, Counter>,
    abandoned: Family<RouteLabels, Counter>,
    server_fns: HashSet<&'static str>,
    backups: Option<(BackupReport, BackupGauges)>,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    pub fn new() -> Self {
        Self::reporting(BackupReport::default())
    }

    /// The metrics, with the state of the backups when `backups` is a configured server's report.
    pub fn reporting(backups: BackupReport) -> Self {
        let mut registry = Registry::with_prefix("loyalty");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = LatencyFamily::new_with_constructor(latency_histogram as fn() -> Histogram);
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        let abandoned = Family::<RouteLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status class",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route",
            latency.clone(),
        );
        registry.register(
            "rpc_outcomes",
            "API calls by endpoint and outcome: ok, or the error code of the refusal",
            outcomes.clone(),
        );
        registry.register(
            "http_requests_abandoned",
            "HTTP requests whose client went away before the answer, by method and route",
            abandoned.clone(),
        );
        let server_fns = leptos::server_fn::axum::server_fn_paths()
            .map(|(path, _)| path)
            .collect();
        let backups = backups
            .read()
            .configured
            .then(|| (backups, BackupGauges::register(&mut registry)));
        Self {
            registry,
            requests,
            latency,
            outcomes,
            abandoned,
            server_fns,
            backups,
        }
    }

    /// The metrics in the OpenMetrics text format Prometheus scrapes.
    pub fn render(&self) -> Response {
        if let Some((report, gauges)) = &self.backups {
            gauges.show(&report.read());
        }
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response()
    }

    /// The route a request counts under: the matched route, or for a server function its registered path.
    fn route_of(&self, req: &Request) -> Arc<str> {
        match req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
        {
            Some(route) if route.contains("{*name}") => {
                let path = req.uri().path();
                match self.server_fns.get(path) {
                    Some(known) => Arc::from(*known),
                    None => Arc::from(route),
                }
            }
            Some(route) => Arc::from(route),
            None => Arc::from(UNMATCHED),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// When the backups last went right and wrong, as Unix times (0: never), for alerts on their age.
struct BackupGauges {
    archived: Gauge<f64, std::sync::atomic::AtomicU64>,
    archive_failed: Gauge<f64, std::sync::atomic::AtomicU64>,
    base_backup: Gauge<f64, std::sync::atomic::AtomicU64>,
    base_backup_failed: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl BackupGauges {
    fn register(registry: &mut Registry) -> Self {
        let gauges = Self {
            archived: Gauge::default(),
            archive_failed: Gauge::default(),
            base_backup: Gauge::default(),
            base_backup_failed: Gauge::default(),
        };
        for (name, help, gauge) in [
            (
                "backup_last_archived_timestamp_seconds",
                "When the last WAL segment was archived to the backup folder",
                &gauges.archived,
            ),
            (
                "backup_last_archive_failure_timestamp_seconds",
                "When archiving a WAL segment last failed",
                &gauges.archive_failed,
            ),
            (
                "backup_last_base_backup_timestamp_seconds",
                "When the last base backup finished",
                &gauges.base_backup,
            ),
            (
                "backup_last_base_backup_failure_timestamp_seconds",
                "When a base backup last failed",
                &gauges.base_backup_failed,
            ),
        ] {
            registry.register(name, help, gauge.clone());
        }
        gauges
    }

    fn show(&self, health: &BackupHealth) {
        let at = |event: &Option<BackupEvent>| {
            event
                .as_ref()
                .map_or(0.0, |event| event.at.timestamp_millis() as f64 / 1000.0)
        };
        self.archived.set(at(&health.last_archived));
        self.archive_failed.set(at(&health.last_archive_failure));
        self.base_backup.set(at(&health.last_base_backup));
        self.base_backup_failed
            .set(at(&health.last_base_backup_failure));
    }
}

/// The route a request counts under, for the trace span.
#[derive(Clone)]
struct Route(Arc<str>);

/// Counts every request with its latency, and every API call with its outcome.
pub async fn record(State(metrics): State<Arc<Metrics>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = metrics.route_of(&req);
    req.extensions_mut().insert(Route(route.clone()));
    let outcome = Outcome::default();
    req.extensions_mut().insert(outcome.clone());
    let mut abandoned = Abandoned(Some((metrics.clone(), method, route.clone())));
    let response = next.run(req).await;
    abandoned.0 = None;
    let outcome = outcome.get().filter(|_| route.starts_with("/api/"));
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: status_class(response.status()),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels {
            method,
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    if let Some(code) = outcome {
        metrics
            .outcomes
            .get_or_create(&OutcomeLabels {
                endpoint: route,
                code,
            })
            .inc();
    }
    response
}

/// Counts a request as abandoned if it is dropped before its answer: the client closed the connection, and
/// the server stopped working on the request.
struct Abandoned(Option<(Arc<Metrics>, &'static str, Arc<str>)>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some((metrics, method, route)) = self.0.take() {
            metrics
                .abandoned
                .get_or_create(&RouteLabels { method, route })
                .inc();
        }
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The span every request's log lines are in: its id, method and route, then its outcome (recorded by
/// [`Outcome::set`]), status and latency.
pub fn request_span(req: &Request) -> Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let route = req.extensions().get::<Route>().map_or(UNMATCHED, |r| &*r.0);
    tracing::info_span!(
        "request",
        request_id = id,
        method = %req.method(),
        route,
        outcome = Empty,
        status = Empty,
        latency_ms = Empty,
    )
}

/// An answer that took longer than this is logged at `info` even when it went through.
const SLOW: Duration = Duration::from_secs(1);

/// One line per answered request, in its span: at `info` for a refusal, an error or a slow answer, at `debug`
/// for the rest (the metrics count those). At a busy counter a line for every earn was a fifth of the
/// server's processor time.
pub fn log_answer(response: &Response, latency: Duration, span: &Span) {
    let status = response.status();
    let quiet = status.as_u16() < 400 && latency < SLOW;
    if quiet && !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    span.record("status", status.as_u16());
    span.record("latency_ms", latency.as_millis() as u64);
    if quiet {
        tracing::debug!("answered");
    } else {
        tracing::info!("answered");
    }
}

/// A 503 HTML page for a browser, when the database is out of reach.
pub fn unavailable_page() -> Response {
    let sentence = LoyaltyError::Unavailable.to_string();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Loyalty</title>\
         <link rel=\"stylesheet\" href=\"/pkg/loyalty.css\"></head>\
         <body><main><div class=\"outcome error\" data-code=\"UNAVAILABLE\" role=\"alert\">\
         <p class=\"big\">{sentence}</p><p><a href=\"\">Try again</a></p></div></main></body></html>\n"
    );
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::response::Html(html),
    )
        .into_response()
}
