//! The embedded development cluster: librdkafka's in-process mock cluster, started when a
//! resource names `bootstrapServers: [embedded]`, so the bridge runs on a machine with no Kafka.
//! It keeps data in memory only and is meant for trying things out, never for production.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("starting the embedded Kafka cluster: {0}")]
    Start(rdkafka::error::KafkaError),
    #[error("creating topic {topic:?} in the embedded Kafka cluster")]
    Topic {
        topic: String,
        source: rdkafka::error::KafkaError,
    },
}

/// The running cluster; dropping it stops it. Not `Send`: keep it where it was created.
pub struct EmbeddedCluster {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl EmbeddedCluster {
    pub fn start() -> Result<Self, EmbeddedError> {
        let cluster = MockCluster::new(1).map_err(EmbeddedError::Start)?;
        Ok(Self { cluster })
    }

    /// `host:port` list that clients bootstrap from.
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), EmbeddedError> {
        self.cluster
            .create_topic(topic, partitions, 1)
            .map_err(|source| EmbeddedError::Topic {
                topic: topic.to_string(),
                source,
            })
    }
}
