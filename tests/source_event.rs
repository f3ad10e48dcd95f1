//! The KafkaSource event, end to end: records produced to a real broker, consumed by the real
//! `kafka-bridge` binary, and the HTTP request a real sink receives checked header by header
//! against what Knative's receive adapter sends (README "The event").
//!
//! Bridge starts dominate the runtime, so one bridge process runs several KafkaSources (each with
//! its own topic, group and sink) and each concern is checked by its own function with its own
//! messages. Records are produced before the bridge starts (`initialOffset: earliest`), so the
//! group join and the deliveries overlap with nothing to wait for in between.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    broker, create_topic, metric_value, produce, unique, write_yaml, BridgeProcess, Delivered,
    Record, Request, Sink,
};

const NS: &str = "events";
const KEY_TYPE_LABEL: &str = "kafkasources.sources.knative.dev/key-type";
const READY: Duration = Duration::from_secs(60);
const DELIVERED: Duration = Duration::from_secs(60);
/// 2023-11-14T22:13:20Z in milliseconds since the epoch.
const T0: i64 = 1_700_000_000_000;

/// One KafkaSource of a test's YAML file, with the sink it delivers to.
struct SourceSpec {
    name: &'static str,
    topics: Vec<String>,
    sink: Sink,
    /// `metadata.labels` entries, as YAML `key: value` lines.
    labels: Vec<(&'static str, &'static str)>,
    /// Extra `spec` fields, as YAML lines indented by two spaces.
    extra_spec: &'static str,
}

impl SourceSpec {
    async fn new(name: &'static str, topics: Vec<String>) -> SourceSpec {
        SourceSpec {
            name,
            topics,
            sink: Sink::start().await,
            labels: Vec::new(),
            extra_spec: "",
        }
    }

    fn sink_path(&self) -> String {
        format!("/{NS}/{}", self.name)
    }

    fn yaml(&self, bootstrap: &str) -> String {
        let labels: String = self
            .labels
            .iter()
            .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
            .collect();
        format!(
            "apiVersion: sources.knative.dev/v1beta1\n\
             kind: KafkaSource\n\
             metadata:\n  name: {name}\n  namespace: {NS}\n  labels:\n{labels}    app: event-test\n\
             spec:\n  bootstrapServers: [\"{bootstrap}\"]\n  topics: [{topics}]\n  \
             consumerGroup: {group}\n  initialOffset: earliest\n  \
             sink:\n    uri: {sink}\n{extra}",
            name = self.name,
            topics = self.topics.join(", "),
            group = unique(&format!("group-{}", self.name)),
            sink = self.sink.url_for(&self.sink_path()),
            extra = self.extra_spec,
        )
    }

    /// The `source` attribute Knative gives plain events from `topic`.
    fn event_source(&self, topic: &str) -> String {
        format!(
            "/apis/v1/namespaces/{NS}/kafkasources/{}#{topic}",
            self.name
        )
    }

    /// Waits for `n` requests and returns them by `ce-id` (which must be unique).
    async fn requests_by_id(&self, n: usize) -> BTreeMap<String, Request> {
        let requests = self.sink.wait_for(n, DELIVERED).await;
        // Redelivery would show as extra requests; give a straggler a moment to show up.
        let extra = self
            .sink
            .try_wait_for(n + 1, Duration::from_millis(300))
            .await;
        assert!(extra.is_err(), "{}: more than {n} requests", self.name);
        let mut by_id = BTreeMap::new();
        for request in requests {
            assert_eq!(request.method, http::Method::POST, "{}", self.name);
            assert_eq!(request.path, self.sink_path(), "{}", self.name);
            let id = request
                .header("ce-id")
                .expect("every event has ce-id")
                .to_string();
            assert!(
                by_id.insert(id.clone(), request).is_none(),
                "{}: ce-id {id} delivered twice",
                self.name
            );
        }
        by_id
    }
}

/// Joins sources into one multi-document YAML file, with `between` documents after the first.
fn config(bootstrap: &str, sources: &[&SourceSpec], between: &str) -> common::YamlFile {
    let mut docs: Vec<String> = sources.iter().map(|s| s.yaml(bootstrap)).collect();
    if !between.is_empty() {
        docs.insert(1, between.to_string());
    }
    write_yaml(&docs.join("---\n"))
}

async fn start_bridge(file: &common::YamlFile) -> BridgeProcess {
    let mut bridge =
        BridgeProcess::start(file.path(), &["--kafka-config", "session.timeout.ms=6000"]);
    bridge.wait_ready(READY).await;
    bridge
}

/// Asserts that `request` carries exactly `want` (names lowercase) plus the headers the HTTP
/// client adds on its own (`host`, `content-length`, `accept`), and exactly `body`.
fn assert_exact_headers(what: &str, request: &Request, want: &[(&str, &str)], body: &[u8]) {
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &request.headers {
        let value = value
            .to_str()
            .unwrap_or_else(|_| panic!("{what}: header {name} is not visible ASCII: {value:?}"));
        got.entry(name.as_str().to_string())
            .or_default()
            .push(value.to_string());
    }
    let content_length = got.remove("content-length");
    // An empty body may go without the header: a request without one has no body.
    if !(body.is_empty() && content_length.is_none()) {
        assert_eq!(
            content_length,
            Some(vec![body.len().to_string()]),
            "{what}: content-length"
        );
    }
    assert!(got.remove("host").is_some(), "{what}: host");
    let want: BTreeMap<String, Vec<String>> = want
        .iter()
        .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
        .collect();
    assert_eq!(got, want, "{what}: headers");
    assert_eq!(&request.body[..], body, "{what}: body");
}

/// The headers of a plain record's event that do not depend on its key or record headers.
fn plain_headers(
    source: &SourceSpec,
    topic: &str,
    at: Delivered,
    time: &str,
) -> Vec<(&'static str, String)> {
    let (p, o) = (at.partition, at.offset);
    vec![
        ("ce-specversion", "1.0".into()),
        ("ce-id", format!("partition:{p}/offset:{o}")),
        ("ce-type", "dev.knative.kafka.event".into()),
        ("ce-source", source.event_source(topic)),
        ("ce-subject", format!("partition:{p}#{o}")),
        ("ce-time", time.into()),
        ("ce-knativekafkapartition", p.to_string()),
        ("ce-knativekafkaoffset", o.to_string()),
        ("prefer", "reply".into()),
        ("kn-namespace", NS.into()),
    ]
}

fn id(at: Delivered) -> String {
    format!("partition:{}/offset:{}", at.partition, at.offset)
}

fn with<'a>(
    base: &'a [(&'static str, String)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    base.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(extra.iter().copied())
        .collect()
}

/// Polls `/metrics` until `name{kind=KafkaSource,namespace=NS,name=source}` equals `want`;
/// asserts it does within 10 s.
async fn assert_metric(bridge: &BridgeProcess, metric: &str, source: &str, want: f64) {
    let labels = [("kind", "KafkaSource"), ("namespace", NS), ("name", source)];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = metric_value(&bridge.metrics().await, metric, &labels);
        if got == Some(want) {
            return;
        }
        if Instant::now() >= deadline {
            panic!("{metric} of {source}: want {want}, got {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Plain records: attributes, keys by type, record headers, topics, metrics.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn plain_records_become_knative_events() {
    let bootstrap = broker().await.bootstrap();
    let plain = SourceSpec::new("plain", vec![unique("ev-plain")]).await;
    let mut keys = Vec::new();
    for (name, key_type) in [
        ("keys-int", "int"),
        ("keys-float", "float"),
        ("keys-bytes", "byte-array"),
        ("keys-string", "string"),
    ] {
        let mut source = SourceSpec::new(name, vec![unique(&format!("ev-{name}"))]).await;
        source.labels.push((KEY_TYPE_LABEL, key_type));
        keys.push(source);
    }
    let multi = SourceSpec::new("multi", vec![unique("ev-multi-a"), unique("ev-multi-b")]).await;

    create_topic(&bootstrap, &plain.topics[0], 2).await;
    for topic in keys.iter().chain([&multi]).flat_map(|s| &s.topics) {
        create_topic(&bootstrap, topic, 1).await;
    }
    let plain_records = produce_plain_records(&bootstrap, &plain.topics[0]).await;
    let key_records = produce_key_records(&bootstrap, &keys).await;
    let multi_records = [
        produce(
            &bootstrap,
            &multi.topics[0],
            &[Record::new("from a").timestamp(T0)],
        )
        .await[0],
        produce(
            &bootstrap,
            &multi.topics[1],
            &[Record::new("from b").timestamp(T0)],
        )
        .await[0],
    ];

    let mut all: Vec<&SourceSpec> = vec![&plain, &multi];
    all.extend(&keys);
    let file = config(&bootstrap, &all, "");
    let bridge = start_bridge(&file).await;

    check_plain_records(&plain, &plain_records).await;
    check_key_types(&keys, &key_records).await;
    check_topics_give_sources(&multi, &multi_records).await;

    // Metrics: every record counted once, and the partitions each source holds.
    let delivered = "kafka_bridge_events_delivered_total";
    let assigned = "kafka_bridge_consumer_assigned_partitions";
    assert_metric(&bridge, delivered, "plain", plain_records.len() as f64).await;
    assert_metric(&bridge, assigned, "plain", 2.0).await;
    assert_metric(&bridge, delivered, "multi", 2.0).await;
    assert_metric(&bridge, assigned, "multi", 2.0).await;
    for (source, records) in keys.iter().zip(&key_records) {
        assert_metric(&bridge, delivered, source.name, records.len() as f64).await;
        assert_metric(&bridge, assigned, source.name, 1.0).await;
    }
}

/// The plain source's records: a full one (key, headers, content type, non-ASCII header), one
/// without a key, one with an empty key, one with a null value; timestamps chosen to show how
/// Knative spells fractions of a second.
async fn produce_plain_records(bootstrap: &str, topic: &str) -> Vec<Delivered> {
    let records = [
        Record::new("hello")
            .partition(1)
            .key("user-1")
            .timestamp(T0 + 123)
            .header("X-Trace_ID", "abc-123")
            .header("Note", "café 100%")
            .header("content-type", "Text/Plain; Charset=UTF-8"),
        Record::new("no key").partition(0).timestamp(T0 + 500),
        Record::new("empty key")
            .partition(0)
            .key("")
            .timestamp(T0 + 1000),
        Record::null_value()
            .partition(0)
            .key("k3")
            .timestamp(T0 + 120),
    ];
    produce(bootstrap, topic, &records).await
}

async fn check_plain_records(source: &SourceSpec, at: &[Delivered]) {
    let topic = &source.topics[0];
    let mut got = source.requests_by_id(at.len()).await;
    let mut take = |i: usize| {
        got.remove(&id(at[i]))
            .unwrap_or_else(|| panic!("no event for plain record {i} ({:?})", at[i]))
    };

    let full = plain_headers(source, topic, at[0], "2023-11-14T22:13:20.123Z");
    assert_exact_headers(
        "record with key and headers",
        &take(0),
        &with(
            &full,
            &[
                ("ce-key", "user-1"),
                ("ce-partitionkey", "user-1"),
                // Name lowercased, `-` and `_` dropped; the value percent-encoded.
                ("ce-kafkaheaderxtraceid", "abc-123"),
                ("ce-kafkaheadernote", "caf%C3%A9%20100%25"),
                // The content-type record header is the datacontenttype, lowercased.
                ("content-type", "text/plain; charset=utf-8"),
            ],
        ),
        b"hello",
    );

    let no_key = plain_headers(source, topic, at[1], "2023-11-14T22:13:20.5Z");
    assert_exact_headers(
        "record without key",
        &take(1),
        &with(&no_key, &[]),
        b"no key",
    );

    let empty_key = plain_headers(source, topic, at[2], "2023-11-14T22:13:21Z");
    assert_exact_headers(
        "record with empty key",
        &take(2),
        &with(&empty_key, &[]),
        b"empty key",
    );

    let null_value = plain_headers(source, topic, at[3], "2023-11-14T22:13:20.12Z");
    assert_exact_headers(
        "record with null value",
        &take(3),
        &with(&null_value, &[("ce-key", "k3"), ("ce-partitionkey", "k3")]),
        b"",
    );
}

/// Per key-type source (in `keys` order), the keys produced and the `key` each must give.
fn key_cases() -> [Vec<(Vec<u8>, &'static str)>; 4] {
    [
        vec![
            (42i32.to_be_bytes().to_vec(), "42"),
            ((-7i32).to_be_bytes().to_vec(), "-7"),
            ((1i64 << 40).to_be_bytes().to_vec(), "1099511627776"),
            ((-2i64).to_be_bytes().to_vec(), "-2"),
            // Neither 4 nor 8 bytes: not an int, so the key is taken as a string.
            (b"abc".to_vec(), "abc"),
        ],
        vec![
            (1.5f32.to_be_bytes().to_vec(), "1.5"),
            (1.1f32.to_be_bytes().to_vec(), "1.1"),
            ((-0.25f64).to_be_bytes().to_vec(), "-0.25"),
            (3.0f64.to_be_bytes().to_vec(), "3.0"),
            (b"12345".to_vec(), "12345"),
        ],
        vec![(vec![0u8, 1, 255], "AAH/"), (b"hello".to_vec(), "aGVsbG8=")],
        // Four bytes that an int key type would read as a number stay text.
        vec![
            (b"1234".to_vec(), "1234"),
            (b"k\xc3\xa9y".to_vec(), "k%C3%A9y"),
        ],
    ]
}

async fn produce_key_records(bootstrap: &str, keys: &[SourceSpec]) -> Vec<Vec<Delivered>> {
    let mut delivered = Vec::new();
    for (source, cases) in keys.iter().zip(key_cases()) {
        let records: Vec<Record> = cases
            .iter()
            .enumerate()
            .map(|(i, (key, _))| Record::new(format!("v{i}")).key(key.clone()).timestamp(T0))
            .collect();
        delivered.push(produce(bootstrap, &source.topics[0], &records).await);
    }
    delivered
}

async fn check_key_types(keys: &[SourceSpec], delivered: &[Vec<Delivered>]) {
    for ((source, cases), at) in keys.iter().zip(key_cases()).zip(delivered) {
        let mut got = source.requests_by_id(at.len()).await;
        let base_of = |at| plain_headers(source, &source.topics[0], at, "2023-11-14T22:13:20Z");
        for (i, ((key, want), at)) in cases.iter().zip(at).enumerate() {
            let what = format!("{}: key {key:?}", source.name);
            let request = got
                .remove(&id(*at))
                .unwrap_or_else(|| panic!("{what}: no event"));
            let base = base_of(*at);
            let want = with(&base, &[("ce-key", want), ("ce-partitionkey", want)]);
            assert_exact_headers(&what, &request, &want, format!("v{i}").as_bytes());
        }
    }
}

async fn check_topics_give_sources(source: &SourceSpec, at: &[Delivered; 2]) {
    let requests = source.sink.wait_for(2, DELIVERED).await;
    for (topic, body) in source.topics.iter().zip(["from a", "from b"]) {
        let request = requests
            .iter()
            .find(|r| r.body_str() == body)
            .unwrap_or_else(|| panic!("no event for the record of {topic}"));
        let at = if body == "from a" { at[0] } else { at[1] };
        let want = plain_headers(source, topic, at, "2023-11-14T22:13:20Z");
        assert_exact_headers(
            &format!("record of topic {topic}"),
            request,
            &with(&want, &[]),
            body.as_bytes(),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Records that are CloudEvents, ceOverrides, and a kind the bridge does not run.
// ---------------------------------------------------------------------------------------------

const STRUCTURED: &str = r#"{"specversion":"1.0","id":"s-1","source":"urn:example:structured","type":"com.example.structured","subject":"s/1","datacontenttype":"application/json","color":"red","data":{"x":1,"y":"é"}}"#;

/// A binary-mode CloudEvent record (Kafka protocol binding), with an extension and data.
fn binary_ce_record() -> Record {
    Record::new(r#"{"order":17}"#)
        .key("order-17")
        .timestamp(T0)
        .header("ce_specversion", "1.0")
        .header("ce_id", "order-17")
        .header("ce_source", "/shop/orders")
        .header("ce_type", "com.example.order.created")
        .header("ce_subject", "order 17")
        .header("ce_time", "2024-01-02T03:04:05.678Z")
        .header("ce_region", "eu-west")
        .header("content-type", "application/json")
}

fn structured_ce_record() -> Record {
    Record::new(STRUCTURED).key("s-1").timestamp(T0).header(
        "content-type",
        "application/cloudevents+json; charset=utf-8",
    )
}

/// Claims to be a binary CloudEvent (`ce_specversion`) but has no id.
fn invalid_ce_record() -> Record {
    Record::new("not an event")
        .key("k")
        .timestamp(T0)
        .header("ce_specversion", "1.0")
        .header("ce_source", "/claimed")
        .header("ce_type", "claimed.type")
}

/// The headers the binary and structured CloudEvent records must arrive with, bar the Kafka
/// position and overrides.
fn binary_ce_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ce-specversion", "1.0"),
        ("ce-id", "order-17"),
        ("ce-source", "/shop/orders"),
        ("ce-type", "com.example.order.created"),
        ("ce-subject", "order%2017"),
        ("ce-time", "2024-01-02T03:04:05.678Z"),
        ("ce-region", "eu-west"),
        ("content-type", "application/json"),
        ("prefer", "reply"),
        ("kn-namespace", NS),
    ]
}

fn structured_ce_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ce-specversion", "1.0"),
        ("ce-id", "s-1"),
        ("ce-source", "urn:example:structured"),
        ("ce-type", "com.example.structured"),
        ("ce-subject", "s/1"),
        ("ce-color", "red"),
        ("content-type", "application/json"),
        ("prefer", "reply"),
        ("kn-namespace", NS),
    ]
}

const UNKNOWN_KIND: &str = "apiVersion: example.com/v1\nkind: Frobnicator\n\
                            metadata:\n  name: frob\n  namespace: events\nspec:\n  speed: 11\n";

#[tokio::test]
async fn cloudevent_records_pass_through_and_overrides_apply() {
    let bootstrap = broker().await.bootstrap();
    let passthrough = SourceSpec::new("passthrough", vec![unique("ev-ce")]).await;
    let mut overrides = SourceSpec::new("overrides", vec![unique("ev-overrides")]).await;
    overrides.extra_spec = "  ceOverrides:\n    extensions:\n      team: blue\n      tier: \"1\"\n";
    for source in [&passthrough, &overrides] {
        create_topic(&bootstrap, &source.topics[0], 1).await;
    }
    let records = [
        binary_ce_record(),
        structured_ce_record(),
        invalid_ce_record(),
    ];
    let ce_at = produce(&bootstrap, &passthrough.topics[0], &records).await;
    let records = [
        binary_ce_record(),
        structured_ce_record(),
        Record::new("plain").timestamp(T0),
    ];
    let overrides_at = produce(&bootstrap, &overrides.topics[0], &records).await;

    // The unknown kind sits between the two sources: both must still run.
    let file = config(&bootstrap, &[&passthrough, &overrides], UNKNOWN_KIND);
    let bridge = start_bridge(&file).await;

    check_cloudevent_records(&passthrough, &ce_at).await;
    check_overrides(&overrides, &overrides_at).await;
    check_unknown_kind_skipped(&bridge, file.path());
}

async fn check_cloudevent_records(source: &SourceSpec, at: &[Delivered]) {
    let mut got = source.requests_by_id(3).await;
    let position = |at: Delivered| (at.partition.to_string(), at.offset.to_string());

    let (p, o) = position(at[0]);
    let mut want: Vec<(&str, &str)> = binary_ce_headers();
    want.extend([
        ("ce-knativekafkapartition", p.as_str()),
        ("ce-knativekafkaoffset", o.as_str()),
    ]);
    let request = got
        .remove("order-17")
        .expect("binary-mode CloudEvent delivered as itself");
    assert_exact_headers(
        "binary-mode CloudEvent record",
        &request,
        &want,
        br#"{"order":17}"#,
    );

    let (p, o) = position(at[1]);
    let mut want: Vec<(&str, &str)> = structured_ce_headers();
    want.extend([
        ("ce-knativekafkapartition", p.as_str()),
        ("ce-knativekafkaoffset", o.as_str()),
    ]);
    let request = got
        .remove("s-1")
        .expect("structured CloudEvent delivered as itself");
    let body = serde_json::json!({"x": 1, "y": "é"}).to_string();
    assert_exact_headers(
        "structured CloudEvent record",
        &request,
        &want,
        body.as_bytes(),
    );

    // Invalid as a CloudEvent: mapped from the record, its ce_ headers become kafkaheader ones.
    let plain = plain_headers(source, &source.topics[0], at[2], "2023-11-14T22:13:20Z");
    let request = got
        .remove(&id(at[2]))
        .expect("invalid CloudEvent record delivered as plain");
    let want = with(
        &plain,
        &[
            ("ce-key", "k"),
            ("ce-partitionkey", "k"),
            ("ce-kafkaheadercespecversion", "1.0"),
            ("ce-kafkaheadercesource", "/claimed"),
            ("ce-kafkaheadercetype", "claimed.type"),
        ],
    );
    assert_exact_headers(
        "invalid CloudEvent record",
        &request,
        &want,
        b"not an event",
    );
}

async fn check_overrides(source: &SourceSpec, at: &[Delivered]) {
    let mut got = source.requests_by_id(3).await;
    let overrides = [("ce-team", "blue"), ("ce-tier", "1")];
    let position = |at: Delivered| (at.partition.to_string(), at.offset.to_string());

    let (p, o) = position(at[0]);
    let mut want: Vec<(&str, &str)> = binary_ce_headers();
    want.extend([
        ("ce-knativekafkapartition", p.as_str()),
        ("ce-knativekafkaoffset", o.as_str()),
    ]);
    want.extend(overrides);
    let request = got.remove("order-17").expect("binary-mode CloudEvent");
    assert_exact_headers(
        "overrides on a binary CloudEvent",
        &request,
        &want,
        br#"{"order":17}"#,
    );

    let (p, o) = position(at[1]);
    let mut want: Vec<(&str, &str)> = structured_ce_headers();
    want.extend([
        ("ce-knativekafkapartition", p.as_str()),
        ("ce-knativekafkaoffset", o.as_str()),
    ]);
    want.extend(overrides);
    let request = got.remove("s-1").expect("structured CloudEvent");
    let body = serde_json::json!({"x": 1, "y": "é"}).to_string();
    assert_exact_headers(
        "overrides on a structured CloudEvent",
        &request,
        &want,
        body.as_bytes(),
    );

    let plain = plain_headers(source, &source.topics[0], at[2], "2023-11-14T22:13:20Z");
    let request = got.remove(&id(at[2])).expect("plain record");
    assert_exact_headers(
        "overrides on a plain record",
        &request,
        &with(&plain, &overrides),
        b"plain",
    );
}

fn check_unknown_kind_skipped(bridge: &BridgeProcess, file: &Path) {
    let log = bridge.log();
    let warning = log
        .lines()
        .find(|line| line.contains("Frobnicator"))
        .unwrap_or_else(|| panic!("no warning about the unknown kind in the log:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&format!("{} (document 2)", file.display())),
        "the warning names the file and document: {warning}"
    );
    assert!(warning.contains("example.com/v1"), "{warning}");
}

// ---------------------------------------------------------------------------------------------
// Invalid files stop the process.
// ---------------------------------------------------------------------------------------------

const VALID_SOURCE: &str = "apiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\n\
    metadata:\n  name: fine\n  namespace: events\n\
    spec:\n  bootstrapServers: [\"127.0.0.1:1\"]\n  topics: [t]\n  sink:\n    uri: http://127.0.0.1:1/\n";

/// Runs `kafka-bridge run -f FILE` on `yaml`; returns the exit code and stderr after asserting
/// that it exited within 10 s.
fn run_to_exit(yaml: &str) -> (common::YamlFile, Option<i32>, String) {
    let file = write_yaml(yaml);
    let admin = format!("127.0.0.1:{}", common::free_port());
    let ingress = format!("127.0.0.1:{}", common::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafka-bridge"))
        .args(["run", "-f"])
        .arg(file.path())
        .args(["--admin-addr", &admin, "--ingress-addr", &ingress])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kafka-bridge");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll kafka-bridge") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill(); // it may exit between the poll and the kill
            let output = child.wait_with_output().expect("reap kafka-bridge");
            panic!(
                "kafka-bridge still running 10 s after starting on an invalid file:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("read kafka-bridge output");
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    (file, status.code(), text)
}

#[test]
fn invalid_files_stop_the_process_naming_file_resource_and_field() {
    let bad_offset = VALID_SOURCE
        .replace("name: fine", "name: bad-offset")
        .replace(
            "  topics: [t]\n",
            "  topics: [t]\n  initialOffset: middle\n",
        );
    let no_sink = VALID_SOURCE
        .replace("name: fine", "name: no-sink")
        .replace("  sink:\n    uri: http://127.0.0.1:1/\n", "");
    let syntax = VALID_SOURCE.replace("  topics: [t]\n", "  topics: [t\n");
    let cases = [
        // (what, yaml, fragments the error message must hold besides the file path)
        (
            "invalid field value",
            format!("{VALID_SOURCE}---\n{bad_offset}"),
            vec![
                "(document 2)",
                "KafkaSource events/bad-offset",
                "spec.initialOffset",
                "middle",
            ],
        ),
        (
            "missing sink",
            format!("{no_sink}---\n{VALID_SOURCE}"),
            vec!["(document 1)", "KafkaSource events/no-sink", "spec.sink"],
        ),
        ("YAML syntax error", syntax, vec!["invalid YAML", "line 8"]),
    ];
    for (what, yaml, fragments) in cases {
        let (file, code, output) = run_to_exit(&yaml);
        assert!(
            code.is_some_and(|c| c != 0),
            "{what}: exit code {code:?}\n{output}"
        );
        let error = output
            .lines()
            .find(|line| line.starts_with("error:"))
            .unwrap_or_else(|| panic!("{what}: no error line in:\n{output}"));
        let path = file.path().display().to_string();
        assert!(error.contains(&path), "{what}: names the file: {error}");
        for fragment in fragments {
            assert!(error.contains(fragment), "{what}: {fragment:?} in: {error}");
        }
    }
}
