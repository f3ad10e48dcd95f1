//! Kafka producers for the ingress: one librdkafka producer per Kafka cluster (bootstrap servers
//! plus client properties), shared by every channel on that cluster, so its connections and
//! batches are shared too. A producer lives while some channel uses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use http::HeaderMap;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use crate::engine::plan::KafkaConnection;
use crate::event::{kafka_binding, Event};
use crate::kafka::client_config::{producer_config, ClientSettings};

/// How long a send waits for room in librdkafka's queue before giving up with a 503. The queue
/// only fills when the cluster falls far behind; a short wait absorbs a burst without letting
/// requests pile up behind a cluster that is down.
const ENQUEUE_WAIT: Duration = Duration::from_secs(1);

/// Defaults the ingress picks over librdkafka's, unless the connection or the operator's
/// overrides set them. `acks=all` and `enable.idempotence=false` come from [`producer_config`]
/// (idempotence works against tansu 0.6.0 but cut throughput to a third in our measurements).
const DEFAULTS: [(&str, &str); 4] = [
    // librdkafka's 300 s would keep a client waiting five minutes for its 503 when the cluster
    // is down; 30 s still rides out a leader election.
    ("message.timeout.ms", "30000"),
    // Latency and throughput together (measured against tansu on loopback): no linger, so a lone
    // client's event is sent at once (p50 ~0.4 ms; linger.ms=1 made it ~1.7 ms), and a bounded
    // pipeline, so under load events queue behind the requests in flight and go out batched
    // (librdkafka's unbounded default sends one request per event and costs the broker and the
    // producer about twice the CPU).
    ("linger.ms", "0"),
    ("max.in.flight.requests.per.connection", "5"),
    // librdkafka refuses records over 1 MB by default, below the ingress's 4 MiB body limit;
    // this leaves room for such a body plus its headers. The topic's own limit still applies.
    ("message.max.bytes", "5242880"),
];

#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error("creating a Kafka producer for {bootstrap_servers}: {source}")]
    Create {
        bootstrap_servers: String,
        #[source]
        source: KafkaError,
    },
}

/// Why an event was not stored.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("producing to topic {topic:?}: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: KafkaError,
    },
}

impl ProduceError {
    /// The producer or the broker refuses records this large: retrying cannot help.
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            Self::Kafka {
                source: KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                ..
            }
        )
    }
}

/// A cluster's identity: bootstrap servers and every client property.
type ClusterKey = (String, Vec<(String, String)>);

/// Hands out one shared producer per Kafka cluster.
pub struct Producers {
    settings: ClientSettings,
    clusters: Mutex<HashMap<ClusterKey, Weak<Cluster>>>,
}

impl std::fmt::Debug for Producers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producers")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Producers {
    /// `settings.overrides` apply to every producer, after the ingress's own defaults.
    pub fn new(settings: ClientSettings) -> Self {
        Self {
            settings,
            clusters: Mutex::new(HashMap::new()),
        }
    }

    /// The producer for `conn`'s cluster, created on first use.
    pub fn for_cluster(&self, conn: &KafkaConnection) -> Result<ChannelProducer, ProducerError> {
        let key: ClusterKey = (
            conn.bootstrap_servers.clone(),
            conn.properties
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        // Creating a producer neither blocks nor touches the network, so holding the lock
        // through it is fine, and it keeps two callers from creating two producers.
        let mut clusters = self.clusters.lock().unwrap_or_else(PoisonError::into_inner);
        clusters.retain(|_, cluster| cluster.strong_count() > 0);
        if let Some(cluster) = clusters.get(&key).and_then(Weak::upgrade) {
            return Ok(ChannelProducer { cluster });
        }
        let producer: FutureProducer =
            config(conn, &self.settings)
                .create()
                .map_err(|source| ProducerError::Create {
                    bootstrap_servers: conn.bootstrap_servers.clone(),
                    source,
                })?;
        let cluster = Arc::new(Cluster {
            producer: Some(producer),
        });
        clusters.insert(key, Arc::downgrade(&cluster));
        Ok(ChannelProducer { cluster })
    }
}

fn config(conn: &KafkaConnection, settings: &ClientSettings) -> ClientConfig {
    let mut config = producer_config(conn, settings);
    for (key, value) in DEFAULTS {
        let configured = conn.properties.contains_key(key) || settings.overrides.contains_key(key);
        if !configured {
            config.set(key, value);
        }
    }
    config
}

struct Cluster {
    /// Always `Some` until dropped; taken in `drop` to close it off the async runtime.
    producer: Option<FutureProducer>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let Some(producer) = self.producer.take() else {
            return;
        };
        // Closing a producer joins its threads and may wait for a flush: blocking work.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || drop(producer));
            }
            Err(_) => drop(producer),
        }
    }
}

/// A channel's handle on its cluster's producer. Cheap to clone.
#[derive(Clone)]
pub struct ChannelProducer {
    cluster: Arc<Cluster>,
}

impl std::fmt::Debug for ChannelProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChannelProducer")
    }
}

impl ChannelProducer {
    /// Whether both handles share one producer.
    pub fn same_producer(&self, other: &ChannelProducer) -> bool {
        Arc::ptr_eq(&self.cluster, &other.cluster)
    }

    /// Produces `event` to `topic` in the Kafka binary mode, `data` as the value and the
    /// `forwarded` request headers added, and resolves once the broker acknowledged it (per the
    /// producer's `acks`). Returns how long that took.
    pub async fn send(
        &self,
        topic: &str,
        event: &Event,
        data: Option<&[u8]>,
        forwarded: &HeaderMap,
    ) -> Result<Duration, ProduceError> {
        let Some(producer) = &self.cluster.producer else {
            unreachable!("a cluster's producer is only taken when the cluster is dropped");
        };
        let key = kafka_binding::partition_key(event);
        let mut record: FutureRecord<'_, str, [u8]> =
            FutureRecord::to(topic).headers(record_headers(event, forwarded));
        if let Some(key) = &key {
            record = record.key(key.as_ref());
        }
        if let Some(data) = data {
            record = record.payload(data);
        }
        let start = Instant::now();
        match producer.send(record, ENQUEUE_WAIT).await {
            Ok(_) => Ok(start.elapsed()),
            Err((source, _)) => Err(ProduceError::Kafka {
                topic: topic.to_owned(),
                source,
            }),
        }
    }
}

/// The record's headers: the event's binary-mode headers, then the forwarded request headers.
/// librdkafka copies each as it is added, so they are passed borrowed.
fn record_headers(event: &Event, forwarded: &HeaderMap) -> OwnedHeaders {
    let forwarded_count = forwarded
        .keys()
        .filter(|name| is_forwarded(name.as_str()))
        .count();
    // `insert` takes the headers by value: the Option lets the visitor below move them.
    let mut headers = Some(OwnedHeaders::new_with_capacity(
        kafka_binding::header_count(event) + forwarded_count,
    ));
    let mut add = |key: &str, value: &[u8]| {
        headers = headers.take().map(|h| {
            h.insert(Header {
                key,
                value: Some(value),
            })
        });
    };
    kafka_binding::for_each_header(event, &mut add);
    for (name, value) in forwarded {
        if is_forwarded(name.as_str()) {
            add(name.as_str(), value.as_bytes());
        }
    }
    headers.unwrap_or_default()
}

/// Request headers that travel with the event: Knative's own (`knative-*`) and the request id,
/// so the dispatcher can put them back on the requests to subscribers. `http` keeps header names
/// lowercase, so the names are compared as they are.
pub fn is_forwarded(name: &str) -> bool {
    name.starts_with("knative-") || name == "x-request-id"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_headers() {
        let cases = [
            ("knative-error-dest", true),
            ("knative-", true),
            ("x-request-id", true),
            ("x-request-ids", false),
            ("kn-namespace", false),
            ("ce-id", false),
            ("content-type", false),
            ("traceparent", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_forwarded(name), want, "{name}");
        }
    }

    #[test]
    fn defaults_yield_to_connection_properties_and_overrides() {
        let mut conn = KafkaConnection::plaintext("127.0.0.1:1");
        let plain = config(&conn, &ClientSettings::default());
        assert_eq!(plain.get("message.timeout.ms"), Some("30000"));
        assert_eq!(plain.get("linger.ms"), Some("0"));
        assert_eq!(
            plain.get("max.in.flight.requests.per.connection"),
            Some("5")
        );
        assert_eq!(plain.get("acks"), Some("all"));

        conn.properties
            .insert("message.timeout.ms".into(), "500".into());
        let settings = ClientSettings {
            overrides: [("linger.ms".to_string(), "5".to_string())].into(),
        };
        let tuned = config(&conn, &settings);
        assert_eq!(tuned.get("message.timeout.ms"), Some("500"));
        assert_eq!(tuned.get("linger.ms"), Some("5"));
    }

    #[tokio::test]
    async fn one_producer_per_cluster_while_in_use() {
        let producers = Producers::new(ClientSettings::default());
        let a = KafkaConnection::plaintext("127.0.0.1:1");
        let mut b = a.clone();
        b.properties
            .insert("security.protocol".into(), "plaintext".into());
        let a1 = producers.for_cluster(&a).unwrap();
        let a2 = producers.for_cluster(&a).unwrap();
        let b1 = producers.for_cluster(&b).unwrap();
        assert!(a1.same_producer(&a2));
        assert!(!a1.same_producer(&b1));
        drop((a1, a2));
        let a3 = producers.for_cluster(&a).unwrap();
        assert!(!a3.same_producer(&b1));
        let clusters = producers.clusters.lock().unwrap().len();
        assert_eq!(clusters, 2);
    }
}
