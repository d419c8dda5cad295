//! The HTTP API (contract section 10): axum routes, bearer auth, OpenAPI generated
//! from the route definitions, Prometheus metrics and the dashboard.

pub mod auth;
mod deadline;
pub mod error;
pub mod evidence;
pub mod ingest;
pub mod openapi;
pub mod query;
pub mod routes;
pub mod slo;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use axum::{Extension, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::Shared;

/// Largest request body of the query endpoints.
const BODY_LIMIT: usize = 64 * 1024;
/// Largest request body of the ingest endpoints (batches, grouped alerts).
const INGEST_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// No request holds a worker longer than this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A request body that sends nothing for this long is cut with 408.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The dashboard page (no build step: plain HTML, CSS and JS).
const DASHBOARD: &str = include_str!("dashboard.html");

#[derive(OpenApi)]
#[openapi(
    info(title = "slaflow", description = "SLA evidence from monitoring and ticket events: availability, ticket SLAs, capacity, incidents."),
    modifiers(&BearerAuth)
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

/// The router and its OpenAPI document.
pub fn router(shared: Arc<Shared>) -> std::io::Result<(Router, utoipa::openapi::OpenApi)> {
    let queries = Arc::new(query::QueryEngine::new(&shared.config)?);
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::sla))
        .routes(routes!(routes::sla_html))
        .routes(routes!(evidence::evidence))
        .routes(routes!(routes::capacity))
        .routes(routes!(routes::availability))
        .routes(routes!(slo::slo))
        .routes(routes!(slo::request_slo))
        .routes(routes!(routes::incidents))
        .routes(routes!(routes::ticket))
        .routes(routes!(routes::maintenance))
        .routes(routes!(routes::exclusions))
        .routes(routes!(query::query))
        .routes(routes!(routes::overview))
        .routes(routes!(routes::metrics))
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::readyz))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(ingest::alertmanager))
                .routes(routes!(ingest::events))
                .routes(routes!(ingest::github))
                .routes(routes!(ingest::jira))
                .routes(routes!(ingest::prometheus))
                // axum's own extractor limit (2 MiB by default) must not undercut it.
                .layer(DefaultBodyLimit::max(INGEST_BODY_LIMIT))
                .layer(RequestBodyLimitLayer::new(INGEST_BODY_LIMIT)),
        )
        .with_state(shared)
        .split_for_parts();
    let api = openapi::exact(api).map_err(std::io::Error::other)?;
    let doc = api.clone();
    let router = router
        .route("/openapi.json", get(move || async move { axum::Json(doc) }))
        .route("/", get(|| async { Html(DASHBOARD) }))
        .layer(Extension(queries))
        .fallback(|| async { error::ApiError::not_found("no such endpoint") })
        .layer(CatchPanicLayer::new())
        .layer(RequestBodyTimeoutLayer::new(BODY_IDLE_TIMEOUT))
        .layer(axum::middleware::map_request(deadline::limit_body_time))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(TraceLayer::new_for_http().on_failure(log_failure));
    Ok((router, api))
}

/// Logs a 5xx answer: a 503 is what `/readyz` answers until the brokers are
/// reached and the state restored (polled every few seconds by orchestrators),
/// so it is DEBUG; any other 5xx is a fault, ERROR.
fn log_failure(class: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span) {
    let ms = latency.as_millis();
    match class {
        ServerErrorsFailureClass::StatusCode(s) if s == StatusCode::SERVICE_UNAVAILABLE => {
            tracing::debug!(latency_ms = ms, "answered 503 Service Unavailable")
        }
        class => tracing::error!(latency_ms = ms, %class, "response failed"),
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (router, _) = router(shared)?;
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
