//! The KafkaChannel ingress against the real broker: events POSTed in binary and structured mode
//! and read back from the channel's topic, routing by path and host, every refusal (with nothing
//! written), forwarded headers, live route changes, and 503 when the cluster is unreachable.
//!
//! The ingress runs in-process through the library on 127.0.0.1:0; channels are planned by hand.
//! "Nothing written" is shown without waiting for silence: the refusals go first, then one valid
//! event, which must come back as the topic's first record (offset 0 of its only partition).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::net::http_client;
use common::{broker, consume_all, create_topic, metric_value, unique, Consumed};
use kafka_bridge::engine::plan::{ChannelPlan, KafkaConnection, ResourceId};
use kafka_bridge::ingress::{self, IngressOptions, Producers, Routes};
use kafka_bridge::kafka::client_config::ClientSettings;
use kafka_bridge::metrics::Metrics;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const CONSUMED: Duration = Duration::from_secs(30);

/// Request or record headers as written in a test: (name, value).
type Pairs<'a> = &'a [(&'a str, &'a str)];
/// Request headers built at run time.
type Built = Vec<(&'static str, String)>;

/// An ingress served in-process, with the tables a test changes.
struct TestIngress {
    addr: SocketAddr,
    routes: Routes,
    producers: Producers,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl TestIngress {
    async fn start(options: IngressOptions) -> TestIngress {
        Self::start_with(options, ClientSettings::default()).await
    }

    async fn start_with(options: IngressOptions, settings: ClientSettings) -> TestIngress {
        Self::start_on(&tokio::runtime::Handle::current(), options, settings)
    }

    /// Serves on `runtime`, which need not be the test's.
    fn start_on(
        runtime: &tokio::runtime::Handle,
        options: IngressOptions,
        settings: ClientSettings,
    ) -> TestIngress {
        let metrics = Arc::new(Metrics::new());
        let routes = Routes::new(Arc::clone(&metrics));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the ingress");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("ingress address");
        let shutdown = CancellationToken::new();
        let router = ingress::router(routes.clone(), options);
        let stop = shutdown.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            ingress::serve(listener, router, stop).await
        });
        TestIngress {
            addr,
            routes,
            producers: Producers::new(settings),
            metrics,
            shutdown,
        }
    }

    fn add(&self, channel: &ChannelPlan) {
        let producer = self
            .producers
            .for_cluster(&channel.kafka)
            .expect("create the producer");
        self.routes.insert(channel, producer);
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` to `path` with `headers`; returns the status and the response body.
    async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
        let response = http_client()
            .post(self.url(path))
            .headers(header_map(headers))
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.expect("response body"))
    }

    /// The ingress series of `channel` answered with `code`.
    fn count(&self, channel: &ChannelPlan, code: &str) -> f64 {
        let text = self.metrics.encode();
        metric_value(
            &text,
            "kafka_bridge_ingress_events_total",
            &[
                ("namespace", &channel.id.namespace),
                ("name", &channel.id.name),
                ("code", code),
            ],
        )
        .unwrap_or_else(|| panic!("no {code} series for {} in:\n{text}", channel.id))
    }
}

impl Drop for TestIngress {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn header_map(headers: &[(&str, &str)]) -> HeaderMap {
    headers
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            )
        })
        .collect()
}

/// A channel on the test broker with a fresh namespace and name, its topic created.
async fn new_channel() -> ChannelPlan {
    let bootstrap = broker().await.bootstrap();
    let channel = plan(KafkaConnection::plaintext(bootstrap.clone()));
    create_topic(&bootstrap, &channel.topic, 1).await;
    channel
}

fn plan(kafka: KafkaConnection) -> ChannelPlan {
    let id = ResourceId::new(unique("ns"), unique("ch"));
    ChannelPlan {
        topic: format!("knative-messaging-kafka.{}.{}", id.namespace, id.name),
        id,
        generation: 0,
        kafka,
        num_partitions: 1,
        replication_factor: 1,
        retention: Duration::from_secs(7 * 24 * 3600),
        subscribers: Vec::new(),
    }
}

fn path(channel: &ChannelPlan) -> String {
    format!("/{}/{}", channel.id.namespace, channel.id.name)
}

async fn consume(channel: &ChannelPlan, n: usize) -> Vec<Consumed> {
    consume_all(&broker().await.bootstrap(), &channel.topic, n, CONSUMED).await
}

/// Headers of a minimal valid binary-mode event with id `id`.
fn minimal(id: &str) -> Built {
    vec![
        ("ce-specversion", "1.0".to_string()),
        ("ce-id", id.to_string()),
        ("ce-source", "/test".to_string()),
        ("ce-type", "dev.example.test".to_string()),
    ]
}

fn borrowed<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

/// The record's headers as (name, UTF-8 value), sorted by name.
fn headers_of(record: &Consumed) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = record
        .headers
        .iter()
        .map(|(name, value)| {
            let value = value.as_deref().expect("no null headers");
            (
                name.clone(),
                String::from_utf8(value.to_vec()).expect("UTF-8 header"),
            )
        })
        .collect();
    headers.sort();
    headers
}

fn sorted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test]
async fn binary_and_structured_events_are_stored_in_kafka_binary_mode() {
    let channel = new_channel().await;
    let ingress = TestIngress::start(IngressOptions::default()).await;
    ingress.add(&channel);
    let to = path(&channel);

    let binary = [
        ("ce-specversion", "1.0"),
        ("ce-id", "bin-1"),
        ("ce-source", "/test/source"),
        ("ce-type", "dev.example.binary"),
        ("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80"),
        ("ce-time", "2023-11-14T22:13:20.123Z"),
        ("ce-dataschema", "http://schema.example/v1"),
        ("ce-partitionkey", "user-42"),
        ("ce-myext", "caf%C3%A9"),
        ("content-type", "application/octet-stream"),
    ];
    let structured_json = br#"{"specversion":"1.0","id":"json-1","source":"/test/source",
        "type":"dev.example.json","datacontenttype":"application/json",
        "data":{"a":[1,2],"b":"x"},"partitionkey":"k2","count":5}"#;
    let structured_base64 = br#"{"specversion":"1.0","id":"b64-1","source":"/test/source",
        "type":"dev.example.b64","datacontenttype":"application/octet-stream",
        "data_base64":"AAEC/w=="}"#;
    let binary_v03 = [
        ("ce-specversion", "0.3"),
        ("ce-id", "v03-bin"),
        ("ce-source", "/test/source"),
        ("ce-type", "dev.example.v03"),
        ("ce-schemaurl", "http://schema.example/3"),
        ("content-type", "text/plain"),
    ];
    let structured_v03 = br#"{"specversion":"0.3","id":"v03-json","source":"/test/source",
        "type":"dev.example.v03","schemaurl":"http://schema.example/3",
        "datacontenttype":"text/plain","data":"hi there"}"#;
    let structured = [(
        "content-type",
        "application/cloudevents+json; charset=utf-8",
    )];

    let requests: [(Pairs<'_>, Vec<u8>); 5] = [
        (&binary, vec![0, 1, 2, 255, 254]),
        (&structured, structured_json.to_vec()),
        (&structured, structured_base64.to_vec()),
        (&binary_v03, b"hi".to_vec()),
        (&structured, structured_v03.to_vec()),
    ];
    for (index, (headers, body)) in requests.into_iter().enumerate() {
        let (status, text) = ingress.post(&to, headers, body).await;
        assert_eq!(status, 202, "request #{index}: {text}");
        assert_eq!(text, "", "request #{index}");
    }

    let records = consume(&channel, 5).await;
    let want: [(Pairs<'_>, Option<&str>, &[u8]); 5] = [
        (
            &[
                ("ce_specversion", "1.0"),
                ("ce_id", "bin-1"),
                ("ce_source", "/test/source"),
                ("ce_type", "dev.example.binary"),
                ("ce_subject", "Euro € 😀"),
                ("ce_time", "2023-11-14T22:13:20.123Z"),
                ("ce_dataschema", "http://schema.example/v1"),
                ("ce_partitionkey", "user-42"),
                ("ce_myext", "café"),
                ("content-type", "application/octet-stream"),
            ],
            Some("user-42"),
            &[0, 1, 2, 255, 254],
        ),
        (
            &[
                ("ce_specversion", "1.0"),
                ("ce_id", "json-1"),
                ("ce_source", "/test/source"),
                ("ce_type", "dev.example.json"),
                ("ce_partitionkey", "k2"),
                ("ce_count", "5"),
                ("content-type", "application/json"),
            ],
            Some("k2"),
            br#"{"a":[1,2],"b":"x"}"#,
        ),
        (
            &[
                ("ce_specversion", "1.0"),
                ("ce_id", "b64-1"),
                ("ce_source", "/test/source"),
                ("ce_type", "dev.example.b64"),
                ("content-type", "application/octet-stream"),
            ],
            None,
            &[0, 1, 2, 255],
        ),
        (
            &[
                ("ce_specversion", "0.3"),
                ("ce_id", "v03-bin"),
                ("ce_source", "/test/source"),
                ("ce_type", "dev.example.v03"),
                ("ce_schemaurl", "http://schema.example/3"),
                ("content-type", "text/plain"),
            ],
            None,
            b"hi",
        ),
        (
            &[
                ("ce_specversion", "0.3"),
                ("ce_id", "v03-json"),
                ("ce_source", "/test/source"),
                ("ce_type", "dev.example.v03"),
                ("ce_schemaurl", "http://schema.example/3"),
                ("content-type", "text/plain"),
            ],
            None,
            b"hi there",
        ),
    ];
    for (index, (record, (headers, key, value))) in records.iter().zip(want).enumerate() {
        assert_eq!(headers_of(record), sorted(headers), "record #{index}");
        assert_eq!(record.key_str(), key, "record #{index}");
        assert_eq!(record.value.as_deref(), Some(value), "record #{index}");
        assert_eq!(record.offset, index as i64);
    }
    assert_eq!(ingress.count(&channel, "202"), 5.0);
}

#[tokio::test]
async fn knative_and_request_id_headers_travel_with_the_event() {
    let channel = new_channel().await;
    let ingress = TestIngress::start(IngressOptions::default()).await;
    ingress.add(&channel);

    let mut binary = minimal("fwd-1");
    binary.extend([
        ("Knative-Foo", "bar".to_string()),
        ("knative-error-dest", "http://dest.example/".to_string()),
        ("X-Request-Id", "req-1".to_string()),
        ("X-Other", "not forwarded".to_string()),
        ("Kn-Namespace", "not forwarded".to_string()),
        ("content-type", "text/plain".to_string()),
    ]);
    let (status, text) = ingress
        .post(&path(&channel), &borrowed(&binary), b"x".to_vec())
        .await;
    assert_eq!(status, 202, "{text}");
    let structured = [
        ("content-type", "application/cloudevents+json"),
        ("KNATIVE-UPPER", "kept"),
        ("x-request-id", "req-2"),
    ];
    let body = br#"{"specversion":"1.0","id":"fwd-2","source":"/test","type":"t"}"#;
    let (status, text) = ingress
        .post(&path(&channel), &structured, body.to_vec())
        .await;
    assert_eq!(status, 202, "{text}");

    let records = consume(&channel, 2).await;
    assert_eq!(
        headers_of(&records[0]),
        sorted(&[
            ("ce_specversion", "1.0"),
            ("ce_id", "fwd-1"),
            ("ce_source", "/test"),
            ("ce_type", "dev.example.test"),
            ("content-type", "text/plain"),
            ("knative-foo", "bar"),
            ("knative-error-dest", "http://dest.example/"),
            ("x-request-id", "req-1"),
        ])
    );
    assert_eq!(
        headers_of(&records[1]),
        sorted(&[
            ("ce_specversion", "1.0"),
            ("ce_id", "fwd-2"),
            ("ce_source", "/test"),
            ("ce_type", "t"),
            ("knative-upper", "kept"),
            ("x-request-id", "req-2"),
        ])
    );
    assert_eq!(
        records[1].value, None,
        "an event without data has a null value"
    );
}

#[tokio::test]
async fn routes_by_path_first_then_by_host_with_any_path() {
    let (a, b) = (new_channel().await, new_channel().await);
    let ingress = TestIngress::start(IngressOptions::default()).await;
    ingress.add(&a);
    ingress.add(&b);
    let (b_ns, b_name) = (&b.id.namespace, &b.id.name);
    let b_host = b.host();
    assert_eq!(
        b_host,
        format!("{b_name}-kn-channel.{b_ns}.svc.cluster.local")
    );

    // (request path, Host header, the channel that must get it)
    let cases: Vec<(String, Option<String>, &ChannelPlan)> = vec![
        (path(&a), None, &a),
        ("/".into(), Some(b_host.clone()), &b),
        (
            "/any/deeper/path".into(),
            Some(format!("{b_host}:8080")),
            &b,
        ),
        (
            "/".into(),
            Some(format!("{b_name}-kn-channel.{b_ns}.svc")),
            &b,
        ),
        (
            "/x".into(),
            Some(format!("{b_name}-kn-channel.{b_ns}.svc:80")),
            &b,
        ),
        ("/".into(), Some(format!("{b_name}-kn-channel.{b_ns}")), &b),
        (
            "/".into(),
            Some(format!("{b_name}-kn-channel.{b_ns}:1234")),
            &b,
        ),
        ("/".into(), Some(b_host.to_uppercase()), &b),
        // The path wins over the host...
        (path(&a), Some(b_host.clone()), &a),
        // ...unless it names no channel.
        (format!("/{b_ns}/no-such-channel"), Some(b_host.clone()), &b),
    ];
    let client = http_client();
    for (index, (to, host, _)) in cases.iter().enumerate() {
        let mut request = client.post(ingress.url(to));
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let mut headers = minimal(&format!("route-{index}"));
        headers.push(("content-type", "text/plain".into()));
        let response = request
            .headers(header_map(&borrowed(&headers)))
            .body("x")
            .send()
            .await
            .expect("POST");
        assert_eq!(
            response.status().as_u16(),
            202,
            "case #{index}: {to} {host:?}"
        );
    }

    for channel in [&a, &b] {
        let want: Vec<String> = cases
            .iter()
            .enumerate()
            .filter(|(_, (_, _, to))| to.id == channel.id)
            .map(|(index, _)| format!("route-{index}"))
            .collect();
        let records = consume(channel, want.len()).await;
        let got: Vec<&str> = records
            .iter()
            .map(|r| r.header_str("ce_id").expect("ce_id"))
            .collect();
        assert_eq!(got, want, "channel {}", channel.id);
    }
}

#[tokio::test]
async fn refusals_write_nothing() {
    const LIMIT: usize = 1024;
    let channel = new_channel().await;
    let ingress = TestIngress::start(IngressOptions {
        max_body_bytes: LIMIT,
    })
    .await;
    ingress.add(&channel);
    let to = path(&channel);

    // 400: not a valid CloudEvent, with a reason.
    let without = |name: &str| -> Built {
        minimal("bad")
            .into_iter()
            .filter(|(n, _)| *n != name)
            .collect()
    };
    let mut old_version = minimal("bad");
    old_version[0].1 = "0.2".into();
    let mut bad_encoding = minimal("bad");
    bad_encoding.push(("ce-subject", "%E2".into()));
    let structured = |ct: &str| vec![("content-type", ct.to_string())];
    let invalid: Vec<(Built, &[u8], &str)> = vec![
        (without("ce-id"), b"x", "\"id\""),
        (without("ce-source"), b"x", "\"source\""),
        (without("ce-type"), b"x", "\"type\""),
        (without("ce-specversion"), b"x", "\"specversion\""),
        (Vec::new(), b"plain body", "\"specversion\""),
        (old_version, b"x", "0.2"),
        (bad_encoding, b"x", "ce-subject"),
        (
            structured("application/cloudevents+json"),
            b"{\"id\":",
            "structured",
        ),
        (
            structured("application/cloudevents+json"),
            br#"{"specversion":"1.0","source":"/s","type":"t"}"#,
            "structured",
        ),
        (
            structured("application/cloudevents+json"),
            br#"{"specversion":"9.9","id":"1","source":"/s","type":"t"}"#,
            "9.9",
        ),
        (
            structured("application/cloudevents-batch+json"),
            br#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"}]"#,
            "batch",
        ),
        (structured("application/cloudevents+avro"), b"x", "avro"),
    ];
    let invalid_count = invalid.len();
    for (index, (headers, body, reason)) in invalid.into_iter().enumerate() {
        let (status, text) = ingress.post(&to, &borrowed(&headers), body.to_vec()).await;
        assert_eq!(status, 400, "case #{index}: {text}");
        assert!(
            text.contains(reason),
            "case #{index}: {reason:?} not in {text:?}"
        );
    }

    // 404: no such channel, by path or host.
    let unknown_host = format!("nope-kn-channel.{}.svc.cluster.local", channel.id.namespace);
    let other_ns = format!("{}-kn-channel.other.svc.cluster.local", channel.id.name);
    let client = http_client();
    for (to, host) in [
        (format!("/{}/nope", channel.id.namespace), None),
        (format!("/other/{}", channel.id.name), None),
        ("/".to_string(), Some(unknown_host)),
        ("/".to_string(), Some(other_ns)),
    ] {
        let mut request = client
            .post(ingress.url(&to))
            .headers(header_map(&borrowed(&minimal("bad"))));
        if let Some(host) = &host {
            request = request.header("host", host);
        }
        let response = request.send().await.expect("POST");
        assert_eq!(response.status().as_u16(), 404, "{to} {host:?}");
    }

    // 405 for other methods; OPTIONS answers the webhook handshake.
    for method in ["GET", "PUT", "DELETE", "PATCH", "HEAD"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = client
            .request(method.clone(), ingress.url(&to))
            .headers(header_map(&borrowed(&minimal("bad"))))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 405, "{method}");
        assert_eq!(
            header(&response, "allow"),
            Some("POST, OPTIONS"),
            "{method}"
        );
    }
    for at in [to.clone(), "/anywhere".to_string()] {
        let response = client
            .request(reqwest::Method::OPTIONS, ingress.url(&at))
            .header("WebHook-Request-Origin", "eventemitter.example.com")
            .send()
            .await
            .expect("OPTIONS");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(header(&response, "allow"), Some("POST, OPTIONS"));
        assert_eq!(header(&response, "webhook-allowed-origin"), Some("*"));
        assert_eq!(header(&response, "webhook-allowed-rate"), Some("*"));
    }

    // 413: a body over the limit, whether its length is declared or it arrives chunked.
    let mut binary = minimal("big");
    binary.push(("content-type", "application/octet-stream".into()));
    let (status, _) = ingress
        .post(&to, &borrowed(&binary), vec![7u8; LIMIT + 1])
        .await;
    assert_eq!(status, 413);
    let (status, elapsed) = raw_request(
        ingress.addr,
        &format!(
            "POST {to} HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: 1\r\n\
             ce-source: /s\r\nce-type: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            100 * 1024 * 1024
        )
        .into_bytes(),
    )
    .await;
    assert_eq!(
        status, 413,
        "declared length over the limit, body never sent"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let mut chunked = format!(
        "POST {to} HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: 1\r\n\
         ce-source: /s\r\nce-type: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..2 {
        chunked.extend_from_slice(format!("{:x}\r\n", 800).as_bytes());
        chunked.extend_from_slice(&[b'a'; 800]);
        chunked.extend_from_slice(b"\r\n");
    }
    let (status, _) = raw_request(ingress.addr, &chunked).await;
    assert_eq!(status, 413, "chunked body over the limit");

    // The marker: a body of exactly the limit is accepted, and is the topic's first record.
    let mut marker = minimal("marker");
    marker.push(("content-type", "application/octet-stream".into()));
    let (status, text) = ingress
        .post(&to, &borrowed(&marker), vec![1u8; LIMIT])
        .await;
    assert_eq!(status, 202, "{text}");
    let records = consume(&channel, 1).await;
    assert_eq!(records[0].header_str("ce_id"), Some("marker"));
    assert_eq!(records[0].offset, 0, "a refused request was written");
    assert_eq!(records[0].value.as_ref().map(Vec::len), Some(LIMIT));

    assert_eq!(ingress.count(&channel, "400"), invalid_count as f64);
    assert_eq!(ingress.count(&channel, "413"), 3.0);
    assert_eq!(ingress.count(&channel, "202"), 1.0);
    assert_eq!(ingress.count(&channel, "503"), 0.0);
}

#[tokio::test]
async fn default_limit_is_4_mib_and_large_events_are_stored_whole() {
    let channel = new_channel().await;
    let ingress = TestIngress::start(IngressOptions::default()).await;
    assert_eq!(ingress::DEFAULT_MAX_BODY_BYTES, 4 * 1024 * 1024);
    ingress.add(&channel);
    let to = path(&channel);

    let (status, _) = raw_request(
        ingress.addr,
        &format!(
            "POST {to} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            4 * 1024 * 1024 + 1
        )
        .into_bytes(),
    )
    .await;
    assert_eq!(status, 413);

    // Larger than librdkafka's default record limit (1 MB), well within the body limit.
    let value: Vec<u8> = (0..2 * 1024 * 1024 + 3).map(|i| (i % 251) as u8).collect();
    let mut headers = minimal("large");
    headers.push(("content-type", "application/octet-stream".into()));
    let (status, text) = ingress.post(&to, &borrowed(&headers), value.clone()).await;
    assert_eq!(status, 202, "{text}");
    let records = consume(&channel, 1).await;
    assert_eq!(records[0].header_str("ce_id"), Some("large"));
    assert!(
        records[0].value.as_deref() == Some(&value[..]),
        "value differs"
    );
}

#[tokio::test]
async fn routes_change_while_serving() {
    let channel = new_channel().await;
    let ingress = TestIngress::start(IngressOptions::default()).await;
    let to = path(&channel);
    let send = |id: &'static str| {
        let mut headers = minimal(id);
        headers.push(("content-type", "text/plain".into()));
        let ingress = &ingress;
        let to = to.clone();
        async move {
            ingress
                .post(&to, &borrowed(&headers), b"x".to_vec())
                .await
                .0
        }
    };

    assert_eq!(send("before").await, 404);
    ingress.add(&channel);
    assert_eq!(send("first").await, 202);
    assert!(ingress.routes.get(&channel.id).is_some());
    assert!(ingress.routes.remove(&channel.id));
    assert!(!ingress.routes.remove(&channel.id), "removed twice");
    assert_eq!(send("removed").await, 404);
    ingress.add(&channel);
    assert_eq!(send("second").await, 202);

    let records = consume(&channel, 2).await;
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r.header_str("ce_id").expect("ce_id"))
        .collect();
    assert_eq!(ids, ["first", "second"]);
}

#[tokio::test]
async fn unreachable_cluster_answers_503() {
    let mut kafka = KafkaConnection::plaintext("127.0.0.1:1");
    kafka.properties = BTreeMap::from([("message.timeout.ms".to_string(), "1500".to_string())]);
    let channel = plan(kafka);
    let ingress = TestIngress::start(IngressOptions::default()).await;
    ingress.add(&channel);

    let mut headers = minimal("lost");
    headers.push(("content-type", "text/plain".into()));
    let start = Instant::now();
    let (status, text) = ingress
        .post(&path(&channel), &borrowed(&headers), b"x".to_vec())
        .await;
    assert_eq!(status, 503, "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(ingress.count(&channel, "503"), 1.0);
    assert_eq!(ingress.count(&channel, "202"), 0.0);
}

/// Rough latency and throughput of the ingress in front of the test broker, for tuning; client,
/// ingress and broker share the machine, so the numbers are a floor. Run by hand, in release:
/// `cargo test --release --test channel_ingress measure -- --ignored --nocapture`, with
/// `INGRESS_BENCH_KAFKA_CONFIG=linger.ms=5,...` to compare producer settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run by hand in release mode"]
async fn measure_latency_and_throughput() {
    const SEQUENTIAL: usize = 2_000;
    const CLIENTS: usize = 256;
    const PER_CLIENT: usize = 100;
    let overrides = std::env::var("INGRESS_BENCH_KAFKA_CONFIG")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let channel = new_channel().await;
    // The ingress gets its own runtime (as in the bridge) so that its threads' CPU time can be
    // told apart from the client's.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ingress")
        .enable_all()
        .build()
        .expect("ingress runtime");
    let ingress = TestIngress::start_on(
        server.handle(),
        IngressOptions::default(),
        ClientSettings { overrides },
    );
    ingress.add(&channel);
    // A minimal keep-alive HTTP/1.1 client: a general-purpose one costs more CPU per request
    // than the ingress and would measure itself.
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: bench\r\nce-specversion: 1.0\r\nce-id: bench\r\n\
         ce-source: /test\r\nce-type: dev.example.test\r\nce-partitionkey: k\r\n\
         content-type: application/json\r\ncontent-length: 256\r\n\r\n",
        path(&channel)
    )
    .into_bytes();
    request.extend_from_slice(&[b'x'; 256]);
    let request: Arc<[u8]> = request.into();
    let addr = ingress.addr;

    let mut one = BenchClient::connect(addr).await;
    // Warm up the connection and the producer's broker connection.
    for _ in 0..100 {
        assert_eq!(one.post(&request).await, 202);
    }
    let tansu = broker().await.pid();
    let mut cpu = CpuUse::start(tansu);
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    let start = Instant::now();
    for _ in 0..SEQUENTIAL {
        let sent = Instant::now();
        assert_eq!(one.post(&request).await, 202);
        latencies.push(sent.elapsed());
    }
    report("1 client", &mut latencies, start.elapsed());
    cpu.report();

    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(BenchClient::connect(addr).await);
    }
    cpu.last = cpu.now();
    let start = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let request = Arc::clone(&request);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(PER_CLIENT);
                for _ in 0..PER_CLIENT {
                    let sent = Instant::now();
                    assert_eq!(client.post(&request).await, 202);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(CLIENTS * PER_CLIENT);
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    report(
        &format!("{CLIENTS} clients"),
        &mut latencies,
        start.elapsed(),
    );
    cpu.report();
    drop(ingress);
    // A runtime cannot be dropped from async code.
    server.shutdown_background();
}

/// One keep-alive connection sending a fixed request and reading bodiless answers.
struct BenchClient {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl BenchClient {
    async fn connect(addr: SocketAddr) -> BenchClient {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        BenchClient {
            stream,
            buf: vec![0; 4096],
        }
    }

    /// Sends `request` and returns the status of the answer, which must have no body.
    async fn post(&mut self, request: &[u8]) -> u16 {
        self.stream.write_all(request).await.expect("send");
        let mut len = 0;
        loop {
            let n = tokio::time::timeout(
                Duration::from_secs(30),
                self.stream.read(&mut self.buf[len..]),
            )
            .await
            .expect("an answer within 30 s")
            .expect("read");
            assert!(n > 0, "the ingress closed the connection");
            len += n;
            if self.buf[..len].ends_with(b"\r\n\r\n") {
                break;
            }
        }
        std::str::from_utf8(&self.buf[9..12])
            .ok()
            .and_then(|code| code.parse().ok())
            .expect("a status line")
    }
}

/// CPU seconds used by the ingress's threads, librdkafka's, the client's (the rest of this
/// process) and the broker's since the last report.
struct CpuUse {
    broker: u32,
    last: [f64; 5],
}

impl CpuUse {
    fn start(broker: u32) -> CpuUse {
        let mut cpu = CpuUse {
            broker,
            last: [0.0; 5],
        };
        cpu.last = cpu.now();
        cpu
    }

    fn now(&self) -> [f64; 5] {
        let mut groups = [0.0; 5];
        for task in std::fs::read_dir("/proc/self/task")
            .into_iter()
            .flatten()
            .flatten()
        {
            let tid = task.file_name().to_string_lossy().into_owned();
            let stat =
                std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
            let group = if stat.contains("(ingress") {
                0
            } else if stat.contains("(rdk:") || stat.contains("(producer") {
                1
            } else {
                2
            };
            groups[group] += stat_cpu_seconds(&stat);
            if group == 0 {
                let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status"))
                    .unwrap_or_default();
                for line in status.lines() {
                    if let Some(n) = line.strip_prefix("voluntary_ctxt_switches:") {
                        groups[4] += n.trim().parse::<f64>().unwrap_or(0.0);
                    }
                }
            }
        }
        let broker = std::fs::read_to_string(format!("/proc/{}/stat", self.broker));
        groups[3] = stat_cpu_seconds(&broker.unwrap_or_default());
        groups
    }

    fn report(&mut self) {
        let now = self.now();
        let used: Vec<f64> = now.iter().zip(self.last).map(|(n, l)| n - l).collect();
        println!(
            "  cpu: ingress {:.2}s, librdkafka {:.2}s, client {:.2}s, broker {:.2}s; \
             ingress threads slept {} times",
            used[0], used[1], used[2], used[3], used[4]
        );
        self.last = now;
    }
}

/// utime + stime from a /proc stat line (in clock ticks of 1/100 s).
fn stat_cpu_seconds(stat: &str) -> f64 {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Fields 14 and 15 of stat(5), counted here from field 3 (after the command name).
    (ticks(11) + ticks(12)) / 100.0
}

fn report(label: &str, latencies: &mut [Duration], elapsed: Duration) {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{label}: {} events in {elapsed:.2?} = {:.0}/s; p50 {:.2?} p99 {:.2?} max {:.2?}",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
        at(1.0),
    );
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Sends `request` as raw bytes (it must ask for `Connection: close`) and reads the answer until
/// the server closes; returns its status and how long it took.
async fn raw_request(addr: SocketAddr, request: &[u8]) -> (u16, Duration) {
    let start = Instant::now();
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("send request");
        let mut response = Vec::new();
        // The server may close while the request is still being written: what it answered
        // before that is all that matters.
        let _ = stream.read_to_end(&mut response).await;
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("the ingress answered and closed within 10 s");
    let text = String::from_utf8_lossy(&response);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    (status, start.elapsed())
}
