//! `kafka-bridge run -f FILE`: the standalone data plane, its plan read from Knative YAML once.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::Context;
use kafka_bridge::engine::plan::Plan;
use kafka_bridge::engine::readiness::ReadyWhen;
use kafka_bridge::feed;
use kafka_bridge::kafka::embedded::EmbeddedCluster;

use super::serve::{Signals, Starting};
use super::RunArgs;

/// Partitions of each topic created in the embedded cluster.
const EMBEDDED_PARTITIONS: i32 = 4;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut signals = Signals::install()?;
    let starting = Starting::new(&args.engine, ReadyWhen::EveryPart);
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
    // The ingress serves channels only; a process running sources alone leaves the port free.
    let mut serving = starting
        .serve(&args.engine, !plan.channels.is_empty())
        .await?;
    tracing::info!(
        admin = %args.engine.admin_addr,
        ingress = ?serving.serves_ingress().then_some(args.engine.ingress_addr),
        sources = plan.sources.len(),
        channels = plan.channels.len(),
        "kafka-bridge running"
    );
    serving.engine.apply(&plan).await;
    signals.recv().await;
    serving.shutdown().await
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
