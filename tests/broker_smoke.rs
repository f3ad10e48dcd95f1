//! Proves the test infrastructure itself: the tansu broker, the Kafka helpers and the HTTP sink.
//! If these fail, every other integration test's failure is suspect.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    broker, committed_offsets, consume_all, consume_up_to, create_topic, metric_value, produce,
    unique, Plan, Record, Sink,
};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};

#[tokio::test]
async fn records_round_trip_with_keys_headers_partitions_and_offsets() {
    let bootstrap = broker().await.bootstrap();
    let topic = unique("smoke-roundtrip");
    create_topic(&bootstrap, &topic, 3).await;

    let records: Vec<Record> = (0..9)
        .map(|i| {
            Record::new(format!("value-{i}"))
                .key(format!("key-{i}"))
                .header("ce_id", format!("id-{i}"))
                .header("bin", vec![0u8, 255, i as u8])
                .null_header("empty")
                .partition(i % 3)
                .timestamp(1_700_000_000_000 + i64::from(i))
        })
        .collect();
    let delivered = produce(&bootstrap, &topic, &records).await;

    // One record per batch: offsets on each partition are 0, 1, 2 in production order.
    for (i, d) in delivered.iter().enumerate() {
        assert_eq!(d.partition, i as i32 % 3, "record {i} partition");
        assert_eq!(d.offset, i as i64 / 3, "record {i} offset");
    }

    let consumed = consume_all(&bootstrap, &topic, 9, Duration::from_secs(30)).await;
    let mut by_key: BTreeMap<String, _> = consumed
        .iter()
        .map(|c| (c.key_str().expect("key").to_string(), c))
        .collect();
    assert_eq!(by_key.len(), 9, "nine distinct keys: {consumed:#?}");
    for i in 0..9 {
        let c = by_key.remove(&format!("key-{i}")).expect("record by key");
        assert_eq!(c.value_str(), Some(format!("value-{i}").as_str()));
        assert_eq!(c.partition, i % 3);
        assert_eq!(c.offset, i64::from(i / 3));
        assert_eq!(c.header_str("ce_id"), Some(format!("id-{i}").as_str()));
        assert_eq!(c.header("bin"), Some(&[0u8, 255, i as u8][..]));
        assert_eq!(
            c.headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.is_some()))
                .collect::<Vec<_>>(),
            vec![("ce_id", true), ("bin", true), ("empty", false)],
            "header order and null header"
        );
        assert_eq!(c.timestamp, Some(1_700_000_000_000 + i64::from(i)));
    }

    // Within a partition, records come back in offset order.
    for partition in 0..3 {
        let offsets: Vec<i64> = consumed
            .iter()
            .filter(|c| c.partition == partition)
            .map(|c| c.offset)
            .collect();
        assert_eq!(offsets, vec![0, 1, 2], "partition {partition} order");
    }

    // Nothing beyond what was produced.
    let again = consume_up_to(&bootstrap, &topic, 10, Duration::from_secs(8)).await;
    assert_eq!(again.len(), 9, "no extra records: {again:#?}");
}

#[tokio::test]
async fn keyed_records_without_partition_and_null_values() {
    let bootstrap = broker().await.bootstrap();
    let topic = unique("smoke-keyed");
    create_topic(&bootstrap, &topic, 3).await;

    let records = vec![
        Record::new("a").key("same"),
        Record::null_value().key("same"),
        Record::new("c").key("same"),
    ];
    let delivered = produce(&bootstrap, &topic, &records).await;
    // The partitioner sends one key to one partition.
    assert!(delivered
        .iter()
        .all(|d| d.partition == delivered[0].partition));
    assert_eq!(
        delivered.iter().map(|d| d.offset).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );

    let consumed = consume_all(&bootstrap, &topic, 3, Duration::from_secs(30)).await;
    let values: Vec<Option<&str>> = consumed.iter().map(|c| c.value_str()).collect();
    assert_eq!(values, vec![Some("a"), None, Some("c")]);
}

/// A group that commits mid-stream and restarts resumes after its commit (the shape of every
/// at-least-once test), and `committed_offsets` reads what it committed.
#[tokio::test]
async fn group_commit_and_resume() {
    let bootstrap = broker().await.bootstrap();
    let topic = unique("smoke-commit");
    let group = unique("smoke-group");
    create_topic(&bootstrap, &topic, 1).await;
    let records: Vec<Record> = (0..6).map(|i| Record::new(format!("v{i}"))).collect();
    produce(&bootstrap, &topic, &records).await;

    assert_eq!(
        committed_offsets(&bootstrap, &group, &topic, 1).await,
        vec![None]
    );

    let first = read_and_commit(&bootstrap, &topic, &group, 4).await;
    assert_eq!(first, vec!["v0", "v1", "v2", "v3"]);
    assert_eq!(
        committed_offsets(&bootstrap, &group, &topic, 1).await,
        vec![Some(4)]
    );

    let second = read_and_commit(&bootstrap, &topic, &group, 2).await;
    assert_eq!(second, vec!["v4", "v5"]);
    assert_eq!(
        committed_offsets(&bootstrap, &group, &topic, 1).await,
        vec![Some(6)]
    );
}

/// Reads `n` values through `group` and commits after the last one.
async fn read_and_commit(bootstrap: &str, topic: &str, group: &str, n: usize) -> Vec<String> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", common::kafka::SESSION_TIMEOUT_MS)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut values = Vec::new();
    while values.len() < n {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .unwrap_or_else(|_| panic!("no record within 30s after {values:?}"))
            .expect("record");
        values.push(String::from_utf8(message.payload().expect("value").to_vec()).expect("utf-8"));
        if values.len() == n {
            consumer
                .commit_message(&message, CommitMode::Sync)
                .expect("commit");
        }
    }
    tokio::task::spawn_blocking(move || drop(consumer))
        .await
        .expect("close consumer");
    values
}

#[tokio::test]
async fn sink_records_requests_and_follows_status_plan() {
    let sink = Sink::with_plan(
        Plan::sequence([500, 429], 202)
            .retry_after("3")
            .header("kne-test", "yes")
            .body("hello"),
    )
    .await;
    let client = common::net::http_client();
    let mut statuses = Vec::new();
    for i in 0..4 {
        let response = client
            .post(sink.url_for(&format!("/ns/name?i={i}")))
            .header("ce-id", format!("id-{i}"))
            .body(format!("body-{i}"))
            .send()
            .await
            .expect("post to sink");
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(response.headers()["kne-test"], "yes");
        statuses.push((response.status().as_u16(), retry_after));
        assert_eq!(response.text().await.unwrap(), "hello");
    }
    assert_eq!(
        statuses,
        vec![
            (500, Some("3".to_string())),
            (429, Some("3".to_string())),
            (202, None),
            (202, None)
        ]
    );

    let requests = sink.wait_for(4, Duration::from_secs(5)).await;
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(r.index, i);
        assert_eq!(r.method, http::Method::POST);
        assert_eq!(r.path, format!("/ns/name?i={i}"));
        assert_eq!(r.header("ce-id"), Some(format!("id-{i}").as_str()));
        assert_eq!(r.body_str(), format!("body-{i}"));
    }
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 429, 202, 202]
    );
    assert!(requests.windows(2).all(|w| w[0].at <= w[1].at));

    // A new plan takes effect at once and its sequence starts over.
    sink.set_plan(Plan::sequence([503], 200));
    let codes = [
        client
            .get(sink.url())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        client
            .get(sink.url())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
    ];
    assert_eq!(codes, [503, 200]);
    assert_eq!(sink.count(), 6);

    // Waiting for more than arrives is bounded and reports what came.
    let short = sink.try_wait_for(7, Duration::from_millis(200)).await;
    assert_eq!(short.expect_err("only six requests").len(), 6);
}

#[tokio::test]
async fn sink_delays_answers_and_requests_arrive_concurrently() {
    let sink = Sink::with_plan(Plan::status(200).delay(Duration::from_millis(300))).await;
    let client = common::net::http_client();
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(
        client.post(sink.url()).body("a").send(),
        client.post(sink.url()).body("b").send()
    );
    assert_eq!(a.unwrap().status(), 200);
    assert_eq!(b.unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let requests = sink.wait_for(2, Duration::from_secs(1)).await;
    // The second arrived while the first was still held: answers are delayed concurrently.
    let gap = requests[1].at.duration_since(requests[0].at);
    assert!(gap < Duration::from_millis(300), "{gap:?}");

    // Seeded random delays stay within their range.
    sink.set_plan(Plan::status(200).random_delay(
        Duration::from_millis(20),
        Duration::from_millis(60),
        7,
    ));
    for _ in 0..5 {
        let t = std::time::Instant::now();
        client.get(sink.url()).send().await.unwrap();
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(20), "{took:?}");
        assert!(took < Duration::from_millis(300), "{took:?}");
    }
    assert_eq!(sink.wait_for(7, Duration::from_secs(1)).await.len(), 7);
}

#[test]
fn metric_value_reads_prometheus_samples() {
    let text = "# HELP x help\n# TYPE x counter\n\
                kafka_bridge_events_total{source=\"a,b\",code=\"202\"} 3\n\
                kafka_bridge_events_total{source=\"quote\\\"d\",code=\"500\"} 1.5\n\
                up 1\n";
    assert_eq!(
        metric_value(text, "kafka_bridge_events_total", &[("code", "202")]),
        Some(3.0)
    );
    assert_eq!(
        metric_value(text, "kafka_bridge_events_total", &[("source", "quote\"d")]),
        Some(1.5)
    );
    assert_eq!(
        metric_value(text, "kafka_bridge_events_total", &[("source", "a,b")]),
        Some(3.0)
    );
    assert_eq!(metric_value(text, "up", &[]), Some(1.0));
    assert_eq!(
        metric_value(text, "kafka_bridge_events_total", &[("code", "404")]),
        None
    );
    assert_eq!(metric_value(text, "missing", &[]), None);
}
