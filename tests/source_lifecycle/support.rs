//! Helpers of the lifecycle tests: the source YAML, starting the bridge, reading record ids,
//! offsets and process memory, a pipelined bulk producer, and which consumer instance holds which
//! partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;

use crate::common::{BridgeProcess, Delivered, Request, Sink};

pub const NAMESPACE: &str = "lifecycle";

/// A KafkaSource reading `topic` from the earliest offset; `extra` is appended to its spec
/// (two-space indented lines).
pub fn source_yaml(
    name: &str,
    bootstrap: &str,
    topic: &str,
    group: &str,
    sink: &str,
    extra: &str,
) -> String {
    format!(
        "apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata:
  name: {name}
  namespace: {NAMESPACE}
spec:
  bootstrapServers:
    - {bootstrap}
  topics:
    - {topic}
  consumerGroup: {group}
  initialOffset: earliest
  sink:
    uri: {sink}
{extra}"
    )
}

/// Starts the bridge with the session timeout tansu needs (its group join takes about half).
pub fn start_bridge(config: &Path, extra: &[&str]) -> BridgeProcess {
    let mut args = vec!["--kafka-config", "session.timeout.ms=6000"];
    args.extend_from_slice(extra);
    BridgeProcess::start(config, &args)
}

/// `(partition, offset)` of the record an event came from, from its Knative Kafka extensions.
pub fn record_id(request: &Request) -> (i32, i64) {
    let partition = request
        .header("ce-knativekafkapartition")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no partition extension: {:?}", request.headers));
    let offset = request
        .header("ce-knativekafkaoffset")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no offset extension: {:?}", request.headers));
    (partition, offset)
}

/// The offset after the last record produced to each of `partitions` partitions (`None`: none).
pub fn end_offsets(delivered: &[Delivered], partitions: i32) -> Vec<Option<i64>> {
    (0..partitions)
        .map(|p| {
            delivered
                .iter()
                .filter(|d| d.partition == p)
                .map(|d| d.offset + 1)
                .max()
        })
        .collect()
}

/// `GET url` on a fresh connection: status and body, or `None` when the server does not answer.
pub async fn try_get(url: &str) -> Option<(u16, String)> {
    let response = crate::common::net::http_client()
        .get(url)
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// Polls `check` every 100 ms until it returns `Some`, panicking with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the sink until every id in `wanted` has arrived at least once.
pub async fn wait_for_ids(sink: &Sink, wanted: &BTreeSet<(i32, i64)>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen: BTreeSet<(i32, i64)> = sink.requests().iter().map(record_id).collect();
        if wanted.is_subset(&seen) {
            return;
        }
        if Instant::now() >= deadline {
            let missing: Vec<_> = wanted.difference(&seen).take(20).collect();
            panic!(
                "{} of {} records never reached the sink within {timeout:?}, e.g. {missing:?}",
                wanted.difference(&seen).count(),
                wanted.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resident and peak resident memory of a process, in KiB (`VmRSS`, `VmHWM`).
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Produces `count` records of `size` bytes round-robin over `partitions` partitions, still one
/// record per batch (tansu) but pipelined, which is far faster than [`crate::common::produce`]'s one-by-one acks
/// for the bulk of the memory test.
pub async fn produce_bulk(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    size: usize,
) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "60000")
        .create()
        .expect("create producer");
    let value = vec![b'x'; size];
    let indexes: Vec<usize> = (0..count).collect();
    for chunk in indexes.chunks(1000) {
        let sends = chunk.iter().map(|i| {
            let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(topic)
                .partition(*i as i32 % partitions)
                .payload(value.as_slice());
            producer.send(record, Duration::from_secs(30))
        });
        for (i, sent) in join_all(sends).await.into_iter().enumerate() {
            if let Err((e, _)) = sent {
                panic!("produce bulk record {} of {topic}: {e}", chunk[i]);
            }
        }
    }
    tokio::task::spawn_blocking(move || drop(producer))
        .await
        .expect("close producer");
}

/// The partitions each consumer instance of a multi-consumer source holds, replayed from the
/// bridge log's `partitions assigned` / `partitions revoked` lines, in which each instance names
/// itself `<resource> consumer <index>`.
pub fn assignments_from_log(log: &str, resource: &str) -> BTreeMap<u32, BTreeSet<i32>> {
    let mut held: BTreeMap<u32, BTreeSet<i32>> = BTreeMap::new();
    let marker = format!("resource={resource} consumer ");
    for line in log.lines() {
        let assigned = line.contains("partitions assigned");
        if !assigned && !line.contains("partitions revoked") {
            continue;
        }
        let Some(at) = line.find(&marker) else {
            continue;
        };
        let rest = &line[at + marker.len()..];
        let index: u32 = rest
            .split_whitespace()
            .next()
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("consumer index in {line:?}"));
        let list = &rest[rest
            .find("partitions=[")
            .unwrap_or_else(|| panic!("{line:?}"))..];
        let partitions = list
            .split(')')
            .filter_map(|entry| entry.rsplit(", ").next())
            .filter_map(|p| p.trim().parse::<i32>().ok());
        let set = held.entry(index).or_default();
        for partition in partitions {
            if assigned {
                set.insert(partition);
            } else {
                set.remove(&partition);
            }
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_replay_from_the_log() {
        let log = "\
    2026-01-01T00:00:00Z  INFO partitions assigned resource=KafkaSource ns/a consumer 0 partitions=[(\"t\", 0), (\"t\", 1), (\"t\", 2)]
    2026-01-01T00:00:01Z  INFO partitions revoked resource=KafkaSource ns/a consumer 0 partitions=[(\"t\", 0), (\"t\", 1), (\"t\", 2)]
    2026-01-01T00:00:01Z  INFO partitions assigned resource=KafkaSource ns/ab consumer 0 partitions=[(\"t\", 7)]
    2026-01-01T00:00:02Z  INFO partitions assigned resource=KafkaSource ns/a consumer 1 partitions=[(\"t\", 2)]
    2026-01-01T00:00:02Z  INFO partitions assigned resource=KafkaSource ns/a consumer 0 partitions=[(\"t\", 0), (\"t\", 1)]
    ";
        let held = assignments_from_log(log, "KafkaSource ns/a");
        assert_eq!(
            held,
            BTreeMap::from([(0, BTreeSet::from([0, 1])), (1, BTreeSet::from([2]))])
        );
    }
}
