//! The plan: resources resolved and validated by a feed (files standalone, the controller in a
//! cluster), ready for the engine to run. Nothing here is re-checked at run time.
//!
//! The same types are the data-plane contract the controller writes (see
//! [`contract`](super::contract)): JSON with camelCase fields, enums in lowercase
//! (`byte-array` for [`KeyType::ByteArray`]), durations as whole milliseconds in fields ending in
//! `Ms`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::delivery::policy::{duration_ms, DeliveryPolicy, Target};

/// Namespace and name of a Kubernetes resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceId {
    pub namespace: String,
    pub name: String,
}

impl ResourceId {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// How to reach a Kafka cluster: bootstrap servers plus the librdkafka security properties
/// (`security.protocol`, `sasl.*`, `ssl.*`) derived from Knative's `net` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaConnection {
    /// Comma-separated `host:port` list, or [`KafkaConnection::EMBEDDED`] (standalone only).
    pub bootstrap_servers: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

impl KafkaConnection {
    /// The bootstrap value that asks for the in-process development cluster.
    pub const EMBEDDED: &'static str = "embedded";

    pub fn plaintext(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            properties: BTreeMap::new(),
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.bootstrap_servers == Self::EMBEDDED
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum InitialOffset {
    Earliest,
    #[default]
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Ordering {
    /// One event in flight per partition, in offset order.
    #[default]
    Ordered,
    /// Bounded concurrency across the source; offsets still commit in order.
    Unordered,
}

/// The `kafkasources.sources.knative.dev/key-type` label: how a record key becomes the `key`
/// extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    #[default]
    String,
    Int,
    Float,
    ByteArray,
}

/// A KafkaSource, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourcePlan {
    pub id: ResourceId,
    /// `metadata.generation` of the resource this was resolved from (0 when unknown), reported
    /// back in the status so the controller knows which spec runs.
    #[serde(default)]
    pub generation: i64,
    pub kafka: KafkaConnection,
    pub topics: Vec<String>,
    pub consumer_group: String,
    pub initial_offset: InitialOffset,
    /// Consumer instances this process runs for the source.
    pub consumers: u32,
    pub ordering: Ordering,
    pub sink: Target,
    pub delivery: DeliveryPolicy,
    /// `ceOverrides.extensions`, applied last to every event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ce_overrides: BTreeMap<String, String>,
    #[serde(default)]
    pub key_type: KeyType,
}

impl SourcePlan {
    /// The CloudEvent `source` attribute of events made from records of `topic`.
    pub fn event_source(&self, topic: &str) -> String {
        format!(
            "/apis/v1/namespaces/{}/kafkasources/{}#{}",
            self.id.namespace, self.id.name, topic
        )
    }
}

/// One subscriber of a KafkaChannel, as Knative's Subscription controller writes it into
/// `spec.subscribers[]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberPlan {
    pub uid: String,
    #[serde(default)]
    pub generation: i64,
    /// `subscriberUri`; absent when the subscription only forwards to its reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<Target>,
    /// `replyUri`: where a subscriber's reply event goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Target>,
    /// The subscriber's delivery, falling back to the channel's.
    pub delivery: DeliveryPolicy,
    /// `kafka.NS.CHANNEL.UID`, so each subscriber progresses on its own.
    pub consumer_group: String,
    #[serde(default)]
    pub ordering: Ordering,
}

/// A KafkaChannel, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelPlan {
    pub id: ResourceId,
    /// `metadata.generation` (0 when unknown), as for [`SourcePlan::generation`].
    #[serde(default)]
    pub generation: i64,
    pub kafka: KafkaConnection,
    /// `knative-messaging-kafka.NS.NAME`.
    pub topic: String,
    pub num_partitions: i32,
    pub replication_factor: i16,
    #[serde(rename = "retentionMs", with = "duration_ms")]
    pub retention: std::time::Duration,
    #[serde(default, with = "arc_list")]
    pub subscribers: Vec<Arc<SubscriberPlan>>,
}

impl ChannelPlan {
    /// The channel's in-cluster host name, which the ingress also routes by.
    pub fn host(&self) -> String {
        format!(
            "{}-kn-channel.{}.svc.cluster.local",
            self.id.name, self.id.namespace
        )
    }
}

/// Everything the engine runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    #[serde(default, with = "arc_list")]
    pub sources: Vec<Arc<SourcePlan>>,
    #[serde(default, with = "arc_list")]
    pub channels: Vec<Arc<ChannelPlan>>,
}

/// A list of shared plans as a plain JSON array (serde's own `Arc` support needs its `rc`
/// feature, and sharing means nothing on the wire anyway).
mod arc_list {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(
        items: &[Arc<T>],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(items.iter().map(|item| &**item))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Vec<Arc<T>>, D::Error> {
        Ok(Vec::<T>::deserialize(deserializer)?
            .into_iter()
            .map(Arc::new)
            .collect())
    }
}
