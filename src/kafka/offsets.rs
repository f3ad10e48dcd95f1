//! Starting points for new consumer groups. A new channel subscriber starts at the end of the
//! topic, as in Knative; its group's offsets are committed at the end *before* it reports ready,
//! so an event accepted after that is never skipped (which `auto.offset.reset=latest` alone would
//! allow in the moment between joining and the first fetch), and a restart resumes from there.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::client_config::{consumer_config, ClientSettings};
use crate::engine::plan::{InitialOffset, KafkaConnection};

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error("group {group}, topic {topic}: {step}: {source}")]
    Kafka {
        group: String,
        topic: String,
        step: &'static str,
        source: Box<KafkaError>,
    },
    #[error("topic {0} has no partitions")]
    NoPartitions(String),
}

/// Commits the end offset of every partition of `topic` that `group` has no commit for. Blocking:
/// call from `spawn_blocking`. Returns how many partitions it initialised.
pub fn initialize_to_latest(
    conn: &KafkaConnection,
    settings: &ClientSettings,
    group: &str,
    topic: &str,
) -> Result<usize, OffsetsError> {
    let err = |step: &'static str| {
        move |source| OffsetsError::Kafka {
            group: group.to_string(),
            topic: topic.to_string(),
            step,
            source: Box::new(source),
        }
    };
    let consumer: BaseConsumer = consumer_config(conn, group, InitialOffset::Latest, settings)
        .create()
        .map_err(err("client"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .map_err(err("metadata"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(OffsetsError::NoPartitions(topic.to_string()));
    }
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer
        .committed_offsets(wanted, TIMEOUT)
        .map_err(err("committed offsets"))?;
    let mut to_commit = TopicPartitionList::new();
    for element in committed.elements() {
        if let Offset::Offset(_) = element.offset() {
            continue;
        }
        let (_, high) = consumer
            .fetch_watermarks(topic, element.partition(), TIMEOUT)
            .map_err(err("watermarks"))?;
        to_commit
            .add_partition_offset(topic, element.partition(), Offset::Offset(high))
            .map_err(err("offset list"))?;
    }
    if to_commit.count() > 0 {
        consumer
            .commit(&to_commit, CommitMode::Sync)
            .map_err(err("commit"))?;
    }
    Ok(to_commit.count())
}
