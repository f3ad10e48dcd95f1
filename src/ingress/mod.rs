//! The KafkaChannel ingress (Knative's channel receiver): an HTTP server that takes one
//! CloudEvent per POST, in binary or structured mode, and stores it in the channel's topic in
//! Kafka binary mode, answering 202 only once the broker acknowledged it.
//!
//! The engine owns the [`Routes`] and changes them as channels come and go; the server reads
//! them per request. Readiness of the ingress itself is the engine's to report.

mod handler;
pub mod producer;
pub mod routes;

use std::sync::Arc;

use axum::handler::Handler as _;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use producer::{ChannelProducer, ProduceError, ProducerError, Producers};
pub use routes::{Route, Routes};

/// The largest body accepted when nothing else is configured: generous for events, small enough
/// that a few hundred concurrent requests stay within a pod's memory.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Tuning of the ingress server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngressOptions {
    /// Bodies over this many bytes are refused with 413.
    pub max_body_bytes: usize,
}

impl Default for IngressOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// The ingress application, as [`serve`] runs it.
#[derive(Clone)]
pub struct IngressRouter {
    ingress: Arc<handler::Ingress>,
}

impl std::fmt::Debug for IngressRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressRouter")
            .field("routes", &self.ingress.routes)
            .finish_non_exhaustive()
    }
}

/// The ingress: every path and method goes to the one handler, which routes by path and host
/// itself since channels change at run time.
pub fn router(routes: Routes, options: IngressOptions) -> IngressRouter {
    IngressRouter {
        ingress: Arc::new(handler::Ingress {
            routes,
            max_body_bytes: options.max_body_bytes,
        }),
    }
}

/// Serves until `shutdown` fires, then finishes the requests in progress.
pub async fn serve(
    listener: TcpListener,
    router: IngressRouter,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Responses are small and written once: Nagle's algorithm would only delay them.
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY on an ingress connection failed");
        }
    });
    // The handler is served as it is, without axum's Router: with a single route, the router's
    // per-request work (cloning the boxed route, boxing its future, recording path parameters
    // and a Content-Length hyper writes anyway) costs allocations and buys nothing.
    let service = handler::receive
        .with_state(router.ingress)
        .into_make_service();
    axum::serve(listener, service)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
