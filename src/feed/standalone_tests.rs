//! Standalone feed tests: inline manifests in, plans or located errors out.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::*;
use crate::delivery::policy::{BackoffPolicy, DeliveryPolicy, Target};
use crate::engine::plan::{InitialOffset, KafkaConnection, KeyType, Ordering, ResourceId};
use crate::feed::files::parse_documents;
use crate::feed::resolve::default_consumer_group;

const SOURCE: &str = "\
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata: {name: src, namespace: ns}
spec:
  bootstrapServers: [kafka:9092]
  topics: [t]
  sink: {uri: 'http://sink.example/events'}
";

const SECRET: &str = "\
apiVersion: v1
kind: Secret
metadata: {name: auth, namespace: ns}
data: {user: dXNlcg==, ca: Q0E=, mech: U0NSQU0tU0hBLTUxMg==, password: b2xk}
stringData: {password: pw, cert: CERT, key: KEY, lower: scram-sha-256, gssapi: GSSAPI}
";

fn plan(text: &str) -> Result<Plan, FeedError> {
    plan_from_documents(&parse_documents(Path::new("test.yaml"), text).unwrap())
}

fn only_source(text: &str) -> SourcePlan {
    let plan = plan(text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.sources.len(), 1, "{plan:?}");
    (*plan.sources[0]).clone()
}

/// SOURCE with `patch` (YAML) merged in: maps merge, other values replace, null deletes.
fn patched(patch: &str) -> String {
    let mut base: Value = serde_yaml_ng::from_str(SOURCE).unwrap();
    merge(&mut base, serde_yaml_ng::from_str(patch).unwrap());
    serde_yaml_ng::to_string(&base).unwrap()
}

/// SOURCE with `spec.sink` replaced by `sink` (YAML).
fn with_sink(sink: &str) -> String {
    let mut base: Value = serde_yaml_ng::from_str(SOURCE).unwrap();
    base["spec"]["sink"] = serde_yaml_ng::from_str(sink).unwrap();
    serde_yaml_ng::to_string(&base).unwrap()
}

pub(super) fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    base.remove(&key);
                } else {
                    merge(base.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        (base, patch) => *base = patch,
    }
}

pub(super) fn url(text: &str) -> url::Url {
    url::Url::parse(text).unwrap()
}

#[test]
fn knative_defaults() {
    let source = only_source(SOURCE);
    let id = ResourceId::new("ns", "src");
    assert_eq!(source.id, id);
    assert_eq!(source.kafka, KafkaConnection::plaintext("kafka:9092"));
    assert_eq!(source.topics, ["t"]);
    assert_eq!(source.initial_offset, InitialOffset::Latest);
    assert_eq!(source.consumers, 1);
    assert_eq!(source.ordering, Ordering::Ordered);
    assert_eq!(source.delivery, DeliveryPolicy::source_default());
    assert_eq!(source.key_type, KeyType::String);
    assert!(source.ce_overrides.is_empty());
    assert_eq!(source.sink, Target::new(url("http://sink.example/events")));
    assert_eq!(source.consumer_group, default_consumer_group(&id));
    assert_eq!(
        source.event_source("t"),
        "/apis/v1/namespaces/ns/kafkasources/src#t"
    );

    let defaulted_ns = only_source(&patched("metadata: {namespace: null}"));
    assert_eq!(defaulted_ns.id, ResourceId::new("default", "src"));
    assert_eq!(source.generation, 0, "no metadata.generation");
    assert_eq!(
        only_source(&patched("metadata: {generation: 4}")).generation,
        4
    );
}

#[test]
fn default_consumer_group_is_stable_and_distinct() {
    let group = default_consumer_group(&ResourceId::new("ns", "src"));
    let uuid = group.strip_prefix("knative-kafka-source-").unwrap();
    let uuid = uuid::Uuid::parse_str(uuid).unwrap();
    assert_eq!(uuid.get_version_num(), 5);
    assert_eq!(group, default_consumer_group(&ResourceId::new("ns", "src")));
    assert_ne!(
        group,
        default_consumer_group(&ResourceId::new("ns", "src2"))
    );
    assert_ne!(
        group,
        default_consumer_group(&ResourceId::new("ns2", "src"))
    );
    // Equal across loads: a restart resumes the same group.
    assert_eq!(
        only_source(SOURCE).consumer_group,
        only_source(SOURCE).consumer_group
    );
}

#[test]
fn spec_fields_map_to_the_plan() {
    type Show = fn(&SourcePlan) -> String;
    let cases: [(&str, Show, &str); 16] = [
        (
            "spec: {initialOffset: earliest}",
            |p| format!("{:?}", p.initial_offset),
            "Earliest",
        ),
        (
            "spec: {initialOffset: latest}",
            |p| format!("{:?}", p.initial_offset),
            "Latest",
        ),
        ("spec: {consumers: 3}", |p| p.consumers.to_string(), "3"),
        (
            "spec: {ordering: unordered}",
            |p| format!("{:?}", p.ordering),
            "Unordered",
        ),
        (
            "spec: {ordering: ordered}",
            |p| format!("{:?}", p.ordering),
            "Ordered",
        ),
        (
            "spec: {consumerGroup: my-group}",
            |p| p.consumer_group.clone(),
            "my-group",
        ),
        ("spec: {topics: [a, b]}", |p| p.topics.join(" "), "a b"),
        (
            "spec: {bootstrapServers: [a:1, b:2]}",
            |p| p.kafka.bootstrap_servers.clone(),
            "a:1,b:2",
        ),
        (
            "spec: {bootstrapServers: [embedded]}",
            |p| p.kafka.is_embedded().to_string(),
            "true",
        ),
        (
            "spec: {ceOverrides: {extensions: {team: a, env1: b}}}",
            |p| format!("{:?}", p.ce_overrides),
            r#"{"env1": "b", "team": "a"}"#,
        ),
        (
            "metadata: {labels: {kafkasources.sources.knative.dev/key-type: int}}",
            |p| format!("{:?}", p.key_type),
            "Int",
        ),
        (
            "metadata: {labels: {kafkasources.sources.knative.dev/key-type: float}}",
            |p| format!("{:?}", p.key_type),
            "Float",
        ),
        (
            "metadata: {labels: {kafkasources.sources.knative.dev/key-type: byte-array}}",
            |p| format!("{:?}", p.key_type),
            "ByteArray",
        ),
        (
            "metadata: {labels: {kafkasources.sources.knative.dev/key-type: ''}}",
            |p| format!("{:?}", p.key_type),
            "String",
        ),
        (
            "apiVersion: sources.knative.dev/v1",
            |p| p.id.to_string(),
            "ns/src",
        ),
        (
            "spec: {sink: {uri: 'https://sink.example', CACerts: PEM}}",
            |p| format!("{} {:?}", p.sink.url, p.sink.ca_certs),
            r#"https://sink.example/ Some("PEM")"#,
        ),
    ];
    for (patch, show, want) in cases {
        assert_eq!(show(&only_source(&patched(patch))), want, "{patch}");
    }
    // An empty consumerGroup is unset, as in Knative.
    let empty_group = only_source(&patched("spec: {consumerGroup: ''}"));
    assert_eq!(
        empty_group.consumer_group,
        default_consumer_group(&empty_group.id)
    );
}

#[test]
fn delivery_follows_knative_semantics() {
    let ms = Duration::from_millis;
    let given = |retry, backoff_policy, backoff_delay, timeout, retry_after_max| DeliveryPolicy {
        retry,
        backoff_policy,
        backoff_delay,
        timeout: Some(timeout),
        retry_after_max,
        dead_letter: None,
    };
    let exp = BackoffPolicy::Exponential;
    let cases = [
        // Present but empty: no retries (the dispatcher retries only when `retry` is set).
        ("{}", given(0, exp, ms(200), ms(600_000), None)),
        ("{retry: 3}", given(3, exp, ms(200), ms(600_000), None)),
        ("{retry: 0}", given(0, exp, ms(200), ms(600_000), None)),
        ("{timeout: PT5S}", given(0, exp, ms(200), ms(5000), None)),
        (
            "{retry: 5, backoffPolicy: linear, backoffDelay: PT0.3S, timeout: PT1M, retryAfterMax: PT0S}",
            given(5, BackoffPolicy::Linear, ms(300), ms(60_000), Some(ms(0))),
        ),
        (
            "{retry: 2, backoffPolicy: exponential, backoffDelay: PT2S, retryAfterMax: PT30S}",
            given(2, exp, ms(2000), ms(600_000), Some(ms(30_000))),
        ),
    ];
    for (delivery, want) in cases {
        let source = only_source(&patched(&format!("spec: {{delivery: {delivery}}}")));
        assert_eq!(source.delivery, want, "{delivery}");
    }
    let with_dls = only_source(&patched(
        "spec: {delivery: {deadLetterSink: {uri: 'http://dls.example/x'}}}",
    ));
    assert_eq!(
        with_dls.delivery.dead_letter,
        Some(Target::new(url("http://dls.example/x")))
    );
}

/// Asserts the load fails naming the file, the resource, the field and the problem.
fn assert_invalid(text: &str, resource: &str, field: &str, problem: &str) {
    let err = plan(text).expect_err(field);
    let FeedError::Invalid {
        doc,
        resource: got_resource,
        field: got_field,
        ..
    } = &err
    else {
        panic!("{field}: unexpected error {err}");
    };
    assert_eq!(doc.path, Path::new("test.yaml"), "{err}");
    assert_eq!(
        (got_resource.as_str(), got_field.as_str()),
        (resource, field),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.starts_with("test.yaml (document 1): "), "{message}");
    assert!(
        message.contains(&format!("{resource}: {field}: ")),
        "{message}"
    );
    assert!(
        message.contains(problem),
        "{field}: {message:?} lacks {problem:?}"
    );
}

#[test]
fn invalid_sources_are_reported_with_file_resource_and_field() {
    let cases = [
        ("spec: {topics: null}", "spec.topics", "required"),
        ("spec: {topics: []}", "spec.topics", "at least one"),
        (
            "spec: {topics: ['']}",
            "spec.topics[0]",
            "must not be empty",
        ),
        (
            "spec: {bootstrapServers: null}",
            "spec.bootstrapServers",
            "required",
        ),
        (
            "spec: {bootstrapServers: [embedded, 'a:1']}",
            "spec.bootstrapServers",
            "only",
        ),
        ("spec: {sink: null}", "spec.sink", "`ref` or a `uri`"),
        (
            "spec: {sink: {uri: /relative}}",
            "spec.sink.uri",
            "relative",
        ),
        (
            "spec: {sink: {uri: 'ftp://x.example'}}",
            "spec.sink.uri",
            "http or https",
        ),
        (
            "spec: {sink: {uri: 'http://'}}",
            "spec.sink.uri",
            "not a valid URL",
        ),
        (
            "spec: {sink: {uri: 'mailto:a@b'}}",
            "spec.sink.uri",
            "http or https",
        ),
        ("spec: {consumers: 0}", "spec.consumers", "less than 1"),
        ("spec: {consumers: -2}", "spec.consumers", "less than 1"),
        ("spec: {consumers: many}", "spec.consumers", "invalid type"),
        ("spec: {topics: topic}", "spec.topics", "invalid type"),
        (
            "spec: {initialOffset: middle}",
            "spec.initialOffset",
            "unknown variant",
        ),
        (
            "spec: {ordering: random}",
            "spec.ordering",
            "unknown variant",
        ),
        (
            "spec: {delivery: {retry: -1}}",
            "spec.delivery.retry",
            "negative",
        ),
        (
            "spec: {delivery: {retry: 1.5}}",
            "spec.delivery.retry",
            "invalid type",
        ),
        (
            "spec: {delivery: {backoffPolicy: random}}",
            "spec.delivery.backoffPolicy",
            "unknown variant",
        ),
        (
            "spec: {delivery: {backoffDelay: -PT1S}}",
            "spec.delivery.backoffDelay",
            "negative",
        ),
        (
            "spec: {delivery: {backoffDelay: 10s}}",
            "spec.delivery.backoffDelay",
            "ISO-8601",
        ),
        (
            "spec: {delivery: {timeout: PT0S}}",
            "spec.delivery.timeout",
            "greater than zero",
        ),
        (
            "spec: {delivery: {timeout: soon}}",
            "spec.delivery.timeout",
            "ISO-8601",
        ),
        (
            "spec: {delivery: {retryAfterMax: -PT5S}}",
            "spec.delivery.retryAfterMax",
            "negative",
        ),
        (
            "spec: {delivery: {deadLetterSink: {uri: /x}}}",
            "spec.delivery.deadLetterSink.uri",
            "relative",
        ),
        (
            "spec: {delivery: {deadLetterSink: {}}}",
            "spec.delivery.deadLetterSink",
            "neither",
        ),
        (
            "metadata: {labels: {kafkasources.sources.knative.dev/key-type: long}}",
            "metadata.labels.kafkasources.sources.knative.dev/key-type",
            "\"long\" is not one of string, int, float, byte-array",
        ),
        (
            "spec: {ceOverrides: {extensions: {bad-name: x}}}",
            "spec.ceOverrides.extensions.bad-name",
            "alphanumeric",
        ),
        (
            "spec: {sink: {ref: {kind: Service, name: s}}}",
            "spec.sink.ref.apiVersion",
            "required",
        ),
        (
            "spec: {sink: {ref: {apiVersion: v1, name: s}}}",
            "spec.sink.ref.kind",
            "required",
        ),
        (
            "spec: {sink: {ref: {apiVersion: v1, kind: Service}}}",
            "spec.sink.ref.name",
            "required",
        ),
        (
            "spec: {sink: {ref: {apiVersion: v1, kind: Service, name: s, namespace: other}}}",
            "spec.sink.ref.namespace",
            "differs",
        ),
        (
            "spec: {net: {sasl: {enable: true}}}",
            "spec.net.sasl.user.secretKeyRef",
            "required when sasl.enable is true",
        ),
        (
            "spec: {net: {tls: {enable: yes}}}",
            "spec.net.tls.enable",
            "invalid type",
        ),
    ];
    for (patch, field, problem) in cases {
        assert_invalid(&patched(patch), "KafkaSource ns/src", field, problem);
    }
    assert_invalid(
        &patched("metadata: {name: null, namespace: null}"),
        "KafkaSource default/(unnamed)",
        "metadata.name",
        "required",
    );
}

#[test]
fn unresolvable_ref_says_standalone_cannot_and_suggests_uri() {
    let text = patched(
        "spec: {sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: missing}}}",
    );
    assert_invalid(
        &text,
        "KafkaSource ns/src",
        "spec.sink.ref",
        "standalone mode",
    );
    let message = plan(&text).unwrap_err().to_string();
    assert!(
        message.contains("serving.knative.dev/v1 Service ns/missing"),
        "{message}"
    );
    assert!(message.contains("`uri`"), "{message}");
}

const ADDRESSABLES: &str = "\
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: svc, namespace: ns}
status:
  address: {url: 'http://svc.ns.svc.cluster.local', CACerts: SVC-CA}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: svc}
status:
  address: {url: 'http://svc.default.svc.cluster.local'}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: b, namespace: ns}
status:
  address: {url: 'http://broker-ingress/ns/b'}
  addresses:
  - {name: http, url: 'http://broker-ingress/ns/b'}
  - {name: https, url: 'https://broker-ingress/ns/b', CACerts: BROKER-CA}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: pending, namespace: ns}
status: {conditions: [{type: Ready, status: Unknown}]}
";

fn with_addressables(source: String) -> String {
    format!("{source}---\n{ADDRESSABLES}")
}

#[test]
fn sink_refs_resolve_to_documents_in_the_files() {
    let svc = "{apiVersion: serving.knative.dev/v1, kind: Service, name: svc}";
    let broker = "{apiVersion: eventing.knative.dev/v1, kind: Broker, name: b}";
    let cases = [
        (
            format!("{{ref: {svc}}}"),
            "http://svc.ns.svc.cluster.local/",
            Some("SVC-CA"),
        ),
        (
            format!("{{ref: {svc}, uri: /path}}"),
            "http://svc.ns.svc.cluster.local/path",
            Some("SVC-CA"),
        ),
        (
            format!("{{ref: {svc}, CACerts: OWN}}"),
            "http://svc.ns.svc.cluster.local/",
            Some("OWN"),
        ),
        // Relative URIs resolve as RFC 3986 references, as Go's ResolveReference does.
        (
            format!("{{ref: {broker}, uri: extra}}"),
            "http://broker-ingress/ns/extra",
            None,
        ),
        (
            format!("{{ref: {broker}, uri: '?q=1'}}"),
            "http://broker-ingress/ns/b?q=1",
            None,
        ),
        (
            "{ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: b, address: https}}"
                .to_owned(),
            "https://broker-ingress/ns/b",
            Some("BROKER-CA"),
        ),
        (
            "{ref: {group: eventing.knative.dev, kind: Broker, name: b, namespace: ns}}".to_owned(),
            "http://broker-ingress/ns/b",
            None,
        ),
    ];
    for (sink, want_url, want_ca) in cases {
        let source = only_source(&with_addressables(with_sink(&sink)));
        let want = Target {
            url: url(want_url),
            ca_certs: want_ca.map(Into::into),
        };
        assert_eq!(source.sink, want, "{sink}");
    }

    let dls = only_source(&with_addressables(patched(&format!(
        "spec: {{delivery: {{deadLetterSink: {{ref: {broker}, uri: /dlq}}}}}}"
    ))));
    assert_eq!(
        dls.delivery.dead_letter.unwrap().url,
        url("http://broker-ingress/dlq")
    );
}

#[test]
fn sink_ref_errors() {
    let cases = [
        (
            "{ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: svc}, uri: 'http://abs'}",
            "spec.sink.uri",
            "absolute",
        ),
        (
            "{ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: pending}}",
            "spec.sink.ref",
            "has no status.address.url",
        ),
        (
            "{ref: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: b, address: grpc}}",
            "spec.sink.ref",
            "no status.addresses entry named \"grpc\"",
        ),
        (
            // Same name, other version: not the same object.
            "{ref: {apiVersion: serving.knative.dev/v2, kind: Service, name: svc}}",
            "spec.sink.ref",
            "no such document",
        ),
    ];
    for (sink, field, problem) in cases {
        let text = with_addressables(with_sink(sink));
        assert_invalid(&text, "KafkaSource ns/src", field, problem);
    }
}

fn net_case(net: &str) -> Result<BTreeMap<String, String>, FeedError> {
    let text = format!("{}---\n{SECRET}", patched(&format!("spec: {{net: {net}}}")));
    plan(&text).map(|p| p.sources[0].kafka.properties.clone())
}

#[test]
fn sasl_and_tls_become_librdkafka_properties() {
    let r = |key: &str| format!("{{secretKeyRef: {{name: auth, key: {key}}}}}");
    let sasl = |extra: &str| {
        format!(
            "sasl: {{enable: true, user: {}, password: {}{extra}}}",
            r("user"),
            r("password")
        )
    };
    let credentials = [("sasl.username", "user"), ("sasl.password", "pw")];
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("{}".into(), vec![]),
        // Values present but not enabled: still plaintext.
        (
            format!("{{tls: {{enable: false, caCert: {}}}}}", r("ca")),
            vec![],
        ),
        (
            format!("{{{}}}", sasl("")),
            [
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "PLAIN"),
            ]
            .into_iter()
            .chain(credentials)
            .collect(),
        ),
        (
            format!(
                "{{{}, tls: {{enable: true}}}}",
                sasl(&format!(", type: {}", r("mech")))
            ),
            [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
            ]
            .into_iter()
            .chain(credentials)
            .collect(),
        ),
        (
            format!(
                "{{{}, tls: {{enable: true, caCert: {}}}}}",
                sasl(&format!(", type: {}", r("lower"))),
                r("ca")
            ),
            [
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("ssl.ca.pem", "CA"),
            ]
            .into_iter()
            .chain(credentials)
            .collect(),
        ),
        (
            format!("{{tls: {{enable: true, caCert: {}}}}}", r("ca")),
            vec![("security.protocol", "SSL"), ("ssl.ca.pem", "CA")],
        ),
        (
            format!(
                "{{tls: {{enable: true, caCert: {}, cert: {}, key: {}}}}}",
                r("ca"),
                r("cert"),
                r("key")
            ),
            vec![
                ("security.protocol", "SSL"),
                ("ssl.ca.pem", "CA"),
                ("ssl.certificate.pem", "CERT"),
                ("ssl.key.pem", "KEY"),
            ],
        ),
        (
            "{tls: {enable: true, caCert: {secretKeyRef: {name: nope, key: ca, optional: true}}}}"
                .into(),
            vec![("security.protocol", "SSL")],
        ),
    ];
    for (net, want) in cases {
        let want: BTreeMap<String, String> = want
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(
            net_case(&net).unwrap_or_else(|e| panic!("{e}")),
            want,
            "{net}"
        );
    }
}

#[test]
fn net_errors_name_the_secret_and_field() {
    let cases = [
        (
            "{sasl: {enable: true, user: {secretKeyRef: {name: missing, key: user}}}}",
            "spec.net.sasl.user.secretKeyRef",
            "Secret ns/missing not found",
        ),
        (
            "{sasl: {enable: true, user: {secretKeyRef: {name: auth, key: nokey}}}}",
            "spec.net.sasl.user.secretKeyRef",
            "Secret ns/auth has no key \"nokey\"",
        ),
        (
            "{sasl: {enable: true, user: {secretKeyRef: {name: auth, key: user}}}}",
            "spec.net.sasl.password.secretKeyRef",
            "required",
        ),
        (
            "{sasl: {enable: true, type: {secretKeyRef: {name: auth, key: gssapi}}, \
             user: {secretKeyRef: {name: auth, key: user}}, password: {secretKeyRef: {name: auth, key: password}}}}",
            "spec.net.sasl.type",
            "unsupported SASL mechanism \"GSSAPI\"",
        ),
        (
            "{tls: {enable: true, cert: {secretKeyRef: {name: auth, key: cert}}}}",
            "spec.net.tls.key.secretKeyRef",
            "required when tls.cert is set",
        ),
        (
            "{tls: {enable: true, key: {secretKeyRef: {name: auth, key: key}}}}",
            "spec.net.tls.cert.secretKeyRef",
            "required when tls.key is set",
        ),
        (
            "{tls: {enable: true, caCert: {secretKeyRef: {name: auth}}}}",
            "spec.net.tls.caCert.secretKeyRef.key",
            "required",
        ),
    ];
    for (net, field, problem) in cases {
        let text = format!("{}---\n{SECRET}", patched(&format!("spec: {{net: {net}}}")));
        assert_invalid(&text, "KafkaSource ns/src", field, problem);
    }
}

#[test]
fn secrets_are_looked_up_in_the_sources_namespace() {
    let net = "spec: {net: {tls: {enable: true, caCert: {secretKeyRef: {name: auth, key: ca}}}}}";
    let other_ns = format!(
        "{}---\n{}",
        patched(net),
        SECRET.replace("namespace: ns", "namespace: other")
    );
    assert_invalid(
        &other_ns,
        "KafkaSource ns/src",
        "spec.net.tls.caCert.secretKeyRef",
        "not found",
    );
}

#[test]
fn invalid_and_duplicate_secrets_are_errors() {
    let bad = format!("{SOURCE}---\n{}", SECRET.replace("dXNlcg==", "'%%%'"));
    let err = plan(&bad).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("test.yaml (document 2): Secret ns/auth: data.user: "),
        "{message}"
    );
    assert!(message.contains("base64"), "{message}");

    let typed = format!(
        "{SOURCE}---\n{}",
        SECRET.replace("{password: pw,", "{password: [pw],")
    );
    let message = plan(&typed).unwrap_err().to_string();
    assert!(
        message.contains("Secret ns/auth: stringData.password: invalid type"),
        "{message}"
    );

    let twice = format!("{SECRET}---\n{SECRET}");
    let message = plan(&twice).unwrap_err().to_string();
    assert_eq!(
        message,
        "test.yaml (document 2): Secret ns/auth is defined twice (first in test.yaml (document 1))"
    );
}

#[test]
fn the_same_source_twice_is_an_error() {
    for second in [
        SOURCE.to_owned(),
        patched("apiVersion: sources.knative.dev/v1"),
    ] {
        let text = format!("{SOURCE}---\n{second}");
        let err = plan(&text).unwrap_err();
        assert!(matches!(err, FeedError::Duplicate { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "test.yaml (document 2): KafkaSource ns/src is defined twice \
             (first in test.yaml (document 1))"
        );
    }
    // Same name in another namespace is another source.
    let text = format!("{SOURCE}---\n{}", patched("metadata: {namespace: other}"));
    assert_eq!(plan(&text).unwrap().sources.len(), 2);
}

#[test]
fn other_kinds_are_skipped_and_sources_kept_in_order() {
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{a: b}}\n---\n\
         just: a map without kind\n---\n- a list\n---\n\
         apiVersion: sources.knative.dev/v1alpha1\nkind: KafkaSource\nmetadata: {{name: old}}\n---\n\
         {}---\n{SECRET}---\n{}",
        patched("metadata: {name: first}"),
        patched("metadata: {name: second}"),
    );
    let plan = plan(&text).unwrap();
    let names: Vec<_> = plan.sources.iter().map(|s| s.id.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert_eq!(super::plan_from_documents(&[]).unwrap(), Plan::default());
}

#[test]
fn load_plan_reads_directories_and_names_the_file_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let net = "spec: {net: {sasl: {enable: true, \
               user: {secretKeyRef: {name: auth, key: user}}, \
               password: {secretKeyRef: {name: auth, key: password}}}}}";
    std::fs::write(dir.path().join("source.yaml"), patched(net)).unwrap();
    std::fs::write(dir.path().join("secret.yml"), SECRET).unwrap();
    let plan = load_plan(&[dir.path().to_owned()]).unwrap();
    assert_eq!(plan.sources[0].kafka.properties["sasl.username"], "user");

    let bad = dir.path().join("zz-bad.json");
    std::fs::write(
        &bad,
        serde_json::to_string(&{
            let mut v: Value = serde_yaml_ng::from_str(SOURCE).unwrap();
            v["metadata"]["name"] = "other".into();
            v["spec"]["delivery"] = serde_json::json!({"backoffDelay": "PT"});
            v
        })
        .unwrap(),
    )
    .unwrap();
    let message = load_plan(&[dir.path().to_owned()]).unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "{} (document 1): KafkaSource ns/other: spec.delivery.backoffDelay: \
             \"PT\" is not an ISO-8601 duration (e.g. PT0.3S, PT10S, PT1M)",
            bad.display()
        )
    );
}
