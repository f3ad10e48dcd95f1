//! Kafka helpers for tests: unique names, topic creation, producing records one per batch, and
//! reading them back through a consumer group.
//!
//! tansu 0.6.0 quirks shaped these: topics are never auto-created (create them first); a group
//! join takes about session.timeout.ms / 2 (we use 6 s); a consumer whose committed offset lies
//! inside a multi-record batch fetches nothing, so records are produced one per batch.
//! librdkafka calls that block (metadata, committed offsets, closing a client) run on the blocking
//! pool so they never stall a test's runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Session timeout for test consumer groups: tansu completes a join after about half of it.
pub const SESSION_TIMEOUT_MS: &str = "6000";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test of any run will use: `<prefix>-<pid>-<counter>-<time>`. `prefix` must
/// itself be a legal topic/group name (`[a-zA-Z0-9._-]`).
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:08x}", std::process::id())
}

/// Creates `name` with `partitions` partitions (replication 1) and waits until metadata shows
/// every partition with a leader. Panics on any error, including "already exists".
pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("create admin client");
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(10)))
        .request_timeout(Some(Duration::from_secs(10)));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = tokio::time::timeout(
        Duration::from_secs(20),
        admin.create_topics([&topic], &options),
    )
    .await
    .unwrap_or_else(|_| panic!("create topic {name}: no answer within 20s"))
    .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
    for result in results {
        if let Err((topic, code)) = result {
            panic!("create topic {topic}: {code}");
        }
    }
    close_in_background(admin).await;
    wait_topic_metadata(bootstrap, name, partitions, Duration::from_secs(15)).await;
}

/// Waits until a metadata request shows `topic` with `partitions` led partitions.
pub async fn wait_topic_metadata(bootstrap: &str, topic: &str, partitions: i32, timeout: Duration) {
    let (bootstrap, wanted) = (bootstrap.to_string(), topic.to_string());
    let outcome = tokio::task::spawn_blocking(move || {
        let topic = wanted;
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("create metadata client");
        let deadline = Instant::now() + timeout;
        let mut seen = String::from("no answer");
        while Instant::now() < deadline {
            match client.fetch_metadata(Some(&topic), Duration::from_secs(2)) {
                Ok(metadata) => {
                    if let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) {
                        let led = t.partitions().iter().filter(|p| p.leader() >= 0).count();
                        if t.error().is_none() && led == partitions as usize {
                            return Ok(());
                        }
                        seen = format!("error {:?}, {led} led partitions", t.error());
                    }
                }
                Err(e) => seen = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(seen)
    })
    .await
    .expect("metadata task");
    if let Err(seen) = outcome {
        panic!("topic {topic} not in metadata with {partitions} partitions within {timeout:?}: last saw {seen}");
    }
}

/// A record to produce. Build with [`Record::new`] and the chained setters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    /// Explicit partition; `None` lets the producer's partitioner choose (from the key).
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    /// In order; a `None` value is a null header.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// `None` is a null value (tombstone).
    pub value: Option<Vec<u8>>,
    /// Create time in milliseconds since the epoch; `None` lets the producer stamp it.
    pub timestamp: Option<i64>,
}

impl Record {
    pub fn new(value: impl Into<Vec<u8>>) -> Record {
        Record {
            value: Some(value.into()),
            ..Record::default()
        }
    }

    /// A record with a null value.
    pub fn null_value() -> Record {
        Record::default()
    }

    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Record {
        self.key = Some(key.into());
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Record {
        self.headers.push((name.to_string(), Some(value.into())));
        self
    }

    pub fn null_header(mut self, name: &str) -> Record {
        self.headers.push((name.to_string(), None));
        self
    }

    pub fn partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }

    pub fn timestamp(mut self, millis: i64) -> Record {
        self.timestamp = Some(millis);
        self
    }
}

/// Where a produced record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivered {
    pub partition: i32,
    pub offset: i64,
}

/// Produces `records` in order, one record per batch, each acknowledged by the broker before the
/// next is sent; returns where each landed. Panics on any delivery error.
pub async fn produce(bootstrap: &str, topic: &str, records: &[Record]) -> Vec<Delivered> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .set("max.in.flight.requests.per.connection", "1")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("create producer");
    let mut delivered = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let mut future_record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if let Some(partition) = record.partition {
            future_record = future_record.partition(partition);
        }
        if let Some(key) = &record.key {
            future_record = future_record.key(key.as_slice());
        }
        if let Some(value) = &record.value {
            future_record = future_record.payload(value.as_slice());
        }
        if let Some(timestamp) = record.timestamp {
            future_record = future_record.timestamp(timestamp);
        }
        if !record.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
            for (key, value) in &record.headers {
                headers = headers.insert(Header {
                    key,
                    value: value.as_deref(),
                });
            }
            future_record = future_record.headers(headers);
        }
        // message.timeout.ms bounds the wait for the acknowledgement; this bounds the enqueue.
        match producer.send(future_record, Duration::from_secs(10)).await {
            Ok(delivery) => delivered.push(Delivered {
                partition: delivery.partition,
                offset: delivery.offset,
            }),
            Err((e, _)) => panic!("produce record #{index} to {topic}: {e}"),
        }
    }
    close_in_background(producer).await;
    delivered
}

/// A record read back from Kafka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Milliseconds since the epoch, when the record carries one.
    pub timestamp: Option<i64>,
}

impl Consumed {
    /// The first header named `name` (exact match), as bytes; `None` when absent or null.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_deref())
    }

    /// The header as UTF-8; panics when it is not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name)
            .map(|v| std::str::from_utf8(v).expect("header value is UTF-8"))
    }

    /// The key as UTF-8; panics when it is not UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .map(|v| std::str::from_utf8(v).expect("key is UTF-8"))
    }

    /// The value as UTF-8; panics when it is not UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        self.value
            .as_deref()
            .map(|v| std::str::from_utf8(v).expect("value is UTF-8"))
    }
}

/// Reads `n` records of `topic` from the earliest offset through a fresh consumer group (nothing
/// is committed). Panics, listing what did arrive, when fewer than `n` arrive within `timeout`
/// (which must cover the group join, about 3 s). Stops at `n`: to check that nothing more is
/// there, use [`consume_up_to`] with a larger bound.
pub async fn consume_all(
    bootstrap: &str,
    topic: &str,
    n: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let records = consume_up_to(bootstrap, topic, n, timeout).await;
    if records.len() < n {
        panic!(
            "expected {n} records from {topic} within {timeout:?}, got {}: {records:#?}",
            records.len()
        );
    }
    records
}

/// Reads records of `topic` from the earliest offset through a fresh consumer group until `max`
/// have arrived or `timeout` passes; returns what arrived, in arrival order.
pub async fn consume_up_to(
    bootstrap: &str,
    topic: &str,
    max: usize,
    timeout: Duration,
) -> Vec<Consumed> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("kb-test-reader"))
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create consumer");
    consumer
        .subscribe(&[topic])
        .unwrap_or_else(|e| panic!("subscribe to {topic}: {e}"));
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    {
        let mut stream = consumer.stream();
        while records.len() < max {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) | Ok(None) => break,
                Ok(Some(Err(e))) => panic!("consume {topic}: {e}"),
                Ok(Some(Ok(message))) => records.push(Consumed {
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                    headers: message
                        .headers()
                        .map(|headers| {
                            headers
                                .iter()
                                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                                .collect()
                        })
                        .unwrap_or_default(),
                    timestamp: message.timestamp().to_millis(),
                }),
            }
        }
    }
    close_in_background(consumer).await;
    records
}

/// The offsets `group` has committed on partitions `0..partitions` of `topic` (`None`: nothing
/// committed). Reads them without joining the group.
pub async fn committed_offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Vec<Option<i64>> {
    let (bootstrap, group, topic) = (bootstrap.to_string(), group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("create offsets client");
        let mut wanted = TopicPartitionList::new();
        for partition in 0..partitions {
            wanted.add_partition(&topic, partition);
        }
        let committed = consumer
            .committed_offsets(wanted, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("committed offsets of {group} on {topic}: {e}"));
        (0..partitions)
            .map(
                |partition| match committed.find_partition(&topic, partition) {
                    Some(element) => match element.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    },
                    None => None,
                },
            )
            .collect()
    })
    .await
    .expect("committed offsets task")
}

/// Drops a librdkafka client on the blocking pool: closing one waits for its broker threads (and a
/// consumer leaves its group), which must not stall the test's runtime.
async fn close_in_background<T: Send + 'static>(client: T) {
    // A panic while closing is librdkafka's and not the test's concern; the test goes on.
    let _ = tokio::task::spawn_blocking(move || drop(client)).await;
}
