//! Knative's KafkaSource (`sources.knative.dev/v1beta1`, also served as `v1`): the two versions
//! have the same schema, so one set of types reads both.

// kube's printcolumn attributes repeat keys such as `type_` by design.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::delivery::DeliverySpec;
use super::destination::Destination;
use super::secret::SecretKeySelector;
use super::status::{AuthStatus, CloudEventAttributes, Condition, Placement};

pub const GROUP: &str = "sources.knative.dev";
pub const KIND: &str = "KafkaSource";
/// The versions the API server serves for KafkaSource; v1beta1 is the storage version.
pub const API_VERSIONS: [&str; 2] = ["sources.knative.dev/v1beta1", "sources.knative.dev/v1"];
/// Label choosing how record keys become the `key` extension.
pub const KEY_TYPE_LABEL: &str = "kafkasources.sources.knative.dev/key-type";
/// Prefix of the consumer group Knative defaults when `consumerGroup` is absent.
pub const CONSUMER_GROUP_PREFIX: &str = "knative-kafka-source-";

// The derive makes the object type `KafkaSource` (metadata, spec, status) and its CRD, with
// Knative's names, labels, columns and scale subresource. Doc comments become the CRD's
// descriptions, which `kubectl explain` shows to users.
/// The desired state of a KafkaSource: the Kafka cluster and how to authenticate to it, the
/// topics and consumer settings, and where and how to deliver the events (the duck SourceSpec's
/// sink and ceOverrides, inlined).
#[derive(
    CustomResource, Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema,
)]
#[kube(
    group = "sources.knative.dev",
    version = "v1beta1",
    kind = "KafkaSource",
    namespaced,
    status = "KafkaSourceStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "KafkaSource consumes Kafka topics and sends every record to a sink as a CloudEvent.",
    category = "all",
    category = "knative",
    category = "eventing",
    category = "sources",
    label("duck.knative.dev/source", "true"),
    label("eventing.knative.dev/source", "true"),
    label("knative.dev/crd-install", "true"),
    annotation(
        "registry.knative.dev/eventTypes",
        r#"[{"type":"dev.knative.kafka.event"}]"#
    ),
    scale(
        spec_replicas_path = ".spec.consumers",
        status_replicas_path = ".status.consumers",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Topics", type_ = "string", json_path = ".spec.topics"),
    printcolumn(
        name = "BootstrapServers",
        type_ = "string",
        json_path = ".spec.bootstrapServers"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSourceSpec {
    /// Consumers in the group; defaults to 1. Scale subresource target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers: Option<i32>,
    #[serde(default)]
    pub bootstrap_servers: Vec<String>,
    #[serde(default)]
    pub net: KafkaNetSpec,
    #[serde(default)]
    pub topics: Vec<String>,
    /// Immutable; defaulted to `knative-kafka-source-<uuid>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// Defaults to `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_offset: Option<InitialOffset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
    /// Defaults to `ordered`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<Ordering>,
    #[serde(default)]
    pub sink: Destination,
    #[serde(
        rename = "ceOverrides",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ce_overrides: Option<CloudEventOverrides>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InitialOffset {
    Earliest,
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    Ordered,
    Unordered,
}

/// `spec.ceOverrides`: extension attributes set on every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudEventOverrides {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extensions: BTreeMap<String, String>,
}

/// `spec.net`: how to authenticate to Kafka. The enable flags choose the protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaNetSpec {
    #[serde(default)]
    pub sasl: KafkaSaslSpec,
    #[serde(default)]
    pub tls: KafkaTlsSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSaslSpec {
    #[serde(default)]
    pub enable: bool,
    #[serde(default)]
    pub user: SecretValueFromSource,
    #[serde(default)]
    pub password: SecretValueFromSource,
    /// `PLAIN` (default), `SCRAM-SHA-256`, `SCRAM-SHA-512` (or, in v1, `OAUTHBEARER`).
    #[serde(rename = "type", default)]
    pub type_: SecretValueFromSource,
    /// v1 only: IAM role for the MSK OAUTHBEARER token provider.
    #[serde(
        rename = "roleARN",
        default,
        skip_serializing_if = "SecretValueFromSource::is_empty"
    )]
    pub role_arn: SecretValueFromSource,
    /// v1 only: the OAUTHBEARER token provider.
    #[serde(default, skip_serializing_if = "SecretValueFromSource::is_empty")]
    pub token_provider: SecretValueFromSource,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTlsSpec {
    #[serde(default)]
    pub enable: bool,
    /// Client certificate (PEM).
    #[serde(default)]
    pub cert: SecretValueFromSource,
    /// Client private key (PEM).
    #[serde(default)]
    pub key: SecretValueFromSource,
    /// CA certificate(s) to trust for the brokers (PEM); system roots when absent.
    #[serde(default)]
    pub ca_cert: SecretValueFromSource,
}

/// A value read from a Secret in the source's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretValueFromSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

impl SecretValueFromSource {
    pub fn is_empty(&self) -> bool {
        self.secret_key_ref.is_none()
    }
}

/// `status` of a KafkaSource: the duck `SourceStatus` plus consumer and placement details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaSourceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink_uri: Option<String>,
    #[serde(
        rename = "ceAttributes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ce_attributes: Vec<CloudEventAttributes>,
    #[serde(
        rename = "sinkCACerts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sink_ca_certs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink_audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
    /// Consumers actually running in the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers: Option<i32>,
    /// Label selector for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_allowed_v_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placements: Vec<Placement>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
apiVersion: sources.knative.dev/v1beta1
kind: KafkaSource
metadata:
  name: s
  namespace: ns
  labels: {kafkasources.sources.knative.dev/key-type: int}
  annotations: {a: b}
  uid: 0b1c
  generation: 3
  managedFields: [{}]
spec:
  consumers: 2
  bootstrapServers: [k1:9092, k2:9092]
  topics: [t1]
  consumerGroup: g
  initialOffset: earliest
  ordering: unordered
  delivery:
    deadLetterSink: {uri: "http://dls"}
    retry: 3
    backoffPolicy: linear
    backoffDelay: PT0.3S
    timeout: PT5S
    retryAfterMax: PT1M
    format: json
  sink:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: svc, namespace: ns, address: a}
    uri: /path
    CACerts: PEM
    audience: aud
  ceOverrides: {extensions: {ext: v}}
  net:
    sasl:
      enable: true
      user: {secretKeyRef: {name: auth, key: user}}
      password: {secretKeyRef: {name: auth, key: password, optional: false}}
      type: {secretKeyRef: {name: auth, key: mechanism}}
    tls:
      enable: true
      cert: {secretKeyRef: {name: tls, key: cert}}
      key: {secretKeyRef: {name: tls, key: key}}
      caCert: {secretKeyRef: {name: tls, key: ca}}
  somethingNew: ignored
status:
  observedGeneration: 3
  conditions: [{type: Ready, status: "True", lastTransitionTime: "2024-01-01T00:00:00Z"}]
  sinkUri: http://svc
  ceAttributes: [{type: dev.knative.kafka.event, source: /apis/v1/namespaces/ns/kafkasources/s#t1}]
  consumers: 2
  selector: a=b
  placements: [{podName: p, vreplicas: 2}]
  maxAllowedVReplicas: 4
"#;

    #[test]
    fn reads_every_knative_field() {
        let s: KafkaSource = serde_yaml_ng::from_str(FULL).unwrap();
        assert_eq!(s.metadata.labels.as_ref().unwrap()[KEY_TYPE_LABEL], "int");
        assert_eq!(s.metadata.generation, Some(3));
        assert_eq!(s.metadata.uid.as_deref(), Some("0b1c"));
        let spec = &s.spec;
        assert_eq!(spec.consumers, Some(2));
        assert_eq!(spec.bootstrap_servers, ["k1:9092", "k2:9092"]);
        assert_eq!(spec.initial_offset, Some(InitialOffset::Earliest));
        assert_eq!(spec.ordering, Some(Ordering::Unordered));
        let delivery = spec.delivery.as_ref().unwrap();
        assert_eq!(delivery.retry, Some(3));
        assert_eq!(delivery.backoff_delay.as_deref(), Some("PT0.3S"));
        assert_eq!(delivery.retry_after_max.as_deref(), Some("PT1M"));
        assert_eq!(
            delivery.dead_letter_sink.as_ref().unwrap().uri.as_deref(),
            Some("http://dls")
        );
        let kref = spec.sink.ref_.as_ref().unwrap();
        assert_eq!(
            (
                kref.api_version.as_str(),
                kref.kind.as_str(),
                kref.address.as_deref()
            ),
            ("serving.knative.dev/v1", "Service", Some("a"))
        );
        assert_eq!(spec.sink.ca_certs.as_deref(), Some("PEM"));
        assert_eq!(spec.sink.audience.as_deref(), Some("aud"));
        assert_eq!(spec.ce_overrides.as_ref().unwrap().extensions["ext"], "v");
        let user = spec.net.sasl.user.secret_key_ref.as_ref().unwrap();
        assert_eq!((user.name.as_str(), user.key.as_str()), ("auth", "user"));
        assert_eq!(
            spec.net
                .sasl
                .password
                .secret_key_ref
                .as_ref()
                .unwrap()
                .optional,
            Some(false)
        );
        assert!(spec.net.tls.enable);
        assert_eq!(
            spec.net.tls.ca_cert.secret_key_ref.as_ref().unwrap().key,
            "ca"
        );
        let status = s.status.as_ref().unwrap();
        assert_eq!(status.conditions[0].type_, "Ready");
        assert_eq!(status.placements[0].vreplicas, Some(2));
        assert_eq!(status.max_allowed_v_replicas, Some(4));
    }

    #[test]
    fn minimal_source_reads_with_everything_optional_absent() {
        // The object type needs `metadata` and `spec`; the feeds add empty ones when absent.
        let s: KafkaSource =
            serde_yaml_ng::from_str("kind: KafkaSource\nmetadata: {}\nspec: {}\n").unwrap();
        assert_eq!(s.spec, KafkaSourceSpec::default());
        assert!(s.status.is_none());
    }

    #[test]
    fn round_trips_through_json() {
        let s: KafkaSource = serde_yaml_ng::from_str(FULL).unwrap();
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["spec"]["sink"]["CACerts"], "PEM");
        assert_eq!(json["spec"]["ceOverrides"]["extensions"]["ext"], "v");
        assert_eq!(
            json["spec"]["net"]["tls"]["caCert"]["secretKeyRef"]["key"],
            "ca"
        );
        let back: KafkaSource = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
