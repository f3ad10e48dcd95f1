//! Standalone feed tests for KafkaChannels: inline manifests in, channel plans or located errors out.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::tests::{merge, url};
use super::*;
use crate::delivery::policy::{BackoffPolicy, DeliveryPolicy, Target};
use crate::engine::plan::{KafkaConnection, Ordering, ResourceId, SubscriberPlan};
use crate::feed::files::parse_documents;

const CHANNEL: &str = "\
apiVersion: messaging.knative.dev/v1beta1
kind: KafkaChannel
metadata: {name: ch, namespace: ns}
spec:
  subscribers:
    - {uid: u1, generation: 2, subscriberUri: 'http://sub.example/a'}
";

const CONFIG: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: kafka-channel-config, namespace: knative-eventing}
data: {bootstrap.servers: 'kafka:9092'}
";

fn plan(text: &str) -> Result<Plan, FeedError> {
    plan_from_documents(&parse_documents(Path::new("test.yaml"), text).unwrap())
}

/// `yaml` (a patch over CHANNEL) then CONFIG, resolved to its one channel.
fn only_channel(patch: &str) -> ChannelPlan {
    let plan = plan(&with_config(&patched(patch))).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.channels.len(), 1, "{plan:?}");
    (*plan.channels[0]).clone()
}

fn with_config(channel: &str) -> String {
    format!("{channel}---\n{CONFIG}")
}

/// CHANNEL with `patch` (YAML) merged in: maps merge, other values replace, null deletes.
fn patched(patch: &str) -> String {
    let mut base: Value = serde_yaml_ng::from_str(CHANNEL).unwrap();
    merge(&mut base, serde_yaml_ng::from_str(patch).unwrap());
    serde_yaml_ng::to_string(&base).unwrap()
}

/// CHANNEL with `spec.subscribers` replaced by `subscribers` (YAML).
fn with_subscribers(subscribers: &str) -> String {
    format!("spec: {{subscribers: {subscribers}}}")
}

/// What the dispatcher does with no delivery at all: one attempt, no dead letter.
fn no_retries() -> DeliveryPolicy {
    DeliveryPolicy {
        retry: 0,
        backoff_policy: BackoffPolicy::Exponential,
        backoff_delay: Duration::from_millis(200),
        timeout: Some(Duration::from_secs(600)),
        retry_after_max: None,
        dead_letter: None,
    }
}

#[test]
fn knative_defaults() {
    let channel = only_channel("{}");
    assert_eq!(channel.id, ResourceId::new("ns", "ch"));
    assert_eq!(channel.kafka, KafkaConnection::plaintext("kafka:9092"));
    assert_eq!(channel.topic, "knative-messaging-kafka.ns.ch");
    assert_eq!(channel.num_partitions, 1);
    assert_eq!(channel.replication_factor, 1);
    assert_eq!(channel.retention, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(channel.host(), "ch-kn-channel.ns.svc.cluster.local");
    assert_eq!(channel.generation, 0, "no metadata.generation");
    assert_eq!(only_channel("metadata: {generation: 6}").generation, 6);
    let want = SubscriberPlan {
        uid: "u1".into(),
        generation: 2,
        subscriber: Some(Target::new(url("http://sub.example/a"))),
        reply: None,
        delivery: no_retries(),
        consumer_group: "kafka.ns.ch.u1".into(),
        ordering: Ordering::Ordered,
    };
    assert_eq!(channel.subscribers.len(), 1);
    assert_eq!(*channel.subscribers[0], want);

    let defaulted_ns = only_channel("metadata: {namespace: null}");
    assert_eq!(defaulted_ns.id, ResourceId::new("default", "ch"));
    assert_eq!(defaulted_ns.topic, "knative-messaging-kafka.default.ch");
    assert_eq!(
        defaulted_ns.subscribers[0].consumer_group,
        "kafka.default.ch.u1"
    );
    // Zero is what Knative's webhook defaults, like absence; no subscribers is a valid channel.
    let zeros = only_channel(
        "spec: {numPartitions: 0, replicationFactor: 0, retentionDuration: '', subscribers: null}",
    );
    assert_eq!(
        (
            zeros.num_partitions,
            zeros.replication_factor,
            zeros.retention
        ),
        (1, 1, Duration::from_secs(604_800))
    );
    assert!(zeros.subscribers.is_empty());
}

#[test]
fn spec_fields_map_to_the_plan() {
    let channel = only_channel(
        "spec:
           numPartitions: 6
           replicationFactor: 3
           retentionDuration: P1D
           subscribers:
             - name: sub-a
               uid: a
               generation: 7
               subscriberUri: https://a.example/in
               subscriberCACerts: A-PEM
               subscriberAudience: aud
               replyUri: http://reply.example/
               replyCACerts: R-PEM
               auth: {serviceAccountName: sa}
             - {uid: b, replyUri: 'http://only-reply.example'}
             - {uid: c, subscriberUri: 'http://c.example', subscriberCACerts: '  '}",
    );
    assert_eq!(
        (
            channel.num_partitions,
            channel.replication_factor,
            channel.retention
        ),
        (6, 3, Duration::from_secs(86_400))
    );
    let subs: Vec<&SubscriberPlan> = channel.subscribers.iter().map(|s| s.as_ref()).collect();
    assert_eq!(subs.len(), 3);
    assert_eq!((subs[0].uid.as_str(), subs[0].generation), ("a", 7));
    assert_eq!(
        subs[0].subscriber,
        Some(Target {
            url: url("https://a.example/in"),
            ca_certs: Some("A-PEM".into())
        })
    );
    assert_eq!(
        subs[0].reply,
        Some(Target {
            url: url("http://reply.example/"),
            ca_certs: Some("R-PEM".into())
        })
    );
    // Only a reply: events go straight to it.
    assert_eq!(subs[1].subscriber, None);
    assert_eq!(
        subs[1].reply,
        Some(Target::new(url("http://only-reply.example")))
    );
    assert_eq!(subs[1].generation, 0);
    // Blank CA certificates are no CA certificates.
    assert_eq!(
        subs[2].subscriber,
        Some(Target::new(url("http://c.example")))
    );
    let groups: Vec<_> = subs.iter().map(|s| s.consumer_group.as_str()).collect();
    assert_eq!(groups, ["kafka.ns.ch.a", "kafka.ns.ch.b", "kafka.ns.ch.c"]);
}

#[test]
fn subscriber_delivery_falls_back_to_the_channel_field_by_field() {
    let ms = Duration::from_millis;
    let dls = |u: &str| Some(Target::new(url(u)));
    let policy = |retry, backoff_policy, backoff_delay, timeout: u64, dead_letter| DeliveryPolicy {
        retry,
        backoff_policy,
        backoff_delay,
        timeout: Some(ms(timeout)),
        retry_after_max: None,
        dead_letter,
    };
    let (exp, lin) = (BackoffPolicy::Exponential, BackoffPolicy::Linear);
    let channel_delivery =
        "{retry: 4, backoffPolicy: linear, backoffDelay: PT1S, deadLetterSink: {uri: 'http://ch-dls'}}";
    let cases = [
        // Neither: no retries and no dead letter (Knative sends no egress config).
        ("null", "null", no_retries()),
        (
            channel_delivery,
            "null",
            policy(4, lin, ms(1000), 600_000, dls("http://ch-dls")),
        ),
        (
            "null",
            "{retry: 2, timeout: PT3S}",
            policy(2, exp, ms(200), 3000, None),
        ),
        // The subscriber's fields win; the channel fills the rest.
        (
            channel_delivery,
            "{retry: 1, timeout: PT3S}",
            policy(1, lin, ms(1000), 3000, dls("http://ch-dls")),
        ),
        (
            channel_delivery,
            "{backoffPolicy: exponential, deadLetterSink: {uri: 'http://sub-dls'}}",
            policy(4, exp, ms(1000), 600_000, dls("http://sub-dls")),
        ),
        // An empty subscriber delivery changes nothing.
        (
            channel_delivery,
            "{}",
            policy(4, lin, ms(1000), 600_000, dls("http://ch-dls")),
        ),
    ];
    for (channel, subscriber, want) in cases {
        let got = only_channel(&format!(
            "spec: {{delivery: {channel}, subscribers: [{{uid: u1, subscriberUri: 'http://s', \
             delivery: {subscriber}}}]}}"
        ));
        assert_eq!(
            got.subscribers[0].delivery, want,
            "channel {channel}, subscriber {subscriber}"
        );
    }
}

/// Asserts the load fails naming the file, the resource, the field and the problem.
fn assert_invalid(text: &str, doc_index: usize, resource: &str, field: &str, problem: &str) {
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
    assert_eq!(
        (doc.path.as_path(), doc.index),
        (Path::new("test.yaml"), doc_index),
        "{err}"
    );
    assert_eq!(
        (got_resource.as_str(), got_field.as_str()),
        (resource, field),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "test.yaml (document {}): {resource}: {field}: ",
            doc_index + 1
        )),
        "{message}"
    );
    assert!(
        message.contains(problem),
        "{field}: {message:?} lacks {problem:?}"
    );
}

#[test]
fn invalid_channels_are_reported_with_file_resource_and_field() {
    let sub = |fields: &str| with_subscribers(&format!("[{{uid: u1, {fields}}}]"));
    let cases = [
        (
            "metadata: {name: null}",
            "metadata.name",
            "required".to_owned(),
        ),
        (
            "spec: {numPartitions: -1}",
            "spec.numPartitions",
            "-1 must be greater than zero".into(),
        ),
        (
            "spec: {replicationFactor: -2}",
            "spec.replicationFactor",
            "greater than zero".into(),
        ),
        (
            "spec: {replicationFactor: 40000}",
            "spec.replicationFactor",
            "40000".into(),
        ),
        (
            "spec: {numPartitions: many}",
            "spec.numPartitions",
            "invalid type".into(),
        ),
        (
            "spec: {retentionDuration: 1w}",
            "spec.retentionDuration",
            "ISO-8601".into(),
        ),
        (
            "spec: {retentionDuration: PT0S}",
            "spec.retentionDuration",
            "greater than zero".into(),
        ),
        (
            "spec: {delivery: {retry: -1}}",
            "spec.delivery.retry",
            "negative".into(),
        ),
        (
            "spec: {delivery: {deadLetterSink: {uri: 'ftp://x'}}}",
            "spec.delivery.deadLetterSink.uri",
            "http or https".into(),
        ),
        (
            "spec: {subscribers: {uid: u1}}",
            "spec.subscribers",
            "invalid type".into(),
        ),
        (
            &with_subscribers("[{subscriberUri: 'http://s'}]"),
            "spec.subscribers[0].uid",
            "required".into(),
        ),
        (
            &with_subscribers("[{uid: '', subscriberUri: 'http://s'}]"),
            "spec.subscribers[0].uid",
            "required".into(),
        ),
        (
            &with_subscribers(
                "[{uid: a, subscriberUri: 'http://s'}, {uid: b, subscriberUri: 'http://s'}, \
                 {uid: a, replyUri: 'http://r'}]",
            ),
            "spec.subscribers[2].uid",
            "\"a\" is also the uid of spec.subscribers[0]".into(),
        ),
        (
            &sub("generation: 1"),
            "spec.subscribers[0]",
            "at least one of subscriberUri and replyUri".into(),
        ),
        (
            &sub("subscriberUri: ''"),
            "spec.subscribers[0]",
            "at least one of subscriberUri and replyUri".into(),
        ),
        (
            &sub("subscriberUri: /relative"),
            "spec.subscribers[0].subscriberUri",
            "relative".into(),
        ),
        (
            &sub("subscriberUri: 'mailto:a@b'"),
            "spec.subscribers[0].subscriberUri",
            "http or https".into(),
        ),
        (
            &sub("subscriberUri: 'http://s', replyUri: 'http://[::1'"),
            "spec.subscribers[0].replyUri",
            "not a valid URL".into(),
        ),
        (
            &sub("subscriberUri: 'http://s', delivery: {backoffDelay: soon}"),
            "spec.subscribers[0].delivery.backoffDelay",
            "ISO-8601".into(),
        ),
        (
            &sub("subscriberUri: 'http://s', delivery: {timeout: PT0S}"),
            "spec.subscribers[0].delivery.timeout",
            "greater than zero".into(),
        ),
        (
            &sub("subscriberUri: 'http://s', delivery: {deadLetterSink: \
                 {ref: {apiVersion: v1, kind: Service, name: dls}}}"),
            "spec.subscribers[0].delivery.deadLetterSink.ref",
            "cannot resolve v1 Service ns/dls".into(),
        ),
        (
            &sub("generation: x"),
            "spec.subscribers[0].generation",
            "invalid type".into(),
        ),
    ];
    for (patch, field, problem) in cases {
        let text = with_config(&patched(patch));
        let resource = if field == "metadata.name" {
            "KafkaChannel ns/(unnamed)"
        } else {
            "KafkaChannel ns/ch"
        };
        assert_invalid(&text, 0, resource, field, &problem);
    }
}

#[test]
fn dead_letter_refs_resolve_to_documents_in_the_files() {
    let text = format!(
        "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: dls, namespace: ns}}\n\
         status: {{address: {{url: 'http://dls.ns.svc'}}}}\n",
        with_config(&patched(
            "spec: {delivery: {deadLetterSink: {ref: {apiVersion: v1, kind: Service, name: dls}}}}"
        ))
    );
    let plan = plan(&text).unwrap();
    assert_eq!(
        plan.channels[0].subscribers[0].delivery.dead_letter,
        Some(Target::new(url("http://dls.ns.svc")))
    );
}

#[test]
fn a_missing_config_map_names_the_channel_the_config_map_and_the_key() {
    let elsewhere = CONFIG.replace("namespace: knative-eventing", "namespace: default");
    for text in [CHANNEL.to_owned(), format!("{CHANNEL}---\n{elsewhere}")] {
        let err = plan(&text).unwrap_err();
        let FeedError::MissingConfigMap {
            doc,
            resource,
            namespace,
            name,
            key,
            ..
        } = &err
        else {
            panic!("unexpected error {err}");
        };
        assert_eq!(doc.index, 0);
        assert_eq!(resource, "KafkaChannel ns/ch");
        assert_eq!(
            (*namespace, *name, *key),
            (
                "knative-eventing",
                "kafka-channel-config",
                "bootstrap.servers"
            )
        );
        let message = err.to_string();
        assert!(
            message.starts_with(
                "test.yaml (document 1): KafkaChannel ns/ch: needs ConfigMap \
                 knative-eventing/kafka-channel-config with key bootstrap.servers, which is not \
                 in the given files"
            ),
            "{message}"
        );
        assert!(message.contains("bootstrap.servers: embedded"), "{message}");
    }
    // Sources alone need no channel configuration.
    assert!(plan("kind: Other\n").unwrap().channels.is_empty());
}

const AUTH_CONFIG: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: kafka-channel-config, namespace: knative-eventing}
data:
  bootstrap.servers: 'k1:9093,k2:9093'
  auth.secret.ref.name: kafka-auth
";

fn auth_secret(namespace: &str, string_data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: kafka-auth, namespace: {namespace}}}\n\
         stringData: {string_data}\n"
    )
}

#[test]
fn the_config_map_and_auth_secret_become_the_channel_connection() {
    let cases = [
        ("{protocol: PLAINTEXT}", vec![]),
        (
            "{protocol: SASL_PLAINTEXT, sasl.mechanism: SCRAM-SHA-512, user: u, password: p}",
            vec![
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", "u"),
                ("sasl.password", "p"),
            ],
        ),
        (
            "{protocol: SSL, ca.crt: CA, user.crt: CERT, user.key: KEY}",
            vec![
                ("security.protocol", "SSL"),
                ("ssl.ca.pem", "CA"),
                ("ssl.certificate.pem", "CERT"),
                ("ssl.key.pem", "KEY"),
            ],
        ),
        (
            "{protocol: SASL_SSL, ca.crt: CA, user: u, password: p}",
            vec![
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.pem", "CA"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.username", "u"),
                ("sasl.password", "p"),
            ],
        ),
    ];
    for (secret, want) in cases {
        let text = format!(
            "{CHANNEL}---\n{AUTH_CONFIG}---\n{}",
            auth_secret("knative-eventing", secret)
        );
        let plan = plan(&text).unwrap_or_else(|e| panic!("{secret}: {e}"));
        let kafka = &plan.channels[0].kafka;
        assert_eq!(kafka.bootstrap_servers, "k1:9093,k2:9093", "{secret}");
        let want: BTreeMap<String, String> = want
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(kafka.properties, want, "{secret}");
    }

    // `auth.secret.ref.namespace` moves the Secret out of knative-eventing.
    let config = AUTH_CONFIG.replace(
        "auth.secret.ref.name: kafka-auth",
        "auth.secret.ref.name: kafka-auth\n  auth.secret.ref.namespace: kafka",
    );
    let text = format!(
        "{CHANNEL}---\n{config}---\n{}",
        auth_secret("kafka", "{protocol: SSL, user.skip: 'true'}")
    );
    let kafka = &plan(&text).unwrap().channels[0].kafka;
    assert_eq!(kafka.properties["security.protocol"], "SSL");

    let embedded = CONFIG.replace("'kafka:9092'", "embedded");
    let plan = plan(&format!("{CHANNEL}---\n{embedded}")).unwrap();
    assert!(plan.channels[0].kafka.is_embedded());
}

#[test]
fn config_errors_point_at_the_config_map_or_secret_and_name_the_channel() {
    const CM: &str = "ConfigMap knative-eventing/kafka-channel-config";
    const SECRET: &str = "Secret knative-eventing/kafka-auth";
    let no_servers = CONFIG.replace("{bootstrap.servers: 'kafka:9092'}", "{other: x}");
    let number = CONFIG.replace("'kafka:9092'", "9092");
    let cases = [
        (no_servers, 1, CM, "data.bootstrap.servers", "required"),
        (number, 1, CM, "data.bootstrap.servers", "invalid type"),
        (
            AUTH_CONFIG.to_owned(),
            1,
            CM,
            "data.auth.secret.ref.name",
            "Secret knative-eventing/kafka-auth not found",
        ),
        (
            format!(
                "{AUTH_CONFIG}---\n{}",
                auth_secret("knative-eventing", "{protocol: SASL_SSL, user: u}")
            ),
            2,
            SECRET,
            "data.password",
            "required for protocol SASL_SSL (needed by KafkaChannel ns/ch)",
        ),
        (
            format!(
                "{AUTH_CONFIG}---\n{}",
                auth_secret("knative-eventing", "{protocol: SSL}")
            ),
            2,
            SECRET,
            "data.user.crt",
            "user.skip",
        ),
    ];
    for (config, doc_index, resource, field, problem) in cases {
        let text = format!("{CHANNEL}---\n{config}");
        assert_invalid(&text, doc_index, resource, field, problem);
    }
    // Errors in the ConfigMap itself say which channel needed it.
    let err = plan(&format!(
        "{CHANNEL}---\n{}",
        CONFIG.replace("'kafka:9092'", "' '")
    ))
    .unwrap_err()
    .to_string();
    assert!(err.ends_with("(needed by KafkaChannel ns/ch)"), "{err}");
}

#[test]
fn duplicates_are_errors() {
    let twice = format!("{CHANNEL}---\n{CHANNEL}---\n{CONFIG}");
    let err = plan(&twice).unwrap_err();
    assert!(matches!(err, FeedError::Duplicate { .. }), "{err}");
    assert!(
        err.to_string().starts_with(
            "test.yaml (document 2): KafkaChannel ns/ch is defined twice (first in test.yaml (document 1))"
        ),
        "{err}"
    );
    let two_configs = format!("{CHANNEL}---\n{CONFIG}---\n{CONFIG}");
    let err = plan(&two_configs).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "test.yaml (document 3): ConfigMap knative-eventing/kafka-channel-config is defined twice"
        ),
        "{err}"
    );
    // A source and a channel may share a name.
    let source = "apiVersion: sources.knative.dev/v1\nkind: KafkaSource\n\
                  metadata: {name: ch, namespace: ns}\n\
                  spec: {bootstrapServers: ['k:9092'], topics: [t], sink: {uri: 'http://s'}}\n";
    let plan = plan(&format!("{source}---\n{CHANNEL}---\n{CONFIG}")).unwrap();
    assert_eq!((plan.sources.len(), plan.channels.len()), (1, 1));
}

#[test]
fn sources_and_channels_load_together_in_document_order() {
    let source = |name: &str| {
        format!(
            "apiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\n\
             metadata: {{name: {name}, namespace: ns}}\n\
             spec: {{bootstrapServers: ['k:9092'], topics: [t], sink: {{uri: 'http://s'}}}}\n"
        )
    };
    let text = format!(
        "{}---\n{}---\n{}---\n{CONFIG}---\n{}---\n\
         apiVersion: messaging.knative.dev/v1alpha1\nkind: KafkaChannel\nmetadata: {{name: old}}\n",
        patched("metadata: {name: c1}"),
        source("s1"),
        patched("metadata: {name: c2}"),
        source("s2"),
    );
    let plan = plan(&text).unwrap();
    let names =
        |ids: Vec<&ResourceId>| -> Vec<String> { ids.iter().map(|id| id.name.clone()).collect() };
    assert_eq!(
        names(plan.sources.iter().map(|s| &s.id).collect()),
        ["s1", "s2"]
    );
    assert_eq!(
        names(plan.channels.iter().map(|c| &c.id).collect()),
        ["c1", "c2"]
    );
    // Both channels share the one cluster configuration.
    assert_eq!(plan.channels[0].kafka, plan.channels[1].kafka);
}

#[test]
fn load_plan_reads_channel_and_config_from_separate_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("channel.yaml"), CHANNEL).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string(&serde_yaml_ng::from_str::<Value>(CONFIG).unwrap()).unwrap(),
    )
    .unwrap();
    let plan = load_plan(&[dir.path().to_owned()]).unwrap();
    assert_eq!(plan.channels[0].kafka.bootstrap_servers, "kafka:9092");
    assert_eq!(
        plan.channels[0].subscribers[0].consumer_group,
        "kafka.ns.ch.u1"
    );
}

#[test]
fn a_channel_without_a_spec_runs_with_knatives_defaults() {
    let plan = only_channel("spec: null");
    assert_eq!(plan.topic, "knative-messaging-kafka.ns.ch");
    assert_eq!((plan.num_partitions, plan.replication_factor), (1, 1));
    assert!(plan.subscribers.is_empty());
}

#[test]
fn a_generic_channel_runs_as_the_kafka_channel_its_namespace_default_names() {
    let files = format!(
        "\
apiVersion: messaging.knative.dev/v1
kind: Channel
metadata: {{name: generic, namespace: ns}}
spec:
  subscribers:
    - {{uid: g1, subscriberUri: 'http://sub.example/g'}}
---
apiVersion: messaging.knative.dev/v1
kind: Channel
metadata: {{name: in-memory, namespace: other}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: default-ch-webhook, namespace: knative-eventing}}
data:
  default-ch-config: |
    clusterDefault: {{apiVersion: messaging.knative.dev/v1, kind: InMemoryChannel}}
    namespaceDefaults:
      ns:
        apiVersion: messaging.knative.dev/v1beta1
        kind: KafkaChannel
        spec: {{numPartitions: 2}}
---
{CONFIG}"
    );
    let plan = plan(&files).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        plan.channels.len(),
        1,
        "the InMemoryChannel-backed one is skipped"
    );
    let channel = &plan.channels[0];
    assert_eq!(channel.id, ResourceId::new("ns", "generic"));
    assert_eq!(channel.topic, "knative-messaging-kafka.ns.generic");
    assert_eq!(channel.num_partitions, 2);
    assert_eq!(channel.subscribers[0].uid, "g1");
}

#[test]
fn a_generic_channel_without_template_or_defaults_is_an_error_naming_the_field() {
    let files = format!(
        "apiVersion: messaging.knative.dev/v1\nkind: Channel\nmetadata: {{name: c, namespace: ns}}\n---\n{CONFIG}"
    );
    let err = plan(&files).unwrap_err().to_string();
    assert!(err.contains("Channel ns/c"), "{err}");
    assert!(err.contains("spec.channelTemplate"), "{err}");
}
