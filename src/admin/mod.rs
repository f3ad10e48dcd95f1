//! The admin server: `/healthz` (the process serves), `/readyz` (standalone: every resource
//! runs; data plane: a contract is applied), `/status` (each resource's generation and readiness
//! as JSON, [`Report`](crate::engine::report::Report)) and `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::engine::readiness::Readiness;
use crate::engine::report::Report;
use crate::metrics::Metrics;

#[derive(Clone)]
struct AdminState {
    readiness: Readiness,
    metrics: Arc<Metrics>,
}

pub fn router(readiness: Readiness, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { readiness, metrics })
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    let (ready, resources) = state.readiness.summary();
    let mut body = String::new();
    for resource in resources {
        let word = if resource.ready { "ready" } else { "not ready" };
        body.push_str(&format!("{}: {word}\n", resource.name));
    }
    if body.is_empty() {
        body.push_str("no resources running\n");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

async fn status(State(state): State<AdminState>) -> impl IntoResponse {
    let report: Report = state.readiness.status();
    // Plain data with string keys: serialising it cannot fail.
    let body = serde_json::to_vec(&report).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body)
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

/// Serves until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Binds the admin address, naming it in the error.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, std::io::Error> {
    TcpListener::bind(addr).await
}
