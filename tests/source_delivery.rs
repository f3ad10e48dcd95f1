//! KafkaSource delivery (README "Delivery") end to end: the real binary consuming a real broker
//! and posting to real HTTP sinks. Covers retry counts and backoff schedules, which statuses are
//! retried, `Retry-After`, per-attempt timeouts, dead letters and their error extensions, what is
//! committed when delivery fails (dropped by policy: committed; dead-letter sink failing too:
//! held and retried, not committed), and ordered vs unordered concurrency.
//!
//! Timing assertions bound gaps strictly from below (the bridge must wait at least that long)
//! and generously from above (the machine is shared), so they catch a wrong schedule without
//! flaking on a slow scheduler.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{
    broker, committed_offsets, create_topic, metric_value, produce, unique, write_yaml,
    BridgeProcess, Plan, Record, Request, Sink, YamlFile,
};
use partition_sink::PartitionSink;

/// Startup (group join on tansu takes about session.timeout / 2) and arrival bounds.
const READY: Duration = Duration::from_secs(40);
const ARRIVE: Duration = Duration::from_secs(30);
/// How long to watch for requests that must not come.
const QUIET: Duration = Duration::from_millis(600);
/// Slack on top of an expected wait for the upper bound of a gap.
const SLACK: Duration = Duration::from_millis(400);

const NAMESPACE: &str = "itest";

/// A topic of the shared broker, created empty.
struct Topic {
    bootstrap: String,
    name: String,
    partitions: i32,
}

async fn topic(prefix: &str, partitions: i32) -> Topic {
    let bootstrap = broker().await.bootstrap();
    let name = unique(prefix);
    create_topic(&bootstrap, &name, partitions).await;
    Topic {
        bootstrap,
        name,
        partitions,
    }
}

impl Topic {
    async fn produce(&self, records: &[Record]) {
        produce(&self.bootstrap, &self.name, records).await;
    }

    /// Starts a bridge running one KafkaSource on this topic with its own consumer group, and
    /// waits until it holds partitions. `delivery` holds the lines of `spec.delivery`; empty
    /// means no `delivery` block at all.
    async fn start_source(&self, ordering: &str, sink: &str, delivery: &[&str]) -> Source {
        let name = unique("src");
        let group = unique("delivery-group");
        let delivery = if delivery.is_empty() {
            String::new()
        } else {
            let mut block = String::from("  delivery:\n");
            for line in delivery {
                block.push_str(&format!("    {line}\n"));
            }
            block
        };
        let yaml = write_yaml(&format!(
            "apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata:
  name: {name}
  namespace: {NAMESPACE}
spec:
  bootstrapServers: [\"{bootstrap}\"]
  topics: [\"{topic}\"]
  consumerGroup: {group}
  initialOffset: earliest
  ordering: {ordering}
  sink:
    uri: \"{sink}\"
{delivery}",
            bootstrap = self.bootstrap,
            topic = self.name,
        ));
        let mut bridge =
            BridgeProcess::start(yaml.path(), &["--kafka-config", "session.timeout.ms=6000"]);
        bridge.wait_ready(READY).await;
        Source {
            name,
            group,
            bootstrap: self.bootstrap.clone(),
            topic: self.name.clone(),
            partitions: self.partitions,
            bridge,
            _yaml: yaml,
        }
    }
}

/// A running bridge with one KafkaSource.
struct Source {
    name: String,
    group: String,
    bootstrap: String,
    topic: String,
    partitions: i32,
    bridge: BridgeProcess,
    _yaml: YamlFile,
}

impl Source {
    /// The source's `kafka_bridge_<counter>_total` (0 before the first scrape creates it).
    async fn counter(&self, counter: &str) -> f64 {
        let text = self.bridge.metrics().await;
        metric_value(
            &text,
            &format!("kafka_bridge_{counter}_total"),
            &[("kind", "KafkaSource"), ("name", &self.name)],
        )
        .unwrap_or(0.0)
    }

    /// Waits until the counter reaches `at_least`; returns its value then.
    async fn wait_counter(&self, counter: &str, at_least: f64) -> f64 {
        let deadline = Instant::now() + ARRIVE;
        loop {
            let value = self.counter(counter).await;
            if value >= at_least {
                return value;
            }
            if Instant::now() >= deadline {
                self.bridge.print_log();
                panic!("{counter} stayed at {value}, below {at_least}, for {ARRIVE:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn committed(&self) -> Vec<Option<i64>> {
        committed_offsets(&self.bootstrap, &self.group, &self.topic, self.partitions).await
    }

    /// Waits until the group's committed offsets equal `want` (librdkafka commits every second).
    async fn wait_committed(&self, want: &[Option<i64>]) {
        let deadline = Instant::now() + ARRIVE;
        loop {
            let got = self.committed().await;
            if got == want {
                return;
            }
            if Instant::now() >= deadline {
                self.bridge.print_log();
                panic!("committed offsets {got:?}, expected {want:?} within {ARRIVE:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn gaps(requests: &[Request]) -> Vec<Duration> {
    requests
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Asserts each gap lies in `[expected, expected + SLACK)`.
fn assert_gaps(got: &[Duration], expected: &[Duration]) {
    eprintln!("gaps {got:?}, expected at least {expected:?}");
    assert_eq!(got.len(), expected.len(), "gaps {got:?}");
    for (i, (got, want)) in got.iter().zip(expected).enumerate() {
        assert!(
            *got >= *want && *got < *want + SLACK,
            "gap {i}: {got:?} not in [{want:?}, {:?}); all gaps {got:?}",
            *want + SLACK
        );
    }
}

fn dead_letter_sink(url: &str) -> String {
    format!("deadLetterSink: {{uri: \"{url}\"}}")
}

/// `ce-id` of the event for a plain (non-CloudEvent) record.
fn event_id(partition: i32, offset: i64) -> String {
    format!("partition:{partition}/offset:{offset}")
}

fn ids(requests: &[Request]) -> Vec<&str> {
    requests
        .iter()
        .map(|r| r.header("ce-id").unwrap_or("<no ce-id>"))
        .collect()
}

#[tokio::test]
async fn retries_exhausted_then_dead_letter_carries_the_event_and_error_extensions() {
    let error_body = "sink overloaded: queue full (shard 7)";
    let sink = Sink::with_plan(
        Plan::status(503)
            .body(error_body)
            .header("kne-foo", "bar baz"),
    )
    .await;
    let dls = Sink::start().await;
    let sink_url = sink.url_for("/events");
    let topic = topic("delivery-dls", 1).await;
    let source = topic
        .start_source(
            "ordered",
            &sink_url,
            &[
                "retry: 3",
                "backoffPolicy: linear",
                "backoffDelay: PT0.01S",
                &dead_letter_sink(&dls.url_for("/dls")),
            ],
        )
        .await;
    topic.produce(&[Record::new("the payload").key("k1")]).await;

    let letters = dls.wait_for(1, ARRIVE).await;
    let attempts = sink.requests();
    assert_eq!(
        attempts.len(),
        4,
        "retry: 3 means 4 attempts: {:?}",
        ids(&attempts)
    );
    assert!(attempts
        .iter()
        .all(|r| r.status == 503 && r.path == "/events"));
    let first = &attempts[0];
    assert!(
        attempts
            .iter()
            .all(|r| r.headers == first.headers && r.body == first.body),
        "every attempt sends the same event"
    );

    let letter = &letters[0];
    assert_eq!(letter.path, "/dls");
    assert_eq!(letter.status, 202);
    for name in [
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-specversion",
        "ce-subject",
    ] {
        assert!(first.header(name).is_some(), "event lacks {name}");
        assert_eq!(letter.header(name), first.header(name), "{name}");
    }
    assert_eq!(letter.header("ce-id"), Some(event_id(0, 0).as_str()));
    assert_eq!(letter.body_str(), "the payload");
    assert_eq!(letter.header("ce-knativeerrorcode"), Some("503"));
    assert_eq!(
        letter.header("ce-knativeerrordest"),
        Some(sink_url.as_str())
    );
    let data = base64::engine::general_purpose::STANDARD.encode(error_body);
    assert_eq!(letter.header("ce-knativeerrordata"), Some(data.as_str()));
    // `kne-foo: bar baz` becomes extension `foo`, percent-encoded in its header.
    assert_eq!(letter.header("ce-foo"), Some("bar%20baz"));
    assert_eq!(first.header("ce-knativeerrorcode"), None);

    assert_eq!(source.wait_counter("events_dead_lettered", 1.0).await, 1.0);
    assert_eq!(source.counter("delivery_retries").await, 3.0);
    assert_eq!(source.counter("events_delivered").await, 0.0);
    assert_eq!(source.counter("events_failed").await, 0.0);
    source.wait_committed(&[Some(1)]).await;
    // Nothing more: no fifth attempt, no second dead letter.
    assert_eq!(
        sink.try_wait_for(5, QUIET).await.err().map(|r| r.len()),
        Some(4)
    );
    assert_eq!(dls.count(), 1);
}

/// Runs a source with `retry: 3` and a 100 ms `backoffDelay` against a sink that always fails;
/// returns the three gaps between the four attempts.
async fn backoff_gaps(policy: &str) -> Vec<Duration> {
    let sink = Sink::with_plan(Plan::status(503)).await;
    let topic = topic("delivery-backoff", 1).await;
    let policy = format!("backoffPolicy: {policy}");
    let source = topic
        .start_source(
            "ordered",
            &sink.url(),
            &["retry: 3", &policy, "backoffDelay: PT0.1S"],
        )
        .await;
    topic.produce(&[Record::new("x")]).await;
    let attempts = sink.wait_for(4, ARRIVE).await;
    // No dead-letter sink: dropped after the last attempt, and nothing after it.
    assert_eq!(source.wait_counter("events_failed", 1.0).await, 1.0);
    assert_eq!(source.counter("delivery_retries").await, 3.0);
    assert_eq!(sink.count(), 4);
    gaps(&attempts[..4])
}

#[tokio::test]
async fn linear_backoff_waits_delay_times_n() {
    let got = backoff_gaps("linear").await;
    assert_gaps(&got, &[ms(100), ms(200), ms(300)]);
}

#[tokio::test]
async fn exponential_backoff_waits_delay_times_two_to_the_n() {
    let got = backoff_gaps("exponential").await;
    assert_gaps(&got, &[ms(200), ms(400), ms(800)]);
}

#[tokio::test]
async fn bad_request_is_not_retried_and_goes_straight_to_the_dead_letter_sink() {
    let sink = Sink::with_plan(Plan::status(400).body("malformed")).await;
    let dls = Sink::start().await;
    let topic = topic("delivery-400", 1).await;
    let source = topic
        .start_source(
            "ordered",
            &sink.url_for("/"),
            &[
                "retry: 3",
                "backoffDelay: PT0.01S",
                &dead_letter_sink(&dls.url()),
            ],
        )
        .await;
    topic.produce(&[Record::new("bad")]).await;

    let letters = dls.wait_for(1, ARRIVE).await;
    assert_eq!(letters[0].header("ce-knativeerrorcode"), Some("400"));
    assert_eq!(letters[0].header("ce-id"), Some(event_id(0, 0).as_str()));
    assert_eq!(letters[0].body_str(), "bad");
    assert_eq!(source.wait_counter("events_dead_lettered", 1.0).await, 1.0);
    assert_eq!(source.counter("delivery_retries").await, 0.0);
    assert_eq!(
        sink.try_wait_for(2, QUIET).await.err().map(|r| r.len()),
        Some(1)
    );
}

#[tokio::test]
async fn retryable_statuses_are_retried_until_the_sink_recovers() {
    let retryable = [404, 408, 409, 429, 500, 502, 503, 504];
    let sink = Sink::with_plan(Plan::sequence(retryable, 202)).await;
    let dls = Sink::start().await;
    let topic = topic("delivery-retryable", 1).await;
    let source = topic
        .start_source(
            "ordered",
            &sink.url(),
            &[
                "retry: 8",
                "backoffPolicy: linear",
                "backoffDelay: PT0.01S",
                &dead_letter_sink(&dls.url()),
            ],
        )
        .await;
    topic.produce(&[Record::new("eventually")]).await;

    let attempts = sink.wait_for(9, ARRIVE).await;
    let statuses: Vec<u16> = attempts.iter().map(|r| r.status).collect();
    let mut expected = retryable.to_vec();
    expected.push(202);
    assert_eq!(statuses, expected);
    assert!(ids(&attempts).iter().all(|id| *id == event_id(0, 0)));
    assert_eq!(source.wait_counter("events_delivered", 1.0).await, 1.0);
    assert_eq!(source.counter("delivery_retries").await, 8.0);
    assert_eq!(source.counter("events_dead_lettered").await, 0.0);
    source.wait_committed(&[Some(1)]).await;
    assert_eq!(dls.count(), 0);
    assert_eq!(sink.count(), 9);
}

#[tokio::test]
async fn retry_after_on_429_is_honoured_over_a_shorter_backoff() {
    let sink = Sink::with_plan(Plan::sequence([429], 202).retry_after("1")).await;
    let topic = topic("delivery-retry-after", 1).await;
    let source = topic
        .start_source(
            "ordered",
            &sink.url(),
            &["retry: 2", "backoffPolicy: linear", "backoffDelay: PT0.01S"],
        )
        .await;
    topic.produce(&[Record::new("later")]).await;

    let attempts = sink.wait_for(2, ARRIVE).await;
    assert_eq!(attempts[1].status, 202);
    assert_gaps(&gaps(&attempts[..2]), &[Duration::from_secs(1)]);
    assert_eq!(source.wait_counter("events_delivered", 1.0).await, 1.0);
    assert_eq!(source.counter("delivery_retries").await, 1.0);
}

#[tokio::test]
async fn retry_after_is_bounded_by_retry_after_max() {
    // 429 and 503 both carry Retry-After; 5 s is cut to 0.2 s.
    let sink = Sink::with_plan(Plan::sequence([429, 503], 202).retry_after("5")).await;
    let topic = topic("delivery-retry-after-max", 1).await;
    let source = topic
        .start_source(
            "ordered",
            &sink.url(),
            &[
                "retry: 2",
                "backoffPolicy: linear",
                "backoffDelay: PT0.01S",
                "retryAfterMax: PT0.2S",
            ],
        )
        .await;
    topic.produce(&[Record::new("soon")]).await;

    let attempts = sink.wait_for(3, ARRIVE).await;
    assert_eq!(
        attempts.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 503, 202]
    );
    assert_gaps(&gaps(&attempts[..3]), &[ms(200), ms(200)]);
    assert_eq!(source.wait_counter("events_delivered", 1.0).await, 1.0);
}

#[tokio::test]
async fn attempt_timeout_cuts_a_slow_sink_short_then_dead_letters() {
    let slow = Duration::from_secs(2);
    let sink = Sink::with_plan(Plan::status(202).delay(slow)).await;
    let dls = Sink::start().await;
    let topic = topic("delivery-timeout", 1).await;
    let source = topic
        .start_source(
            "ordered",
            &sink.url(),
            &[
                "retry: 1",
                "backoffPolicy: linear",
                "backoffDelay: PT0.05S",
                "timeout: PT0.2S",
                &dead_letter_sink(&dls.url()),
            ],
        )
        .await;
    topic.produce(&[Record::new("patience")]).await;

    let letters = dls.wait_for(1, ARRIVE).await;
    let attempts = sink.requests();
    assert_eq!(attempts.len(), 2, "retry: 1 means 2 attempts");
    // Each attempt gives up 0.2 s after it starts, then waits 0.05 s. The clock starts before the
    // request reaches the sink, so a first attempt that spent longer connecting than the second
    // arrives later relative to its timeout: allow 10 ms for that.
    assert_gaps(&gaps(&attempts), &[ms(240)]);
    // The timeout runs from the send; the sink stamps the arrival, which lags the send by up to
    // ~0.1 s on a loaded machine, so the dead letter follows the stamp by at least half the
    // timeout. What matters is that it came long before the sink's answer would have.
    let to_dead_letter = letters[0].at.duration_since(attempts[1].at);
    assert!(
        to_dead_letter >= ms(100) && to_dead_letter < slow,
        "dead letter {to_dead_letter:?} after the last attempt; the sink answers after {slow:?}"
    );
    // A timeout has no status: reported as 500 with the cause in the error data.
    assert_eq!(letters[0].header("ce-knativeerrorcode"), Some("500"));
    let data = letters[0]
        .header("ce-knativeerrordata")
        .expect("error data");
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("error data is base64");
    let data = String::from_utf8(data).expect("error data is UTF-8");
    assert!(data.starts_with("dispatch error:"), "{data}");
    assert_eq!(source.wait_counter("events_dead_lettered", 1.0).await, 1.0);
    assert_eq!(source.counter("delivery_retries").await, 1.0);
    assert_eq!(sink.count(), 2);
}

/// Knative semantics: no dead-letter sink and a rejecting sink drops the event and moves on.
#[tokio::test]
async fn without_delivery_spec_a_rejected_event_is_dropped_and_its_offset_committed() {
    let sink = Sink::with_plan(Plan::status(400)).await;
    let topic = topic("delivery-drop", 1).await;
    let source = topic.start_source("ordered", &sink.url(), &[]).await;
    topic.produce(&[Record::new("rejected")]).await;

    sink.wait_for(1, ARRIVE).await;
    assert_eq!(source.wait_counter("events_failed", 1.0).await, 1.0);
    source.wait_committed(&[Some(1)]).await;
    assert_eq!(source.counter("delivery_retries").await, 0.0);
    assert_eq!(source.counter("events_delivered").await, 0.0);
    assert_eq!(sink.count(), 1);
}

/// The dead-letter sink failing too: the event is kept and retried in rounds, its offset stays
/// uncommitted (later records wait behind it), and it is delivered once the sink recovers.
#[tokio::test]
async fn event_is_held_while_sink_and_dead_letter_sink_fail_then_delivered_on_recovery() {
    // Offsets 0 and 1 are delivered; offset 2 meets a failing sink.
    let sink = Sink::with_plan(Plan::sequence([202, 202], 503)).await;
    let dls = Sink::with_plan(Plan::status(500)).await;
    let topic = topic("delivery-stall", 1).await;
    let source = topic
        .start_source(
            "ordered",
            &sink.url(),
            &[
                "retry: 1",
                "backoffPolicy: linear",
                "backoffDelay: PT0.05S",
                &dead_letter_sink(&dls.url()),
            ],
        )
        .await;
    let records: Vec<Record> = (0..4).map(|i| Record::new(format!("v{i}"))).collect();
    topic.produce(&records).await;

    source.wait_counter("delivery_stalled", 3.0).await;
    source.wait_committed(&[Some(2)]).await;
    let stalled = source.wait_counter("delivery_stalled", 5.0).await;
    // Still stuck at offset 2: the commit has not moved and offset 3 was never attempted.
    assert_eq!(source.committed().await, vec![Some(2)]);
    let held = sink.requests();
    assert_eq!(ids(&held[..2]), [event_id(0, 0), event_id(0, 1)]);
    assert!(
        held.len() >= 2 + 2 * 5,
        "two attempts per round: {}",
        held.len()
    );
    assert!(
        ids(&held[2..]).iter().all(|id| *id == event_id(0, 2)),
        "{:?}",
        ids(&held)
    );
    let letters = dls.requests();
    assert!(letters.len() >= 2 * 5 && letters.iter().all(|r| r.status == 500));
    assert!(ids(&letters).iter().all(|id| *id == event_id(0, 2)));
    assert_eq!(source.counter("events_failed").await, 0.0);

    sink.set_plan(Plan::status(202));
    source.wait_counter("events_delivered", 4.0).await;
    source.wait_committed(&[Some(4)]).await;
    let delivered: Vec<Request> = sink
        .requests()
        .into_iter()
        .filter(|r| r.status == 202)
        .collect();
    assert_eq!(
        ids(&delivered),
        [
            event_id(0, 0),
            event_id(0, 1),
            event_id(0, 2),
            event_id(0, 3)
        ]
    );
    assert_eq!(
        delivered.iter().map(Request::body_str).collect::<Vec<_>>(),
        ["v0", "v1", "v2", "v3"]
    );
    assert!(source.counter("delivery_stalled").await >= stalled);
    assert_eq!(source.counter("events_dead_lettered").await, 0.0);
    assert_eq!(source.counter("events_failed").await, 0.0);
}

/// A stuck partition holds back only itself: with ordered delivery the other partition of the
/// same source keeps flowing and committing. Recovery here comes from the dead-letter sink.
#[tokio::test]
async fn stuck_partition_waits_while_another_partition_flows() {
    let sink = PartitionSink::start(Duration::ZERO, Duration::ZERO, 1).await;
    sink.fail_partition(0);
    let dls = Sink::with_plan(Plan::status(500)).await;
    let topic = topic("delivery-stuck-partition", 2).await;
    let source = topic
        .start_source(
            "ordered",
            &sink.url(),
            &[
                "retry: 1",
                "backoffPolicy: linear",
                "backoffDelay: PT0.05S",
                &dead_letter_sink(&dls.url()),
            ],
        )
        .await;
    topic
        .produce(&[
            Record::new("p0-0").partition(0),
            Record::new("p0-1").partition(0),
        ])
        .await;
    source.wait_counter("delivery_stalled", 2.0).await;

    let healthy: Vec<Record> = (0..5)
        .map(|i| Record::new(format!("p1-{i}")).partition(1))
        .collect();
    topic.produce(&healthy).await;
    let accepted = sink.wait_accepted(5, ARRIVE).await;
    assert_eq!(
        accepted
            .iter()
            .map(|a| (a.partition, a.offset))
            .collect::<Vec<_>>(),
        (0..5).map(|o| (1, o)).collect::<Vec<_>>()
    );
    source.wait_committed(&[None, Some(5)]).await;
    // Partition 0 is still on its first record, which is still uncommitted.
    let stuck: BTreeSet<(i32, i64)> = sink
        .arrivals()
        .iter()
        .filter(|a| a.status != 202)
        .map(|a| (a.partition, a.offset))
        .collect();
    assert_eq!(stuck, BTreeSet::from([(0, 0)]));
    assert!(dls.requests().iter().all(|r| r.status == 500));
    assert_eq!(source.counter("events_dead_lettered").await, 0.0);

    dls.set_plan(Plan::status(202));
    source.wait_committed(&[Some(2), Some(5)]).await;
    let letters: Vec<Request> = dls
        .requests()
        .into_iter()
        .filter(|r| r.status == 202)
        .collect();
    assert_eq!(ids(&letters), [event_id(0, 0), event_id(0, 1)]);
    assert!(letters
        .iter()
        .all(|r| r.header("ce-knativeerrorcode") == Some("503")));
    assert_eq!(
        letters.iter().map(Request::body_str).collect::<Vec<_>>(),
        ["p0-0", "p0-1"]
    );
    assert_eq!(source.counter("events_dead_lettered").await, 2.0);
    assert_eq!(source.counter("events_delivered").await, 5.0);
    assert!(source.counter("delivery_stalled").await >= 2.0);
}

/// Produces `per_partition` records to each partition, interleaved, valued `p<P>-<O>`.
async fn fill(topic: &Topic, per_partition: i64) {
    let records: Vec<Record> = (0..per_partition)
        .flat_map(|o| {
            (0..topic.partitions).map(move |p| Record::new(format!("p{p}-{o}")).partition(p))
        })
        .collect();
    topic.produce(&records).await;
}

/// Every (partition, offset) arrived exactly once, with the body produced for it.
fn assert_exactly_once(arrivals: &[partition_sink::Arrival], partitions: i32, per_partition: i64) {
    let mut seen = BTreeMap::new();
    for a in arrivals {
        assert_eq!(a.id, event_id(a.partition, a.offset));
        assert_eq!(a.body, format!("p{}-{}", a.partition, a.offset));
        *seen.entry((a.partition, a.offset)).or_insert(0) += 1;
    }
    let expected: BTreeMap<(i32, i64), i32> = (0..partitions)
        .flat_map(|p| (0..per_partition).map(move |o| ((p, o), 1)))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn ordered_delivery_keeps_partition_order_under_a_randomly_slow_sink() {
    let (partitions, per_partition) = (4, 50);
    let sink = PartitionSink::start(ms(0), ms(20), 42).await;
    let topic = topic("delivery-ordered", partitions).await;
    fill(&topic, per_partition).await;
    let source = topic.start_source("ordered", &sink.url(), &[]).await;

    sink.wait_accepted(200, ARRIVE * 2).await;
    source.wait_committed(&[Some(per_partition); 4]).await;
    let arrivals = sink.arrivals();
    assert_exactly_once(&arrivals, partitions, per_partition);
    for p in 0..partitions {
        let offsets: Vec<i64> = arrivals
            .iter()
            .filter(|a| a.partition == p)
            .map(|a| a.offset)
            .collect();
        assert_eq!(
            offsets,
            (0..per_partition).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
    let per_partition_max = sink.max_in_flight_per_partition();
    eprintln!(
        "at most {} in flight over all partitions",
        sink.max_in_flight()
    );
    assert_eq!(
        per_partition_max,
        BTreeMap::from([(0, 1), (1, 1), (2, 1), (3, 1)])
    );
    // Partitions do not wait for each other.
    assert!(sink.max_in_flight() > 1, "{}", sink.max_in_flight());
    assert_eq!(source.counter("events_delivered").await, 200.0);
}

#[tokio::test]
async fn unordered_delivery_runs_events_concurrently_and_delivers_each_once() {
    let (partitions, per_partition) = (4, 125);
    // 50 ms on average: one at a time, 500 events would take 25 s.
    let sink = PartitionSink::start(ms(30), ms(70), 7).await;
    let topic = topic("delivery-unordered", partitions).await;
    fill(&topic, per_partition).await;
    let source = topic.start_source("unordered", &sink.url(), &[]).await;

    let arrivals = sink.wait_accepted(500, ARRIVE * 2).await;
    let span = arrivals[499].at.duration_since(arrivals[0].at);
    eprintln!(
        "500 events in {span:?}, at most {} in flight, per partition {:?}",
        sink.max_in_flight(),
        sink.max_in_flight_per_partition()
    );
    assert!(span < Duration::from_secs(5), "500 events took {span:?}");
    source.wait_committed(&[Some(per_partition); 4]).await;
    assert_exactly_once(&sink.arrivals(), partitions, per_partition);
    assert!(sink.max_in_flight() >= 8, "{}", sink.max_in_flight());
    // Concurrency within a partition too, not just across partitions.
    assert!(
        sink.max_in_flight_per_partition()
            .values()
            .any(|max| *max > 1),
        "{:?}",
        sink.max_in_flight_per_partition()
    );
    assert_eq!(source.counter("events_delivered").await, 500.0);
}

/// A sink that knows Kafka partitions: it reads each event's `knativekafkapartition` and
/// `knativekafkaoffset`, fails the partitions a test marks failing (503), delays answers by a
/// seeded random time per event, and tracks how many requests of each partition are in flight
/// at once. The shared `Sink` answers by arrival count only, which cannot fail one partition
/// while another flows, nor see per-partition concurrency.
mod partition_sink {
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::time::{Duration, Instant};

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::Router;
    use http::{HeaderMap, StatusCode};
    use tokio::sync::watch;
    use tokio::task::JoinHandle;

    #[derive(Clone, Debug)]
    pub struct Arrival {
        pub partition: i32,
        pub offset: i64,
        pub id: String,
        pub body: String,
        pub status: u16,
        pub at: Instant,
    }

    #[derive(Default)]
    struct Inner {
        failing: BTreeSet<i32>,
        arrivals: Vec<Arrival>,
        in_flight: BTreeMap<i32, usize>,
        total_in_flight: usize,
        max_per_partition: BTreeMap<i32, usize>,
        max_total: usize,
    }

    struct Shared {
        inner: Mutex<Inner>,
        min: Duration,
        max: Duration,
        seed: u64,
        /// Arrivals answered 2xx; waiters watch it.
        accepted: watch::Sender<usize>,
    }

    impl Shared {
        fn lock(&self) -> MutexGuard<'_, Inner> {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// The delay for one event: a function of the event, so retries and arrival order do
        /// not change it.
        fn delay(&self, partition: i32, offset: i64) -> Duration {
            let span = (self.max - self.min).as_micros() as u64;
            let mut x = self.seed ^ ((partition as u64) << 40) ^ offset as u64;
            // splitmix64 finaliser
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^= x >> 31;
            self.min + Duration::from_micros(x % (span + 1))
        }
    }

    /// Decrements the in-flight counts when the answer is done, or the request abandoned.
    struct InFlight {
        shared: Arc<Shared>,
        partition: i32,
    }

    impl Drop for InFlight {
        fn drop(&mut self) {
            let mut inner = self.shared.lock();
            if let Some(n) = inner.in_flight.get_mut(&self.partition) {
                *n -= 1;
            }
            inner.total_in_flight -= 1;
        }
    }

    pub struct PartitionSink {
        addr: SocketAddr,
        shared: Arc<Shared>,
        server: JoinHandle<()>,
    }

    impl PartitionSink {
        /// Answers 202 after a delay in `min..=max` drawn per event from `seed`.
        pub async fn start(min: Duration, max: Duration, seed: u64) -> PartitionSink {
            let shared = Arc::new(Shared {
                inner: Mutex::new(Inner::default()),
                min,
                max,
                seed,
                accepted: watch::channel(0).0,
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind partition sink");
            let addr = listener.local_addr().expect("partition sink address");
            let app = Router::new().fallback(handle).with_state(shared.clone());
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    eprintln!("partition sink on {addr} failed: {e}");
                }
            });
            PartitionSink {
                addr,
                shared,
                server,
            }
        }

        pub fn url(&self) -> String {
            format!("http://{}/", self.addr)
        }

        /// Answer 503 to every event of `partition` from now on.
        pub fn fail_partition(&self, partition: i32) {
            self.shared.lock().failing.insert(partition);
        }

        pub fn arrivals(&self) -> Vec<Arrival> {
            self.shared.lock().arrivals.clone()
        }

        /// The most requests of each partition in flight at once.
        pub fn max_in_flight_per_partition(&self) -> BTreeMap<i32, usize> {
            self.shared.lock().max_per_partition.clone()
        }

        /// The most requests in flight at once, over all partitions.
        pub fn max_in_flight(&self) -> usize {
            self.shared.lock().max_total
        }

        /// Waits until `n` arrivals were answered 2xx; returns those, in arrival order. Panics
        /// after `timeout`, saying how many came.
        pub async fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<Arrival> {
            let mut accepted = self.shared.accepted.subscribe();
            let reached = tokio::time::timeout(timeout, accepted.wait_for(|c| *c >= n)).await;
            let all = self.arrivals();
            if !matches!(reached, Ok(Ok(_))) {
                panic!(
                    "partition sink: {n} accepted expected within {timeout:?}, got {} of {} arrivals",
                    all.iter().filter(|a| a.status == 202).count(),
                    all.len()
                );
            }
            all.into_iter().filter(|a| a.status == 202).collect()
        }
    }

    impl Drop for PartitionSink {
        fn drop(&mut self) {
            self.server.abort();
        }
    }

    fn number<T: std::str::FromStr>(headers: &HeaderMap, name: &str) -> Option<T> {
        headers.get(name)?.to_str().ok()?.parse().ok()
    }

    async fn handle(
        State(shared): State<Arc<Shared>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let at = Instant::now();
        let (Some(partition), Some(offset)) = (
            number::<i32>(&headers, "ce-knativekafkapartition"),
            number::<i64>(&headers, "ce-knativekafkaoffset"),
        ) else {
            eprintln!("partition sink: request without partition/offset: {headers:?}");
            return StatusCode::BAD_REQUEST;
        };
        let status = {
            let mut inner = shared.lock();
            let status = if inner.failing.contains(&partition) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::ACCEPTED
            };
            let now = {
                let n = inner.in_flight.entry(partition).or_insert(0);
                *n += 1;
                *n
            };
            let max = inner.max_per_partition.entry(partition).or_insert(0);
            *max = (*max).max(now);
            inner.total_in_flight += 1;
            inner.max_total = inner.max_total.max(inner.total_in_flight);
            inner.arrivals.push(Arrival {
                partition,
                offset,
                id: headers
                    .get("ce-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string(),
                body: String::from_utf8_lossy(&body).into_owned(),
                status: status.as_u16(),
                at,
            });
            if status.is_success() {
                shared.accepted.send_modify(|n| *n += 1);
            }
            status
        };
        let _in_flight = InFlight {
            shared: shared.clone(),
            partition,
        };
        let delay = shared.delay(partition, offset);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        status
    }
}
