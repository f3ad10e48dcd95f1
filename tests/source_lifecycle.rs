//! The KafkaSource lifecycle against a real broker, real HTTP sinks and the real binary:
//! readiness, a crash (kill -9) and restart without loss, the SIGTERM drain and its timeout, a slow
//! partition holding back only itself, bounded memory behind a slow sink, and several consumer
//! instances in one source.
//!
//! At-least-once is checked from both ends: what the sink saw (arrived and answered) and what the
//! group committed. Commits must cover exactly the acknowledged prefix of each partition, so a
//! restart resumes right after it: nothing acknowledged comes again, nothing unacknowledged is lost.

#[path = "source_lifecycle/ack_sink.rs"]
mod ack_sink;
mod common;
#[path = "source_lifecycle/support.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ack_sink::{offsets_of, AckSink, Seen};
use common::{
    broker, committed_offsets, create_topic, metric_value, produce, unique, write_yaml, Plan,
    Record, Sink,
};
use support::{
    assignments_from_log, end_offsets, eventually, memory_kib, produce_bulk, record_id,
    source_yaml, start_bridge, try_get, wait_for_ids, NAMESPACE,
};

/// The source subscribes to a topic that does not exist yet, so it has joined (or is joining) its
/// group but holds no partitions until the test creates the topic: readiness must follow the
/// partitions, not the process or the group.
#[tokio::test]
async fn readyz_turns_ready_once_partitions_are_assigned_and_healthz_answers_from_the_start() {
    let bootstrap = broker().await.bootstrap();
    let topic = unique("life-ready");
    let sink = Sink::start().await;
    let name = unique("ready");
    let yaml = write_yaml(&source_yaml(
        &name,
        &bootstrap,
        &topic,
        &unique("life-ready-group"),
        &sink.url(),
        "",
    ));
    // A short metadata refresh so the consumer sees the topic soon after it is created.
    let mut bridge = start_bridge(
        yaml.path(),
        &["--kafka-config", "topic.metadata.refresh.interval.ms=1000"],
    );
    let resource = format!("KafkaSource {NAMESPACE}/{name}");

    let health_url = format!("{}/healthz", bridge.admin_url());
    let health = eventually(Duration::from_secs(10), "/healthz answers", || {
        try_get(&health_url)
    })
    .await;
    assert_eq!(health, (200, "ok\n".to_string()));
    let ready_url = format!("{}/readyz", bridge.admin_url());
    let not_ready = (503, format!("{resource}: not ready\n"));
    let first = eventually(
        Duration::from_secs(10),
        "/readyz names the source",
        || async {
            try_get(&ready_url)
                .await
                .filter(|(_, body)| body.contains(&resource))
        },
    )
    .await;
    assert_eq!(first, not_ready);
    // It stays so while there is nothing to assign (bounded: 2 s of polling).
    let hold = Instant::now() + Duration::from_secs(2);
    while Instant::now() < hold {
        assert_eq!(bridge.admin_get("/readyz").await, not_ready);
        assert_eq!(
            bridge.admin_get("/healthz").await,
            (200, "ok\n".to_string())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    create_topic(&bootstrap, &topic, 2).await;
    bridge.wait_ready(Duration::from_secs(30)).await;
    assert_eq!(
        bridge.admin_get("/readyz").await,
        (200, format!("{resource}: ready\n"))
    );
    assert_eq!(
        bridge.admin_get("/healthz").await,
        (200, "ok\n".to_string())
    );
    let labels = [("name", name.as_str()), ("namespace", NAMESPACE)];
    let assigned = eventually(Duration::from_secs(5), "assigned gauge", || async {
        metric_value(
            &bridge.metrics().await,
            "kafka_bridge_consumer_assigned_partitions",
            &labels,
        )
        .filter(|v| *v > 0.0)
    })
    .await;
    assert_eq!(assigned, 2.0);
}

#[tokio::test]
async fn an_unreachable_broker_keeps_its_source_not_ready_while_the_process_stays_healthy() {
    let bootstrap = broker().await.bootstrap();
    let topic = unique("life-unreachable");
    create_topic(&bootstrap, &topic, 1).await;
    let sink = Sink::start().await;
    let (good, bad) = (unique("good"), unique("bad"));
    let yaml = format!(
        "{}---\n{}",
        source_yaml(
            &good,
            &bootstrap,
            &topic,
            &unique("life-good"),
            &sink.url(),
            ""
        ),
        source_yaml(
            &bad,
            "127.0.0.1:1",
            &topic,
            &unique("life-bad"),
            &sink.url(),
            ""
        )
    );
    let yaml = write_yaml(&yaml);
    let mut bridge = start_bridge(yaml.path(), &[]);
    let (good, bad) = (
        format!("KafkaSource {NAMESPACE}/{good}"),
        format!("KafkaSource {NAMESPACE}/{bad}"),
    );

    // The reachable source joining its group is the signal that the unreachable one had the same
    // time to do so.
    let ready_url = format!("{}/readyz", bridge.admin_url());
    let (status, body) = eventually(Duration::from_secs(30), "the good source ready", || async {
        try_get(&ready_url)
            .await
            .filter(|(_, body)| body.contains(&format!("{good}: ready\n")))
    })
    .await;
    assert_eq!(status, 503, "{body}");
    let mut lines: Vec<&str> = body.lines().collect();
    lines.sort_unstable();
    let mut want = vec![format!("{bad}: not ready"), format!("{good}: ready")];
    want.sort_unstable();
    assert_eq!(lines, want);
    assert_eq!(
        bridge.admin_get("/healthz").await,
        (200, "ok\n".to_string())
    );
    assert!(bridge.try_exit_status().is_none(), "the bridge exited");

    // And it stays so: the source keeps retrying rather than failing the process.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (status, body) = bridge.admin_get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains(&format!("{bad}: not ready\n")), "{body}");
    assert_eq!(
        bridge.admin_get("/healthz").await,
        (200, "ok\n".to_string())
    );

    // A source that never reached its broker does not hold up shutdown.
    let signalled = Instant::now();
    bridge.sigterm();
    let status = bridge.wait_exit(Duration::from_secs(30)).await;
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(12), "exit took {took:?}");
    eprintln!("unreachable broker: exit {took:?} after SIGTERM");
}

#[tokio::test]
async fn kill_9_mid_stream_then_restart_loses_nothing() {
    const N: usize = 300;
    const PARTITIONS: i32 = 3;
    let bootstrap = broker().await.bootstrap();
    let topic = unique("life-kill");
    let group = unique("life-kill-group");
    create_topic(&bootstrap, &topic, PARTITIONS).await;
    let records: Vec<Record> = (0..N)
        .map(|i| Record::new(format!("v{i}")).partition(i as i32 % PARTITIONS))
        .collect();
    let delivered = produce(&bootstrap, &topic, &records).await;
    let all: BTreeSet<(i32, i64)> = delivered.iter().map(|d| (d.partition, d.offset)).collect();
    assert_eq!(all.len(), N);

    // 20 ms per event, one in flight per partition: the whole topic takes about 2 s.
    let sink = Sink::with_plan(Plan::status(202).delay(Duration::from_millis(20))).await;
    let yaml = write_yaml(&source_yaml(
        &unique("kill"),
        &bootstrap,
        &topic,
        &group,
        &sink.url(),
        "",
    ));
    let mut first = start_bridge(yaml.path(), &[]);
    sink.wait_for(N / 3, Duration::from_secs(60)).await;
    first.kill9().await;
    let at_kill = sink.count();
    assert!(
        at_kill < N,
        "the kill landed after the stream: {at_kill} requests"
    );
    let committed_at_kill = committed_offsets(&bootstrap, &group, &topic, PARTITIONS).await;

    let restarted = Instant::now();
    let mut second = start_bridge(yaml.path(), &[]);
    wait_for_ids(&sink, &all, Duration::from_secs(90)).await;
    second.sigterm();
    let status = second.wait_exit(Duration::from_secs(40)).await;
    assert!(status.success(), "second bridge exit: {status}");

    let requests = sink.requests();
    let ids: Vec<(i32, i64)> = requests.iter().map(record_id).collect();
    let unique_ids: BTreeSet<(i32, i64)> = ids.iter().copied().collect();
    assert_eq!(unique_ids, all, "exactly the produced records arrived");
    let duplicates = ids.len() - N;

    // The restart resumes exactly at the group's commit and goes on in order on each partition
    // (a rebalance inside the second run may go back to a later commit; repeats are dropped).
    for partition in 0..PARTITIONS {
        let mut resumed: Vec<i64> = Vec::new();
        for (p, offset) in requests.iter().filter(|r| r.at > restarted).map(record_id) {
            if p == partition && !resumed.contains(&offset) {
                resumed.push(offset);
            }
        }
        let from = committed_at_kill[partition as usize].unwrap_or(0);
        assert_eq!(
            resumed,
            (from..N as i64 / i64::from(PARTITIONS)).collect::<Vec<_>>(),
            "partition {partition} after the restart (committed at kill: {from})"
        );
    }
    assert_eq!(
        committed_offsets(&bootstrap, &group, &topic, PARTITIONS).await,
        end_offsets(&delivered, PARTITIONS)
    );
    eprintln!(
        "kill -9 after {at_kill} requests; committed then {committed_at_kill:?}; \
         {} requests in all, {duplicates} duplicates",
        ids.len()
    );
}

#[tokio::test]
async fn sigterm_drains_in_flight_events_and_commits_exactly_what_the_sink_acknowledged() {
    const PARTITIONS: i32 = 4;
    const PER_PARTITION: i64 = 6;
    let bootstrap = broker().await.bootstrap();
    let topic = unique("life-drain");
    let group = unique("life-drain-group");
    create_topic(&bootstrap, &topic, PARTITIONS).await;
    let records: Vec<Record> = (0..PARTITIONS * PER_PARTITION as i32)
        .map(|i| Record::new(format!("v{i}")).partition(i % PARTITIONS))
        .collect();
    let delivered = produce(&bootstrap, &topic, &records).await;

    let sink = AckSink::start(Duration::from_secs(1)).await;
    let yaml = write_yaml(&source_yaml(
        &unique("drain"),
        &bootstrap,
        &topic,
        &group,
        &sink.url(),
        "  ordering: ordered\n",
    ));
    let mut first = start_bridge(yaml.path(), &[]);
    // One event in flight on every partition, the rest queued behind them.
    sink.wait_until(Duration::from_secs(60), "an event per partition", |seen| {
        (0..PARTITIONS).all(|p| seen.iter().any(|s| s.partition == p))
    })
    .await;
    let signalled = Instant::now();
    first.sigterm();
    let status = first.wait_exit(Duration::from_secs(40)).await;
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    // Well inside the 30 s drain timeout: the in-flight answers take 1 s.
    assert!(took < Duration::from_secs(10), "exit took {took:?}");

    let seen = sink.seen();
    let exited = Instant::now();
    for s in &seen {
        let answered = s
            .answered
            .unwrap_or_else(|| panic!("in-flight event never answered: {s:?}"));
        assert!(answered < exited);
    }
    let committed = committed_offsets(&bootstrap, &group, &topic, PARTITIONS).await;
    let mut acknowledged = Vec::new();
    for partition in 0..PARTITIONS {
        let offsets = offsets_of(&seen, partition);
        let count = offsets.len() as i64;
        assert_eq!(
            offsets,
            (0..count).collect::<Vec<_>>(),
            "partition {partition}"
        );
        assert!(
            count < PER_PARTITION,
            "partition {partition} fully delivered before SIGTERM"
        );
        acknowledged.push(count);
        assert_eq!(
            committed[partition as usize],
            Some(count),
            "partition {partition}: committed vs acknowledged"
        );
    }

    // A new bridge delivers the rest, starting right after each commit, without gaps.
    sink.set_delay(Duration::ZERO);
    let restarted = Instant::now();
    let mut second = start_bridge(yaml.path(), &[]);
    let total = (PARTITIONS as i64 * PER_PARTITION) as usize;
    let seen = sink
        .wait_until(Duration::from_secs(60), "every record", |seen| {
            seen.iter()
                .map(|s| (s.partition, s.offset))
                .collect::<BTreeSet<_>>()
                .len()
                == total
        })
        .await;
    for partition in 0..PARTITIONS {
        let after: Vec<Seen> = seen
            .iter()
            .filter(|s| s.arrived > restarted)
            .cloned()
            .collect();
        assert_eq!(
            offsets_of(&after, partition),
            (acknowledged[partition as usize]..PER_PARTITION).collect::<Vec<_>>(),
            "partition {partition} after the restart"
        );
    }
    second.sigterm();
    assert!(second.wait_exit(Duration::from_secs(40)).await.success());
    assert_eq!(
        committed_offsets(&bootstrap, &group, &topic, PARTITIONS).await,
        end_offsets(&delivered, PARTITIONS)
    );
    eprintln!("SIGTERM drain: exit after {took:?}, acknowledged per partition {acknowledged:?}");
}

#[tokio::test]
async fn drain_timeout_abandons_a_hung_event_uncommitted_and_a_restart_redelivers_it() {
    let bootstrap = broker().await.bootstrap();
    let topic = unique("life-hung");
    let group = unique("life-hung-group");
    create_topic(&bootstrap, &topic, 1).await;
    let records: Vec<Record> = (0..3).map(|i| Record::new(format!("v{i}"))).collect();
    produce(&bootstrap, &topic, &records).await;

    let sink = AckSink::start(Duration::from_secs(30)).await;
    let yaml = write_yaml(&source_yaml(
        &unique("hung"),
        &bootstrap,
        &topic,
        &group,
        &sink.url(),
        "",
    ));
    let mut first = start_bridge(yaml.path(), &["--drain-timeout", "1s"]);
    sink.wait_until(Duration::from_secs(60), "the first event", |seen| {
        !seen.is_empty()
    })
    .await;
    let signalled = Instant::now();
    first.sigterm();
    let status = first.wait_exit(Duration::from_secs(20)).await;
    let took = signalled.elapsed();
    assert!(status.success(), "exit status {status}");
    assert!(
        took >= Duration::from_secs(1),
        "exit before the drain timeout: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "exit took {took:?}");

    let seen = sink.seen();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!((seen[0].partition, seen[0].offset), (0, 0));
    assert_eq!(seen[0].answered, None, "the hung event was answered");
    assert_eq!(
        committed_offsets(&bootstrap, &group, &topic, 1).await,
        vec![None]
    );

    sink.set_delay(Duration::ZERO);
    let restarted = Instant::now();
    let mut second = start_bridge(yaml.path(), &[]);
    let seen = sink
        .wait_until(
            Duration::from_secs(60),
            "all three after the restart",
            |seen| seen.iter().filter(|s| s.arrived > restarted).count() >= 3,
        )
        .await;
    let after: Vec<Seen> = seen.into_iter().filter(|s| s.arrived > restarted).collect();
    assert_eq!(offsets_of(&after, 0), vec![0, 1, 2]);
    second.sigterm();
    assert!(second.wait_exit(Duration::from_secs(40)).await.success());
    assert_eq!(
        committed_offsets(&bootstrap, &group, &topic, 1).await,
        vec![Some(3)]
    );
    eprintln!("drain timeout 1s: exit after {took:?}");
}

/// Ordered delivery with one slow partition whose backlog overflows its queue, so the poll loop
/// pauses it at the broker while the others keep flowing. (tests/source_delivery.rs covers a
/// partition stuck on a failing sink with a short backlog; this one covers the pause path.)
#[tokio::test]
async fn a_slow_partition_holds_back_only_itself() {
    // More records on the slow partition than its queue holds, so it is also paused at the broker.
    const SLOW: i64 = 300;
    const FAST: i64 = 30;
    const SLOW_DELAY: Duration = Duration::from_secs(3);
    let bootstrap = broker().await.bootstrap();
    let topic = unique("life-slow");
    create_topic(&bootstrap, &topic, 3).await;
    let records: Vec<Record> = (0..SLOW)
        .map(|i| Record::new(format!("slow{i}")).partition(0))
        .chain((0..FAST * 2).map(|i| Record::new(format!("fast{i}")).partition(1 + i as i32 % 2)))
        .collect();
    produce(&bootstrap, &topic, &records).await;

    let sink = AckSink::start(Duration::ZERO).await;
    sink.set_partition_delay(0, SLOW_DELAY);
    let yaml = write_yaml(&source_yaml(
        &unique("slow"),
        &bootstrap,
        &topic,
        &unique("life-slow-group"),
        &sink.url(),
        "  ordering: ordered\n",
    ));
    let _bridge = start_bridge(yaml.path(), &[]);
    let seen = sink
        .wait_until(Duration::from_secs(60), "the fast partitions", |seen| {
            seen.iter().filter(|s| s.partition != 0).count() as i64 == FAST * 2
                && seen.iter().any(|s| s.partition == 0)
        })
        .await;
    for partition in [1, 2] {
        assert_eq!(offsets_of(&seen, partition), (0..FAST).collect::<Vec<_>>());
    }
    // The slow partition is still on its first events, in order.
    let slow = offsets_of(&seen, 0);
    assert!(
        !slow.is_empty() && slow.len() <= 2,
        "slow partition: {slow:?}"
    );
    assert_eq!(slow, (0..slow.len() as i64).collect::<Vec<_>>());
    let first_slow = seen
        .iter()
        .find(|s| s.partition == 0)
        .expect("a slow event")
        .arrived;
    let last_fast = seen
        .iter()
        .filter(|s| s.partition != 0)
        .map(|s| s.arrived)
        .max()
        .expect("fast events");
    assert!(
        last_fast < first_slow + SLOW_DELAY,
        "fast partitions finished {:?} after the slow one started",
        last_fast - first_slow
    );
}

/// A producer far faster than the sink: the bridge must hold only its pre-fetch and queues, not
/// the backlog. A bridge that buffered the backlog (e.g. with pausing disabled) grows by more than
/// the backlog's size; this one must grow by well under it.
#[tokio::test]
async fn memory_stays_bounded_behind_a_slow_sink() {
    const RECORDS: usize = 40_000;
    const SIZE: usize = 1024;
    const DATA_KIB: u64 = (RECORDS * SIZE / 1024) as u64;
    const BOUND_KIB: u64 = 80 * 1024;
    let bootstrap = broker().await.bootstrap();
    let topic = unique("life-memory");
    create_topic(&bootstrap, &topic, 4).await;
    let sink = Sink::with_plan(Plan::status(202).delay(Duration::from_millis(50))).await;
    let yaml = write_yaml(&source_yaml(
        &unique("memory"),
        &bootstrap,
        &topic,
        &unique("life-memory-group"),
        &sink.url(),
        "  ordering: ordered\n",
    ));
    let mut bridge = start_bridge(yaml.path(), &[]);
    bridge.wait_ready(Duration::from_secs(30)).await;
    let (idle_rss, _) = memory_kib(bridge.pid());

    let started = Instant::now();
    produce_bulk(&bootstrap, &topic, 4, RECORDS, SIZE).await;
    let produced_in = started.elapsed();
    let watch_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < watch_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(bridge.try_exit_status().is_none(), "the bridge exited");
    }
    let (rss, peak) = memory_kib(bridge.pid());
    let delivered = sink.count();
    eprintln!(
        "memory: {RECORDS} x {SIZE} B produced in {produced_in:?}; RSS idle {idle_rss} KiB, \
         after 10 s more {rss} KiB, peak (VmHWM) {peak} KiB; {delivered} delivered"
    );
    // Four ordered partitions at 50 ms each: about 80 events a second, far behind the producer.
    assert!(
        (100..RECORDS / 4).contains(&delivered),
        "{delivered} delivered"
    );
    assert!(peak < BOUND_KIB, "peak RSS {peak} KiB over {BOUND_KIB} KiB");
    // The bridge holds up to 4 MiB of pre-fetch per partition plus a fetch response in flight
    // (16-24 MiB here, more with allocator slack on a loaded machine); buffering the backlog
    // would take all of its 40 MiB and more.
    assert!(
        peak - idle_rss < DATA_KIB * 4 / 5,
        "RSS grew by {} KiB behind a {DATA_KIB} KiB backlog",
        peak - idle_rss
    );
}

#[tokio::test]
async fn two_consumers_in_one_source_split_the_partitions_and_deliver_each_record_once() {
    const PARTITIONS: i32 = 4;
    let bootstrap = broker().await.bootstrap();
    let topic = unique("life-consumers");
    let group = unique("life-consumers-group");
    create_topic(&bootstrap, &topic, PARTITIONS).await;
    let sink = Sink::start().await;
    let name = unique("two");
    let yaml = write_yaml(&source_yaml(
        &name,
        &bootstrap,
        &topic,
        &group,
        &sink.url(),
        "  consumers: 2\n",
    ));
    let mut bridge = start_bridge(yaml.path(), &[]);
    bridge.wait_ready(Duration::from_secs(30)).await;

    let resource = format!("KafkaSource {NAMESPACE}/{name}");
    let members = eventually(
        Duration::from_secs(60),
        "two instances sharing the partitions",
        || async {
            let held = assignments_from_log(&bridge.log(), &resource);
            let union: BTreeSet<i32> = held.values().flatten().copied().collect();
            let sum: usize = held.values().map(BTreeSet::len).sum();
            (held.len() == 2
                && held.values().all(|m| !m.is_empty())
                && sum == PARTITIONS as usize
                && union == (0..PARTITIONS).collect())
            .then_some(held)
        },
    )
    .await;
    let labels = [("name", name.as_str()), ("namespace", NAMESPACE)];
    eventually(Duration::from_secs(10), "assigned gauge at 4", || async {
        let text = bridge.metrics().await;
        (metric_value(&text, "kafka_bridge_consumer_assigned_partitions", &labels)
            == Some(f64::from(PARTITIONS)))
        .then_some(())
    })
    .await;

    let records: Vec<Record> = (0..40)
        .map(|i| Record::new(format!("v{i}")).partition(i % PARTITIONS))
        .collect();
    let delivered = produce(&bootstrap, &topic, &records).await;
    let wanted: BTreeSet<(i32, i64)> = delivered.iter().map(|d| (d.partition, d.offset)).collect();
    sink.wait_for(records.len(), Duration::from_secs(30)).await;
    // Nothing arrives twice (the group was stable before the records were produced).
    let extra = sink
        .try_wait_for(records.len() + 1, Duration::from_secs(2))
        .await;
    let requests = extra.expect_err("a record delivered twice");
    let ids: BTreeSet<(i32, i64)> = requests.iter().map(record_id).collect();
    assert_eq!(ids, wanted);
    let text = bridge.metrics().await;
    assert_eq!(
        metric_value(&text, "kafka_bridge_events_delivered_total", &labels),
        Some(records.len() as f64)
    );
    eprintln!("consumers: 2 -> members hold {members:?}");
}
