//! KafkaChannel dispatch end to end: the real binary running a channel from a YAML file against
//! the real broker, events POSTed to its ingress and delivered to real HTTP subscribers. Covers
//! fan-out to every subscriber with attributes and forwarded headers intact, structured mode in
//! and binary mode out, reply forwarding (and when a response is not a reply), dead letters,
//! retries through a subscriber outage with per-partition order kept, and new subscribers
//! starting at the end of the topic.
//!
//! Each test has its own namespace, channel (hence topic) and subscriber uids, so consumer
//! groups never overlap.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{
    broker, consume_all, create_topic, metric_value, produce, unique, write_yaml, BridgeProcess,
    Plan, Record, Request, Sink, YamlFile,
};

/// Startup (topic creation, offset initialisation, group join on tansu at ~session.timeout / 2).
const READY: Duration = Duration::from_secs(40);
const ARRIVE: Duration = Duration::from_secs(30);
/// How long to watch for requests that must not come.
const QUIET: Duration = Duration::from_millis(1500);

/// One subscriber line of `spec.subscribers`, as YAML flow mappings.
struct Sub {
    uid: String,
    subscriber: Option<String>,
    reply: Option<String>,
    /// `delivery` as a YAML flow mapping, e.g. `{retry: 1}`.
    delivery: Option<String>,
}

impl Sub {
    fn to(uri: &str) -> Sub {
        Sub {
            uid: unique("uid"),
            subscriber: Some(uri.to_string()),
            reply: None,
            delivery: None,
        }
    }

    fn reply(mut self, uri: &str) -> Sub {
        self.reply = Some(uri.to_string());
        self
    }

    fn delivery(mut self, delivery: &str) -> Sub {
        self.delivery = Some(delivery.to_string());
        self
    }

    fn yaml(&self) -> String {
        let mut fields = vec![format!("uid: {}", self.uid), "generation: 1".to_string()];
        if let Some(uri) = &self.subscriber {
            fields.push(format!("subscriberUri: '{uri}'"));
        }
        if let Some(uri) = &self.reply {
            fields.push(format!("replyUri: '{uri}'"));
        }
        if let Some(delivery) = &self.delivery {
            fields.push(format!("delivery: {delivery}"));
        }
        format!("    - {{{}}}\n", fields.join(", "))
    }
}

/// A KafkaChannel with its own namespace and name.
struct Channel {
    namespace: String,
    name: String,
    bootstrap: String,
}

impl Channel {
    async fn new() -> Channel {
        Channel {
            namespace: unique("ns"),
            name: unique("ch"),
            bootstrap: broker().await.bootstrap(),
        }
    }

    fn topic(&self) -> String {
        format!("knative-messaging-kafka.{}.{}", self.namespace, self.name)
    }

    fn yaml(&self, partitions: i32, subs: &[&Sub]) -> YamlFile {
        let subscribers: String = subs.iter().map(|s| s.yaml()).collect();
        write_yaml(&format!(
            "apiVersion: v1
kind: ConfigMap
metadata: {{name: kafka-channel-config, namespace: knative-eventing}}
data: {{bootstrap.servers: '{bootstrap}'}}
---
apiVersion: messaging.knative.dev/v1beta1
kind: KafkaChannel
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  numPartitions: {partitions}
  subscribers:
{subscribers}",
            bootstrap = self.bootstrap,
            name = self.name,
            namespace = self.namespace,
        ))
    }

    /// Starts the bridge on this channel and waits for readiness (every subscriber's offsets
    /// initialised and partitions assigned).
    async fn start(&self, partitions: i32, subs: &[&Sub]) -> Running {
        let yaml = self.yaml(partitions, subs);
        let mut bridge =
            BridgeProcess::start(yaml.path(), &["--kafka-config", "session.timeout.ms=6000"]);
        bridge.wait_ready(READY).await;
        Running {
            url: format!("{}/{}/{}", bridge.ingress_url(), self.namespace, self.name),
            bridge,
            _yaml: yaml,
            client: reqwest::Client::new(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

struct Running {
    bridge: BridgeProcess,
    _yaml: YamlFile,
    url: String,
    client: reqwest::Client,
    namespace: String,
    name: String,
}

impl Running {
    /// POSTs to the channel's ingress and asserts the 202.
    async fn post(&self, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) {
        let mut request = self.client.post(&self.url).timeout(Duration::from_secs(15));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .expect("POST to the ingress");
        let status = response.status().as_u16();
        if status != 202 {
            let text = response.text().await.unwrap_or_default();
            self.bridge.print_log();
            panic!("ingress answered {status}: {text}");
        }
    }

    /// POSTs a minimal binary-mode event with `id` and a text body.
    async fn post_event(&self, id: &str, extra: &[(&str, &str)]) {
        let mut headers = vec![
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-source", "/itest/channel"),
            ("ce-type", "dev.itest.event"),
            ("content-type", "text/plain"),
        ];
        headers.extend_from_slice(extra);
        self.post(&headers, format!("body of {id}")).await;
    }

    /// `metric` of subscriber `uid` once it reads `expected`, or its last value after a bounded
    /// wait: the bridge counts a delivery just after the sink has answered it.
    async fn settled_metric(&self, metric: &str, uid: &str, expected: f64) -> f64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.subscriber_metric(metric, uid).await;
            if value == expected || tokio::time::Instant::now() >= deadline {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn subscriber_metric(&self, metric: &str, uid: &str) -> f64 {
        let text = self.bridge.metrics().await;
        metric_value(
            &text,
            metric,
            &[
                ("kind", "KafkaChannel"),
                ("namespace", &self.namespace),
                ("name", &self.name),
                ("subscriber", uid),
            ],
        )
        .unwrap_or(0.0)
    }
}

/// Percent-decodes a `ce-*` header value (CloudEvents HTTP binding 3.1.3.2).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("escape is ASCII");
            out.push(u8::from_str_radix(hex, 16).expect("escape is hex"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("decoded value is UTF-8")
}

fn ids(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.header("ce-id").expect("ce-id").to_string())
        .collect()
}

#[tokio::test]
async fn every_subscriber_receives_every_event_unchanged() {
    let channel = Channel::new().await;
    let (one, two) = (Sink::start().await, Sink::start().await);
    let (sub_one, sub_two) = (Sub::to(&one.url()), Sub::to(&two.url()));
    let running = channel.start(1, &[&sub_one, &sub_two]).await;

    // "café ✓ ü", percent-encoded as the binding requires.
    let ext = "caf%C3%A9%20%E2%9C%93%20%C3%BC";
    for i in 0..10 {
        let id = format!("ev-{i}");
        let request_id = format!("req-{i}");
        running
            .post(
                &[
                    ("ce-specversion", "1.0"),
                    ("ce-id", &id),
                    ("ce-source", "/itest/fanout"),
                    ("ce-type", "dev.itest.fanout"),
                    ("ce-myext", ext),
                    ("content-type", "application/json"),
                    ("knative-foo", &format!("foo-{i}")),
                    ("x-request-id", &request_id),
                ],
                format!("{{\"n\":{i}}}"),
            )
            .await;
    }

    for sink in [&one, &two] {
        let requests = sink.wait_for(10, ARRIVE).await;
        assert_eq!(requests.len(), 10, "one request per event");
        for (i, r) in requests.iter().enumerate() {
            assert_eq!(r.method, http::Method::POST);
            assert_eq!(r.header("ce-id"), Some(format!("ev-{i}").as_str()));
            assert_eq!(r.header("ce-source"), Some("/itest/fanout"));
            assert_eq!(r.header("ce-type"), Some("dev.itest.fanout"));
            assert_eq!(r.header("ce-specversion"), Some("1.0"));
            let myext = r.header("ce-myext").expect("ce-myext");
            assert_eq!(percent_decode(myext), "café ✓ ü");
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(r.body_str(), format!("{{\"n\":{i}}}"));
            assert_eq!(r.header("knative-foo"), Some(format!("foo-{i}").as_str()));
            assert_eq!(r.header("x-request-id"), Some(format!("req-{i}").as_str()));
            assert_eq!(r.header("prefer"), Some("reply"));
            assert_eq!(r.status, 202);
        }
    }
    for sub in [&sub_one, &sub_two] {
        assert_eq!(
            running
                .settled_metric("kafka_bridge_events_delivered_total", &sub.uid, 10.0)
                .await,
            10.0,
            "delivered count of {}",
            sub.uid
        );
    }
}

#[tokio::test]
async fn structured_mode_arrives_in_binary_mode() {
    let channel = Channel::new().await;
    let sink = Sink::start().await;
    let sub = Sub::to(&sink.url());
    let running = channel.start(1, &[&sub]).await;

    let structured = [(
        "content-type",
        "application/cloudevents+json; charset=utf-8",
    )];
    running
        .post(
            &structured,
            r#"{"specversion":"1.0","id":"s-json","source":"/itest/structured","type":"dev.itest.s",
               "subject":"sub-1","time":"2024-05-06T07:08:09Z","myext":"v 1",
               "datacontenttype":"application/json","data":{"a":[1,2],"b":"ü"}}"#,
        )
        .await;
    running
        .post(
            &structured,
            r#"{"specversion":"1.0","id":"s-base64","source":"/itest/structured","type":"dev.itest.s",
               "datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}"#,
        )
        .await;
    running
        .post(
            &structured,
            r#"{"specversion":"1.0","id":"s-text","source":"/itest/structured","type":"dev.itest.s",
               "datacontenttype":"text/plain","data":"plain text"}"#,
        )
        .await;

    let requests = sink.wait_for(3, ARRIVE).await;
    assert_eq!(ids(&requests), ["s-json", "s-base64", "s-text"]);
    let json = &requests[0];
    assert_eq!(json.header("ce-specversion"), Some("1.0"));
    assert_eq!(json.header("ce-source"), Some("/itest/structured"));
    assert_eq!(json.header("ce-type"), Some("dev.itest.s"));
    assert_eq!(json.header("ce-subject"), Some("sub-1"));
    assert_eq!(json.header("ce-time"), Some("2024-05-06T07:08:09Z"));
    assert_eq!(
        json.header("ce-myext").map(percent_decode).as_deref(),
        Some("v 1")
    );
    assert_eq!(json.header("content-type"), Some("application/json"));
    let data: serde_json::Value = serde_json::from_slice(&json.body).expect("JSON body");
    assert_eq!(data, serde_json::json!({"a": [1, 2], "b": "ü"}));

    let binary = &requests[1];
    assert_eq!(
        binary.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(&binary.body[..], &[0u8, 1, 2, 0xff]);

    let text = &requests[2];
    assert_eq!(text.header("content-type"), Some("text/plain"));
    assert_eq!(text.body_str(), "plain text");
    for r in &requests {
        assert!(
            !r.headers.contains_key("ce-data") && !r.headers.contains_key("ce-data_base64"),
            "data is the body, not an attribute"
        );
    }
}

/// A subscriber's answer carrying a CloudEvent in binary mode.
fn reply_plan(status: u16) -> Plan {
    Plan::status(status)
        .body("reply body")
        .header("ce-specversion", "1.0")
        .header("ce-id", "reply-1")
        .header("ce-source", "/itest/replier")
        .header("ce-type", "dev.itest.reply")
        .header("content-type", "text/plain")
}

#[tokio::test]
async fn replies_go_to_the_reply_uri_only_when_answered_200() {
    let channel = Channel::new().await;
    let replier = Sink::with_plan(reply_plan(200)).await;
    let replies = Sink::start().await;
    let accepter = Sink::with_plan(reply_plan(202)).await;
    let not_replies = Sink::start().await;
    let no_reply_uri = Sink::with_plan(reply_plan(200)).await;

    // A failed reply would be retried: a retry budget makes any such failure visible.
    let forwarding = Sub::to(&replier.url())
        .reply(&replies.url())
        .delivery("{retry: 2, backoffDelay: PT0.1S}");
    let accepted = Sub::to(&accepter.url())
        .reply(&not_replies.url())
        .delivery("{retry: 2, backoffDelay: PT0.1S}");
    let dropped = Sub::to(&no_reply_uri.url()).delivery("{retry: 2, backoffDelay: PT0.1S}");
    let running = channel.start(1, &[&forwarding, &accepted, &dropped]).await;

    running.post_event("e-1", &[]).await;
    running.post_event("e-2", &[]).await;

    let forwarded = replies.wait_for(2, ARRIVE).await;
    for r in &forwarded {
        assert_eq!(r.header("ce-id"), Some("reply-1"));
        assert_eq!(r.header("ce-source"), Some("/itest/replier"));
        assert_eq!(r.header("ce-type"), Some("dev.itest.reply"));
        assert_eq!(r.header("ce-specversion"), Some("1.0"));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.body_str(), "reply body");
    }
    assert_eq!(ids(&replier.wait_for(2, ARRIVE).await), ["e-1", "e-2"]);
    assert_eq!(ids(&accepter.wait_for(2, ARRIVE).await), ["e-1", "e-2"]);
    assert_eq!(ids(&no_reply_uri.wait_for(2, ARRIVE).await), ["e-1", "e-2"]);

    // Nothing more: no retries anywhere, nothing forwarded from a 202.
    tokio::time::sleep(QUIET).await;
    assert_eq!(replies.count(), 2, "one reply per event");
    assert_eq!(replier.count(), 2, "no retries of the replier");
    assert_eq!(accepter.count(), 2, "no retries of the 202 subscriber");
    assert_eq!(not_replies.count(), 0, "a 202 with a body is not a reply");
    assert_eq!(no_reply_uri.count(), 2, "a dropped reply is no failure");
    for sub in [&forwarding, &accepted, &dropped] {
        let delivered = running
            .settled_metric("kafka_bridge_events_delivered_total", &sub.uid, 2.0)
            .await;
        let retries = running
            .subscriber_metric("kafka_bridge_delivery_retries_total", &sub.uid)
            .await;
        assert_eq!((delivered, retries), (2.0, 0.0), "subscriber {}", sub.uid);
    }
}

#[tokio::test]
async fn failing_subscriber_dead_letters_after_its_retries() {
    let channel = Channel::new().await;
    let failing = Sink::with_plan(Plan::status(500)).await;
    let dead_letters = Sink::start().await;
    let sub = Sub::to(&failing.url()).delivery(&format!(
        "{{retry: 1, backoffPolicy: linear, backoffDelay: PT0.1S, deadLetterSink: {{uri: '{}'}}}}",
        dead_letters.url()
    ));
    let running = channel.start(1, &[&sub]).await;

    running
        .post_event("doomed", &[("ce-myext", "kept"), ("x-request-id", "r-9")])
        .await;

    let letters = dead_letters.wait_for(1, ARRIVE).await;
    let letter = &letters[0];
    assert_eq!(letter.header("ce-id"), Some("doomed"));
    assert_eq!(letter.header("ce-source"), Some("/itest/channel"));
    assert_eq!(letter.header("ce-type"), Some("dev.itest.event"));
    assert_eq!(letter.header("ce-myext"), Some("kept"));
    assert_eq!(letter.header("ce-knativeerrorcode"), Some("500"));
    let dest = percent_decode(
        letter
            .header("ce-knativeerrordest")
            .expect("knativeerrordest"),
    );
    assert_eq!(dest.trim_end_matches('/'), failing.url());
    assert_eq!(letter.body_str(), "body of doomed");

    let attempts = failing.wait_for(2, ARRIVE).await;
    assert_eq!(ids(&attempts), ["doomed", "doomed"]);
    assert!(
        attempts[1].at.duration_since(attempts[0].at) >= Duration::from_millis(100),
        "backoff between attempts"
    );
    tokio::time::sleep(QUIET).await;
    assert_eq!(failing.count(), 2, "retry: 1 means two attempts in all");
    assert_eq!(dead_letters.count(), 1);
    assert_eq!(
        running
            .settled_metric("kafka_bridge_events_dead_lettered_total", &sub.uid, 1.0)
            .await,
        1.0,
    );
}

#[tokio::test]
async fn events_survive_a_subscriber_outage_in_partition_order() {
    const FAILURES: usize = 6;
    const EVENTS: usize = 12;
    let channel = Channel::new().await;
    let sink = Sink::with_plan(Plan::sequence([503; FAILURES], 202)).await;
    let sub =
        Sub::to(&sink.url()).delivery("{retry: 20, backoffPolicy: linear, backoffDelay: PT0.1S}");
    let running = channel.start(2, &[&sub]).await;

    // With librdkafka's default partitioner (crc32 of the key), "a" and "d" land on different
    // partitions of two; asserted below from the stored records.
    for i in 0..EVENTS {
        let key = if i % 2 == 0 { "a" } else { "d" };
        running
            .post_event(&format!("{key}-{i:02}"), &[("ce-partitionkey", key)])
            .await;
    }

    // Every event is accepted exactly once, after the outage.
    let deadline = tokio::time::Instant::now() + ARRIVE;
    loop {
        let accepted = sink.requests().iter().filter(|r| r.status == 202).count();
        if accepted >= EVENTS || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let requests = sink.requests();
    assert_eq!(requests.len(), EVENTS + FAILURES, "{:?}", ids(&requests));
    let mut accepted: Vec<String> = requests
        .iter()
        .filter(|r| r.status == 202)
        .map(|r| r.header("ce-id").expect("ce-id").to_string())
        .collect();
    accepted.sort();
    let mut expected: Vec<String> = (0..EVENTS)
        .map(|i| format!("{}-{i:02}", if i % 2 == 0 { "a" } else { "d" }))
        .collect();
    expected.sort();
    assert_eq!(accepted, expected, "each event accepted once");

    // Per partition (as stored), attempts never go back to an earlier event and an event is
    // attempted only once the one before it was accepted.
    let stored = consume_all(&channel.bootstrap, &channel.topic(), EVENTS, ARRIVE).await;
    let partition_of: BTreeMap<String, i32> = stored
        .iter()
        .map(|r| {
            (
                r.header_str("ce_id").expect("ce_id").to_string(),
                r.partition,
            )
        })
        .collect();
    let mut per_key: BTreeMap<i32, Vec<(String, u16)>> = BTreeMap::new();
    for r in &requests {
        let id = r.header("ce-id").expect("ce-id").to_string();
        per_key
            .entry(partition_of[&id])
            .or_default()
            .push((id, r.status));
    }
    assert_eq!(
        per_key.len(),
        2,
        "both partitions hold events: {partition_of:?}"
    );
    for (key, attempts) in &per_key {
        for pair in attempts.windows(2) {
            let ((prev, prev_status), (next, _)) = (&pair[0], &pair[1]);
            if prev == next {
                assert_eq!(*prev_status, 503, "{key}: {prev} retried after success");
            } else {
                assert!(prev < next, "{key}: {next} after {prev}: {attempts:?}");
                assert_eq!(*prev_status, 202, "{key}: {next} before {prev} succeeded");
            }
        }
    }
    tokio::time::sleep(QUIET).await;
    assert_eq!(sink.count(), EVENTS + FAILURES, "nothing delivered twice");
    assert_eq!(
        running
            .settled_metric(
                "kafka_bridge_events_delivered_total",
                &sub.uid,
                EVENTS as f64
            )
            .await,
        EVENTS as f64,
    );
    assert_eq!(
        running
            .settled_metric(
                "kafka_bridge_delivery_retries_total",
                &sub.uid,
                FAILURES as f64
            )
            .await,
        FAILURES as f64,
    );
}

#[tokio::test]
async fn a_new_subscriber_starts_at_the_end_of_the_topic() {
    let channel = Channel::new().await;
    // Events stored before the subscriber exists, as the ingress stores them.
    create_topic(&channel.bootstrap, &channel.topic(), 1).await;
    let old: Vec<Record> = (0..3)
        .map(|i| {
            Record::new(format!("old {i}"))
                .header("ce_specversion", "1.0")
                .header("ce_id", format!("old-{i}"))
                .header("ce_source", "/itest/old")
                .header("ce_type", "dev.itest.old")
                .header("content-type", "text/plain")
        })
        .collect();
    produce(&channel.bootstrap, &channel.topic(), &old).await;

    let sink = Sink::start().await;
    let sub = Sub::to(&sink.url());
    let running = channel.start(1, &[&sub]).await;
    running.post_event("new-0", &[]).await;
    running.post_event("new-1", &[]).await;

    let requests = sink.wait_for(2, ARRIVE).await;
    assert_eq!(ids(&requests), ["new-0", "new-1"]);
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        ids(&sink.requests()),
        ["new-0", "new-1"],
        "old events replayed"
    );
    // A skipped (undecodable) old record would count as failed: none was even read.
    assert_eq!(
        running
            .settled_metric("kafka_bridge_events_failed_total", &sub.uid, 0.0)
            .await,
        0.0,
    );
    assert_eq!(
        running
            .settled_metric("kafka_bridge_events_delivered_total", &sub.uid, 2.0)
            .await,
        2.0,
    );
}
