//! Topic management: a channel's topic is created with its spec's partitions, replication factor
//! and retention when absent, and an existing topic is used as it is (Knative does the same).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::client_config::{admin_config, ClientSettings};
use crate::engine::plan::KafkaConnection;

#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    #[error("creating the Kafka admin client: {0}")]
    Client(KafkaError),
    #[error("creating topic {topic:?}: {error}")]
    Create { topic: String, error: String },
    #[error("deleting topic {topic:?}: {error}")]
    Delete { topic: String, error: String },
}

/// The settings of a topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub retention: Duration,
}

/// Outcome of [`ensure_topic`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    AlreadyExisted,
}

/// Creates the topic unless it exists.
pub async fn ensure_topic(
    conn: &KafkaConnection,
    settings: &ClientSettings,
    spec: &TopicSpec,
) -> Result<Ensured, TopicError> {
    let admin: AdminClient<DefaultClientContext> = admin_config(conn, settings)
        .create()
        .map_err(TopicError::Client)?;
    let retention_ms = spec.retention.as_millis().to_string();
    let topic = NewTopic::new(
        &spec.name,
        spec.partitions,
        TopicReplication::Fixed(i32::from(spec.replication_factor)),
    )
    .set("retention.ms", &retention_ms);
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results =
        admin
            .create_topics([&topic], &options)
            .await
            .map_err(|e| TopicError::Create {
                topic: spec.name.clone(),
                error: e.to_string(),
            })?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(Ensured::Created),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(Ensured::AlreadyExisted),
        Some(Err((_, code))) => Err(TopicError::Create {
            topic: spec.name.clone(),
            error: code.to_string(),
        }),
        None => Err(TopicError::Create {
            topic: spec.name.clone(),
            error: "the broker returned no result".into(),
        }),
    }
}

/// Deletes the topic; one that does not exist counts as deleted.
pub async fn delete_topic(
    conn: &KafkaConnection,
    settings: &ClientSettings,
    topic: &str,
) -> Result<(), TopicError> {
    let admin: AdminClient<DefaultClientContext> = admin_config(conn, settings)
        .create()
        .map_err(TopicError::Client)?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let failed = |error: String| TopicError::Delete {
        topic: topic.to_owned(),
        error,
    };
    let results = admin
        .delete_topics(&[topic], &options)
        .await
        .map_err(|e| failed(e.to_string()))?;
    match results.into_iter().next() {
        Some(Ok(_)) | Some(Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))) => Ok(()),
        Some(Err((_, code))) => Err(failed(code.to_string())),
        None => Err(failed("the broker returned no result".into())),
    }
}
