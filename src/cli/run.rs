//! `kafka-bridge run -f FILE`: the standalone data plane.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context;
use kafka_bridge::admin;
use kafka_bridge::engine::plan::Plan;
use kafka_bridge::engine::readiness::Readiness;
use kafka_bridge::engine::{Engine, EngineOptions};
use kafka_bridge::feed;
use kafka_bridge::ingress::{self, IngressOptions};
use kafka_bridge::kafka::client_config::ClientSettings;
use kafka_bridge::kafka::embedded::EmbeddedCluster;
use kafka_bridge::metrics::Metrics;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use super::RunArgs;

/// Partitions of each topic created in the embedded cluster.
const EMBEDDED_PARTITIONS: i32 = 4;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();
    let options = EngineOptions {
        max_in_flight: args.max_in_flight.max(1),
        drain_timeout: args.drain_timeout,
        client: ClientSettings {
            overrides: args.kafka_config.into_iter().collect(),
        },
    };
    // Building the HTTP client loads the system's TLS roots (~100 ms): off the runtime, while
    // the files are read.
    let engine = {
        let (metrics, readiness) = (Arc::clone(&metrics), readiness.clone());
        tokio::task::spawn_blocking(move || Engine::new(options, metrics, readiness))
    };
    let files = args.files.clone();
    let mut plan = tokio::task::spawn_blocking(move || feed::load_plan(&files))
        .await
        .context("reading the files")??;
    if plan.sources.is_empty() && plan.channels.is_empty() {
        tracing::warn!(
            "no KafkaSource or KafkaChannel found in the given files; serving health endpoints only"
        );
    }
    // Kept alive until the process ends; the cluster lives in this process's memory.
    let _embedded = start_embedded(&mut plan)?;

    let listener = admin::bind(args.admin_addr)
        .await
        .with_context(|| format!("binding the admin address {}", args.admin_addr))?;
    let admin_stop = CancellationToken::new();
    let admin_task = tokio::spawn(admin::serve(
        listener,
        admin::router(readiness, metrics),
        admin_stop.clone(),
    ));
    let mut engine = engine.await.context("creating the engine")??;
    // The ingress serves channels only; a process running sources alone leaves the port free.
    let ingress_task = if plan.channels.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(args.ingress_addr)
            .await
            .with_context(|| format!("binding the ingress address {}", args.ingress_addr))?;
        let options = IngressOptions {
            max_body_bytes: args.max_body_bytes,
        };
        Some(tokio::spawn(ingress::serve(
            listener,
            ingress::router(engine.routes(), options),
            admin_stop.clone(),
        )))
    };
    tracing::info!(
        admin = %args.admin_addr,
        ingress = ?ingress_task.as_ref().map(|_| args.ingress_addr),
        sources = plan.sources.len(),
        channels = plan.channels.len(),
        "kafka-bridge running"
    );

    engine.apply(&plan).await;
    wait_for_signal().await?;
    tracing::info!("shutting down: draining in-flight events");
    engine.shutdown().await;
    admin_stop.cancel();
    if let Some(task) = ingress_task {
        match task.await {
            Ok(result) => result.context("ingress server")?,
            Err(error) => tracing::warn!(%error, "ingress server task failed"),
        }
    }
    match admin_task.await {
        Ok(result) => result.context("admin server")?,
        Err(error) => tracing::warn!(%error, "admin server task failed"),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Starts the in-process cluster when a resource asks for `embedded`, creates the topics those
/// resources name, and points them at it.
fn start_embedded(plan: &mut Plan) -> anyhow::Result<Option<EmbeddedCluster>> {
    let sources = plan.sources.iter().any(|s| s.kafka.is_embedded());
    if !sources && !plan.channels.iter().any(|c| c.kafka.is_embedded()) {
        return Ok(None);
    }
    let cluster = EmbeddedCluster::start()?;
    let bootstrap = cluster.bootstrap_servers();
    let mut topics = BTreeSet::new();
    for source in &mut plan.sources {
        if source.kafka.is_embedded() {
            let source = Arc::make_mut(source);
            source.kafka.bootstrap_servers.clone_from(&bootstrap);
            topics.extend(source.topics.iter().cloned());
        }
    }
    for channel in &mut plan.channels {
        if channel.kafka.is_embedded() {
            // Channels create their own topics, with their spec's partitions.
            Arc::make_mut(channel)
                .kafka
                .bootstrap_servers
                .clone_from(&bootstrap);
        }
    }
    for topic in &topics {
        cluster.create_topic(topic, EMBEDDED_PARTITIONS)?;
    }
    tracing::warn!(
        bootstrap = %bootstrap,
        ?topics,
        "embedded Kafka cluster started (in memory, for development only); produce with: \
         kafka-bridge produce --bootstrap-server {bootstrap} --topic TOPIC VALUE"
    );
    Ok(Some(cluster))
}
