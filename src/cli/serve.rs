//! What `run` and `dataplane` share: the flags that tune the engine, the engine with its admin
//! server and channel ingress, and the shutdown that drains in-flight events.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use kafka_bridge::admin;
use kafka_bridge::engine::readiness::{Readiness, ReadyWhen};
use kafka_bridge::engine::{Engine, EngineOptions};
use kafka_bridge::ingress::{self, IngressOptions};
use kafka_bridge::kafka::client_config::ClientSettings;
use kafka_bridge::metrics::Metrics;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{parse_duration, parse_key_value};

#[derive(Debug, clap::Args)]
pub struct EngineArgs {
    /// Serves /healthz, /readyz, /status and /metrics.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub admin_addr: SocketAddr,
    /// Serves channel ingress (KafkaChannel).
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub ingress_addr: SocketAddr,
    /// librdkafka property for every client, applied last (e.g. session.timeout.ms=6000). Repeatable.
    #[arg(long = "kafka-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub kafka_config: Vec<(String, String)>,
    /// Events in delivery at once per unordered source.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Channel ingress: larger request bodies are refused with 413.
    #[arg(long, default_value_t = kafka_bridge::ingress::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// How long SIGTERM (or removing a resource) waits for in-flight events before abandoning
    /// them (uncommitted).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

type Server = JoinHandle<std::io::Result<()>>;

/// The engine and what its servers share, before anything listens; [`Starting::serve`] binds
/// the servers and hands the engine over.
pub struct Starting {
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    engine: Engine,
}

/// The engine running, with its servers.
pub struct Serving {
    pub engine: Engine,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    stop: CancellationToken,
    admin: Server,
    ingress: Option<Server>,
}

impl Starting {
    pub fn new(args: &EngineArgs, rule: ReadyWhen) -> Self {
        let metrics = Arc::new(Metrics::new());
        let readiness = Readiness::new(rule);
        let options = EngineOptions {
            max_in_flight: args.max_in_flight.max(1),
            drain_timeout: args.drain_timeout,
            client: ClientSettings {
                overrides: args.kafka_config.iter().cloned().collect(),
            },
        };
        let engine = Engine::new(options, Arc::clone(&metrics), readiness.clone());
        Self {
            metrics,
            readiness,
            engine,
        }
    }

    /// Binds the admin server, then (when asked) the channel ingress, and hands over the engine.
    pub async fn serve(self, args: &EngineArgs, with_ingress: bool) -> anyhow::Result<Serving> {
        let listener = admin::bind(args.admin_addr)
            .await
            .with_context(|| format!("binding the admin address {}", args.admin_addr))?;
        let stop = CancellationToken::new();
        let admin = tokio::spawn(admin::serve(
            listener,
            admin::router(self.readiness.clone(), Arc::clone(&self.metrics)),
            stop.clone(),
        ));
        let engine = self.engine;
        let ingress = if with_ingress {
            let listener = tokio::net::TcpListener::bind(args.ingress_addr)
                .await
                .with_context(|| format!("binding the ingress address {}", args.ingress_addr))?;
            let options = IngressOptions {
                max_body_bytes: args.max_body_bytes,
            };
            Some(tokio::spawn(ingress::serve(
                listener,
                ingress::router(engine.routes(), options),
                stop.clone(),
            )))
        } else {
            None
        };
        Ok(Serving {
            engine,
            metrics: self.metrics,
            readiness: self.readiness,
            stop,
            admin,
            ingress,
        })
    }
}

impl Serving {
    pub fn serves_ingress(&self) -> bool {
        self.ingress.is_some()
    }

    /// Drains every resource, then stops the servers.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down: draining in-flight events");
        self.engine.shutdown().await;
        self.stop.cancel();
        if let Some(task) = self.ingress {
            match task.await {
                Ok(result) => result.context("ingress server")?,
                Err(error) => tracing::warn!(%error, "ingress server task failed"),
            }
        }
        match self.admin.await {
            Ok(result) => result.context("admin server")?,
            Err(error) => tracing::warn!(%error, "admin server task failed"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// SIGTERM or SIGINT, installed at once so a signal arriving while the caller is busy is kept.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> anyhow::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
