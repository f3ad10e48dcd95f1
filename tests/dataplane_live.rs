//! `kafka-bridge dataplane` applying contract changes live, against the real broker, while events
//! flow the whole time: records produced to the sources' topics and events POSTed to the
//! channel's ingress. One run walks through four revisions of the contract (written as the
//! controller's Secret volume would be: a new file renamed into place):
//!
//! 1. source A, channel C with subscriber S1;
//! 2. source B and subscriber S2 added;
//! 3. S1 changed (its delivery);
//! 4. B and S2 removed;
//!
//! then a malformed contract, which must leave revision 4 running. Checked with exact counts:
//! A gets every record once and S1 every event once (neither loses or repeats anything while
//! the others come, change and go); B and S2 get everything stored while they ran and nothing
//! after they were removed; `/status` follows revisions and generations; A, C's route and S1
//! start only when they must (from the bridge's log).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use common::{broker, create_topic, metric_value, produce, unique, BridgeProcess, ConfigFile};
use common::{Plan as SinkPlan, Record, Request, Sink};
use kafka_bridge::delivery::policy::{BackoffPolicy, DeliveryPolicy, Target};
use kafka_bridge::engine::contract::Contract;
use kafka_bridge::engine::plan::{
    ChannelPlan, InitialOffset, KafkaConnection, KeyType, Ordering, Plan, ResourceId, SourcePlan,
    SubscriberPlan,
};
use kafka_bridge::engine::report::Report;
use tokio::task::JoinHandle;

/// Group joins on tansu take ~session.timeout / 2; offsets initialisation comes first.
const SETTLE: Duration = Duration::from_secs(40);
const ARRIVE: Duration = Duration::from_secs(30);
/// How long to watch for deliveries that must not come.
const QUIET: Duration = Duration::from_millis(1500);

/// The resources of the test, and where they deliver.
struct World {
    bootstrap: String,
    namespace: String,
    topic_a: String,
    topic_b: String,
    group_a: String,
    group_b: String,
    uid1: String,
    uid2: String,
    sink_a: Sink,
    sink_b: Sink,
    sink_s1: Sink,
    sink_s2: Sink,
}

/// Sources (name, generation), the channel's generation, its subscribers (uid, generation).
type StatusShape = (Vec<(String, i64)>, i64, Vec<(String, i64)>);

/// One revision of the contract.
struct Revision {
    number: u64,
    with_b: bool,
    with_s2: bool,
    /// S1's delivery retries, and the generation that goes with them.
    s1: (u32, i64),
    channel_generation: i64,
}

fn target(url: String) -> Target {
    Target::new(url.parse().expect("sink URL"))
}

fn delivery(retry: u32) -> DeliveryPolicy {
    DeliveryPolicy {
        retry,
        backoff_policy: BackoffPolicy::Linear,
        backoff_delay: Duration::from_millis(100),
        timeout: Some(Duration::from_secs(5)),
        retry_after_max: None,
        dead_letter: None,
    }
}

impl World {
    fn source(&self, name: &str, topic: &str, group: &str, sink: &Sink) -> Arc<SourcePlan> {
        Arc::new(SourcePlan {
            id: ResourceId::new(&self.namespace, name),
            generation: 1,
            kafka: KafkaConnection::plaintext(&self.bootstrap),
            topics: vec![topic.to_string()],
            consumer_group: group.to_string(),
            // Every record in the topic, whenever the source joins.
            initial_offset: InitialOffset::Earliest,
            consumers: 1,
            ordering: Ordering::Ordered,
            sink: target(sink.url()),
            delivery: delivery(3),
            ce_overrides: BTreeMap::new(),
            key_type: KeyType::String,
        })
    }

    fn subscriber(
        &self,
        uid: &str,
        sink: &Sink,
        (retry, generation): (u32, i64),
    ) -> Arc<SubscriberPlan> {
        Arc::new(SubscriberPlan {
            uid: uid.to_string(),
            generation,
            subscriber: Some(target(sink.url())),
            reply: None,
            delivery: delivery(retry),
            consumer_group: format!("kafka.{}.c.{uid}", self.namespace),
            ordering: Ordering::Ordered,
        })
    }

    fn contract(&self, revision: &Revision) -> Vec<u8> {
        let mut sources = vec![self.source("a", &self.topic_a, &self.group_a, &self.sink_a)];
        if revision.with_b {
            sources.push(self.source("b", &self.topic_b, &self.group_b, &self.sink_b));
        }
        let mut subscribers = vec![self.subscriber(&self.uid1, &self.sink_s1, revision.s1)];
        if revision.with_s2 {
            subscribers.push(self.subscriber(&self.uid2, &self.sink_s2, (1, 1)));
        }
        let channel = ChannelPlan {
            id: ResourceId::new(&self.namespace, "c"),
            generation: revision.channel_generation,
            kafka: KafkaConnection::plaintext(&self.bootstrap),
            topic: format!("knative-messaging-kafka.{}.c", self.namespace),
            num_partitions: 2,
            replication_factor: 1,
            retention: Duration::from_secs(3600),
            subscribers,
        };
        let plan = Plan {
            sources,
            channels: vec![Arc::new(channel)],
        };
        Contract::new(revision.number, plan).to_json()
    }

    /// What `/status` must say once `revision` runs: sources, and the channel's subscribers,
    /// each with its generation.
    fn expected_status(&self, revision: &Revision) -> StatusShape {
        let mut sources = vec![("a".to_string(), 1)];
        if revision.with_b {
            sources.push(("b".to_string(), 1));
        }
        let mut subs = vec![(self.uid1.clone(), revision.s1.1)];
        if revision.with_s2 {
            subs.push((self.uid2.clone(), 1));
        }
        subs.sort();
        (sources, revision.channel_generation, subs)
    }
}

fn slow(seed: u64) -> SinkPlan {
    SinkPlan::status(202).random_delay(Duration::from_millis(2), Duration::from_millis(25), seed)
}

/// Waits until `/status` reports `revision` with the expected parts, every one ready.
async fn wait_status(bridge: &BridgeProcess, world: &World, revision: &Revision) -> Report {
    let want = world.expected_status(revision);
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let report = bridge.status().await;
        let sources: Vec<(String, i64)> = report
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.generation))
            .collect();
        let channel = report.channels.first();
        let mut subs: Vec<(String, i64)> = channel
            .map(|c| {
                c.subscribers
                    .iter()
                    .map(|s| (s.uid.clone(), s.generation))
                    .collect()
            })
            .unwrap_or_default();
        subs.sort();
        let shape = (sources, channel.map_or(-1, |c| c.generation), subs);
        let ready = report.sources.iter().all(|s| s.ready)
            && report.channels.len() == 1
            && report
                .channels
                .iter()
                .all(|c| c.ready && c.subscribers.iter().all(|s| s.ready));
        if report.revision == revision.number && shape == want && ready {
            return report;
        }
        if tokio::time::Instant::now() >= deadline {
            bridge.print_log();
            panic!(
                "revision {} not running within {SETTLE:?}: want {want:?}, all ready; last {report:?}",
                revision.number
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stream of work running until stopped; `done` counts what was acknowledged, in order.
struct Flow {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Flow {
    fn done(&self) -> usize {
        self.done.load(AtomicOrdering::SeqCst)
    }

    /// Stops the flow and returns how much it did.
    async fn finish(self) -> usize {
        self.stop.store(true, AtomicOrdering::SeqCst);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("flow stops within 30 s")
            .expect("flow task");
        self.done.load(AtomicOrdering::SeqCst)
    }
}

/// Produces records `a-N` to `topic_a` and `b-N` to `topic_b`, two of each every 50 ms.
fn produce_flow(bootstrap: String, topic_a: String, topic_b: String) -> Flow {
    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (stopped, produced) = (Arc::clone(&stop), Arc::clone(&done));
    let task = tokio::spawn(async move {
        // Bounded: at most 10 minutes of batches, far beyond the test's own waits.
        for _ in 0..12_000 {
            if stopped.load(AtomicOrdering::SeqCst) {
                return;
            }
            let n = produced.load(AtomicOrdering::SeqCst);
            for (prefix, topic) in [("a", &topic_a), ("b", &topic_b)] {
                let records: Vec<Record> = (n..n + 2)
                    .map(|i| Record::new(format!("{prefix}-{i}")))
                    .collect();
                produce(&bootstrap, topic, &records).await;
            }
            produced.store(n + 2, AtomicOrdering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    Flow { stop, done, task }
}

/// POSTs events `e-N` to the channel's ingress one after another, each answered 202.
fn post_flow(url: String) -> Flow {
    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let (stopped, accepted) = (Arc::clone(&stop), Arc::clone(&done));
    let task = tokio::spawn(async move {
        let client = reqwest::Client::new();
        for n in 0..30_000 {
            if stopped.load(AtomicOrdering::SeqCst) {
                return;
            }
            let id = format!("e-{n}");
            let response = client
                .post(&url)
                .timeout(Duration::from_secs(15))
                .header("ce-specversion", "1.0")
                .header("ce-id", &id)
                .header("ce-source", "/itest/dataplane")
                .header("ce-type", "dev.itest.event")
                .header("content-type", "text/plain")
                .body(format!("body of {id}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("POST {id}: {e}"));
            let status = response.status().as_u16();
            assert_eq!(status, 202, "POST {id}: the channel's route must stay up");
            accepted.store(n + 1, AtomicOrdering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    Flow { stop, done, task }
}

/// How many times each of `want` arrived, plus anything unexpected.
fn tally(seen: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in seen {
        *counts.entry(item).or_insert(0) += 1;
    }
    counts
}

/// What a source delivers: the record value.
fn record_value(request: &Request) -> String {
    request.body_str().to_string()
}

/// What a subscriber delivers: the event id.
fn event_id(request: &Request) -> String {
    request.header("ce-id").unwrap_or("<none>").to_string()
}

fn delivered(sink: &Sink, key: fn(&Request) -> String) -> BTreeMap<String, usize> {
    tally(sink.requests().iter().map(key))
}

/// Waits until `sink` has received each `prefix-N` for N in `range`.
async fn wait_covers(
    what: &str,
    sink: &Sink,
    key: fn(&Request) -> String,
    prefix: &str,
    range: std::ops::Range<usize>,
) {
    let deadline = tokio::time::Instant::now() + ARRIVE;
    loop {
        let seen = delivered(sink, key);
        let missing: Vec<usize> = range
            .clone()
            .filter(|n| !seen.contains_key(&format!("{prefix}-{n}")))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {prefix}-N missing for N in {missing:?} after {ARRIVE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts `counts` holds exactly `prefix-N` for each N in `range`, once each.
fn assert_exactly_once(
    what: &str,
    counts: &BTreeMap<String, usize>,
    prefix: &str,
    range: std::ops::Range<usize>,
) {
    let want: BTreeMap<String, usize> = range.map(|n| (format!("{prefix}-{n}"), 1)).collect();
    if *counts != want {
        let missing: Vec<&String> = want.keys().filter(|k| !counts.contains_key(*k)).collect();
        let extra: Vec<(&String, &usize)> = counts
            .iter()
            .filter(|(k, n)| want.get(*k) != Some(n))
            .collect();
        panic!(
            "{what}: want {} items once each; missing {missing:?}, duplicated or unexpected {extra:?}",
            want.len()
        );
    }
}

/// Asserts `counts` holds each `prefix-N` for N in `range` (once), and nothing outside `allowed`.
fn assert_window(
    what: &str,
    counts: &BTreeMap<String, usize>,
    prefix: &str,
    must: std::ops::Range<usize>,
    allowed: std::ops::Range<usize>,
) {
    for n in must {
        let key = format!("{prefix}-{n}");
        assert_eq!(
            counts.get(&key),
            Some(&1),
            "{what}: {key} must arrive exactly once"
        );
    }
    for (key, times) in counts {
        let n: usize = key
            .strip_prefix(&format!("{prefix}-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{what}: unexpected {key}"));
        assert!(
            allowed.contains(&n),
            "{what}: {key} arrived outside {allowed:?}"
        );
        assert_eq!(*times, 1, "{what}: {key} arrived {times} times");
    }
}

async fn wait_counts(what: &str, sink: &Sink, n: usize) {
    if sink.try_wait_for(n, ARRIVE).await.is_err() {
        panic!(
            "{what}: expected at least {n} deliveries within {ARRIVE:?}, got {}",
            sink.count()
        );
    }
}

/// Lines of the bridge's log holding every one of `parts`.
fn log_lines(bridge: &BridgeProcess, parts: &[&str]) -> usize {
    bridge
        .log()
        .lines()
        .filter(|line| parts.iter().all(|p| line.contains(p)))
        .count()
}

#[tokio::test]
async fn contract_changes_apply_live_without_losing_or_repeating_events() {
    let bootstrap = broker().await.bootstrap();
    let world = World {
        namespace: unique("dp-ns"),
        topic_a: unique("dp-a"),
        topic_b: unique("dp-b"),
        group_a: unique("dp-group-a"),
        group_b: unique("dp-group-b"),
        uid1: unique("uid1"),
        uid2: unique("uid2"),
        // Slow enough that deliveries are in flight whenever something stops or restarts.
        sink_a: Sink::with_plan(slow(1)).await,
        sink_b: Sink::start().await,
        sink_s1: Sink::with_plan(slow(2)).await,
        sink_s2: Sink::start().await,
        bootstrap: bootstrap.clone(),
    };
    create_topic(&bootstrap, &world.topic_a, 2).await;
    create_topic(&bootstrap, &world.topic_b, 1).await;
    let revisions = [
        Revision {
            number: 1,
            with_b: false,
            with_s2: false,
            s1: (1, 1),
            channel_generation: 1,
        },
        Revision {
            number: 2,
            with_b: true,
            with_s2: true,
            s1: (1, 1),
            channel_generation: 2,
        },
        Revision {
            number: 3,
            with_b: true,
            with_s2: true,
            s1: (3, 2),
            channel_generation: 2,
        },
        Revision {
            number: 4,
            with_b: false,
            with_s2: false,
            s1: (3, 2),
            channel_generation: 3,
        },
    ];

    let contract = ConfigFile::named("contract.json", &world.contract(&revisions[0]));
    let mut bridge = BridgeProcess::dataplane(
        contract.path(),
        &["--kafka-config", "session.timeout.ms=6000"],
    );
    bridge.wait_ready(SETTLE).await;
    wait_status(&bridge, &world, &revisions[0]).await;
    let ingress = format!("{}/{}/c", bridge.ingress_url(), world.namespace);
    let records = produce_flow(
        bootstrap.clone(),
        world.topic_a.clone(),
        world.topic_b.clone(),
    );
    let events = post_flow(ingress);

    // Let events flow under revision 1 for a moment.
    wait_counts("S1 under revision 1", &world.sink_s1, 50).await;

    // 2: B and S2 arrive. S2 must get every event accepted after it reported ready.
    let started = std::time::Instant::now();
    contract.write_bytes(&world.contract(&revisions[1]));
    wait_status(&bridge, &world, &revisions[1]).await;
    eprintln!("revision 2 running and ready after {:?}", started.elapsed());
    let s2_from = events.done() + 1;
    wait_counts("S2 after joining", &world.sink_s2, 50).await;
    wait_counts("B after joining", &world.sink_b, 10).await;

    // 3: S1 changes; everything else carries on.
    let started = std::time::Instant::now();
    contract.write_bytes(&world.contract(&revisions[2]));
    wait_status(&bridge, &world, &revisions[2]).await;
    eprintln!("revision 3 running and ready after {:?}", started.elapsed());
    let s1_now = world.sink_s1.count();
    wait_counts("S1 after its change", &world.sink_s1, s1_now + 50).await;

    // 4: B and S2 go; a removed part owes nothing it had not fetched yet, so first they catch
    // up with what was stored so far. Nothing may reach them after they stopped.
    let (s2_until, b_until) = (events.done(), records.done());
    wait_covers(
        "S2 before removal",
        &world.sink_s2,
        event_id,
        "e",
        s2_from..s2_until,
    )
    .await;
    wait_covers(
        "B before removal",
        &world.sink_b,
        record_value,
        "b",
        0..b_until,
    )
    .await;
    let started = std::time::Instant::now();
    contract.write_bytes(&world.contract(&revisions[3]));
    wait_status(&bridge, &world, &revisions[3]).await;
    eprintln!("revision 4 running after {:?}", started.elapsed());
    let (s2_final, b_final) = (world.sink_s2.count(), world.sink_b.count());
    let (s2_after, b_after) = (events.done() + 1, records.done() + 2);

    // A malformed contract is counted and changes nothing.
    contract.write_bytes(b"{\"revision\": 5, \"sources\": [");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = bridge.metrics().await;
        if metric_value(&metrics, "kafka_bridge_contract_errors_total", &[]) == Some(1.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "contract error not counted: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bridge.status().await.revision, 4);
    assert_eq!(bridge.admin_get("/readyz").await.0, 200);
    let s1_now = world.sink_s1.count();
    wait_counts(
        "S1 after the malformed contract",
        &world.sink_s1,
        s1_now + 20,
    )
    .await;
    assert!(
        bridge
            .log()
            .contains("contract not applied; the previous plan keeps running"),
        "the error is logged"
    );

    let produced = records.finish().await;
    let accepted = events.finish().await;
    wait_counts("A", &world.sink_a, produced).await;
    wait_counts("S1", &world.sink_s1, accepted).await;
    tokio::time::sleep(QUIET).await;

    eprintln!(
        "records produced per topic: {produced}; events accepted: {accepted}; \
         S2 window {s2_from}..{s2_until} (got {s2_final}); B window 0..{b_until} (got {b_final})"
    );
    let (a, s1) = (
        delivered(&world.sink_a, record_value),
        delivered(&world.sink_s1, event_id),
    );
    assert_exactly_once("source A", &a, "a", 0..produced);
    assert_exactly_once("subscriber S1", &s1, "e", 0..accepted);
    // B reads from the earliest offset, S2 from its start; each once, nothing after removal.
    let (b, s2) = (
        delivered(&world.sink_b, record_value),
        delivered(&world.sink_s2, event_id),
    );
    assert_window("source B", &b, "b", 0..b_until, 0..b_after);
    assert_window("subscriber S2", &s2, "e", s2_from..s2_until, 0..s2_after);
    assert_eq!(
        world.sink_b.count(),
        b_final,
        "B received events after its removal"
    );
    assert_eq!(
        world.sink_s2.count(),
        s2_final,
        "S2 received events after its removal"
    );

    // Only what changed was (re)started.
    let ns = &world.namespace;
    assert_eq!(
        log_lines(
            &bridge,
            &["source starting", &format!("KafkaSource {ns}/a ")]
        ),
        1
    );
    assert_eq!(
        log_lines(
            &bridge,
            &["source starting", &format!("KafkaSource {ns}/b ")]
        ),
        1
    );
    assert_eq!(
        log_lines(
            &bridge,
            &["channel serving", &format!("KafkaChannel {ns}/c ")]
        ),
        1
    );
    assert_eq!(
        log_lines(&bridge, &["subscriber offsets ready", &world.uid1]),
        2
    );
    assert_eq!(
        log_lines(&bridge, &["subscriber offsets ready", &world.uid2]),
        1
    );

    bridge.sigterm();
    let status = bridge.wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "exit status {status}");
}
