//! `kafka-bridge event-display`: a sink that prints every CloudEvent it receives and answers 202,
//! for walkthroughs and for watching what a source sends.

use std::net::SocketAddr;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use kafka_bridge::event::http_binding::decode;

#[derive(Debug, clap::Args)]
pub struct DisplayArgs {
    #[arg(long, default_value = "127.0.0.1:8081")]
    addr: SocketAddr,
}

pub async fn serve(args: DisplayArgs) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/", post(receive))
        .route("/{*path}", post(receive));
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("binding {}", args.addr))?;
    tracing::info!(addr = %args.addr, "event-display listening");
    axum::serve(listener, app).await.context("serving")?;
    Ok(())
}

async fn receive(headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    match decode(&headers, body) {
        Ok(event) => {
            println!("☁️  cloudevents.Event\n{event}");
            (StatusCode::ACCEPTED, String::new())
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            format!("not a CloudEvent: {error}\n"),
        ),
    }
}
