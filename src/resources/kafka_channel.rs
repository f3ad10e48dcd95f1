//! Knative's KafkaChannel (`messaging.knative.dev/v1beta1`, the only version served): topic
//! settings plus the duck `ChannelableSpec` (subscribers, delivery) inlined as in Go.

// kube's printcolumn attributes repeat keys such as `type_` by design.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::addressable::Addressable;
use super::channelable::{AppliedEventPolicyRef, SubscriberSpec, SubscriberStatus};
use super::delivery::DeliverySpec;
use super::status::Condition;

pub const GROUP: &str = "messaging.knative.dev";
pub const KIND: &str = "KafkaChannel";
pub const API_VERSION: &str = "messaging.knative.dev/v1beta1";
/// Knative's defaults, applied by its webhook when a field is absent or zero.
pub const DEFAULT_NUM_PARTITIONS: i32 = 1;
pub const DEFAULT_REPLICATION_FACTOR: i16 = 1;
/// Seven days, in the precise form Knative writes.
pub const DEFAULT_RETENTION_DURATION: &str = "PT168H";

// The derive makes the object type `KafkaChannel` and its CRD, with Knative's names, duck labels
// and columns. Doc comments become the CRD's descriptions, which `kubectl explain` shows.
/// The desired state of a KafkaChannel: its topic's settings, and the subscribers (written by
/// Subscriptions) with their delivery. Everything but `subscribers` and `delivery` is immutable.
#[derive(
    CustomResource, Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema,
)]
#[kube(
    group = "messaging.knative.dev",
    version = "v1beta1",
    kind = "KafkaChannel",
    namespaced,
    status = "KafkaChannelStatus",
    derive = "PartialEq",
    derive = "Default",
    doc = "KafkaChannel is a Channel backed by a topic of an Apache Kafka cluster.",
    category = "all",
    category = "knative",
    category = "messaging",
    category = "channel",
    shortname = "kc",
    label("messaging.knative.dev/subscribable", "true"),
    label("duck.knative.dev/addressable", "true"),
    label("knative.dev/crd-install", "true"),
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
    printcolumn(name = "URL", type_ = "string", json_path = ".status.address.url"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct KafkaChannelSpec {
    /// Partitions of the topic; absent or 0 means [`DEFAULT_NUM_PARTITIONS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_partitions: Option<i32>,
    /// Replication factor of the topic; absent or 0 means [`DEFAULT_REPLICATION_FACTOR`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_factor: Option<i16>,
    /// Topic retention, ISO-8601; absent or empty means [`DEFAULT_RETENTION_DURATION`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_duration: Option<String>,
    /// The delivery of every subscriber, for the fields a subscriber's own delivery lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<SubscriberSpec>,
}

/// `status` of a KafkaChannel: the duck `ChannelableStatus` (status, address, subscribers,
/// delivery status and applied event policies, all inlined).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaChannelStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `http://NAME-kn-channel.NS.svc.cluster.local` in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Addressable>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Addressable>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<SubscriberStatus>,
    /// The channel's dead-letter sink, resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_uri: Option<String>,
    #[serde(
        rename = "deadLetterSinkCACerts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dead_letter_sink_ca_certs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink_audience: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<AppliedEventPolicyRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
apiVersion: messaging.knative.dev/v1beta1
kind: KafkaChannel
metadata:
  name: ch
  namespace: ns
  annotations: {messaging.knative.dev/subscribable: v1}
spec:
  numPartitions: 3
  replicationFactor: 2
  retentionDuration: P7D
  delivery:
    deadLetterSink: {uri: "http://dls"}
    retry: 4
  subscribers:
    - name: sub1
      uid: 2f9b5e8e-deb6-11e8-9f32-f2801f1b9fd1
      generation: 1
      subscriberUri: http://call1
      subscriberCACerts: SUBPEM
      subscriberAudience: sub-aud
      replyUri: http://sink2
      replyCACerts: REPLYPEM
      replyAudience: reply-aud
      delivery:
        deadLetterSink: {uri: "http://sub-dls", CACerts: DLSPEM}
        retry: 2
        backoffPolicy: linear
        backoffDelay: PT1S
      auth: {serviceAccountName: sa}
      futureField: ignored
    - uid: 34c5aec8-deb6-11e8-9f32-f2801f1b9fd1
      replyUri: http://only-reply
status:
  observedGeneration: 2
  conditions: [{type: Ready, status: "True"}]
  annotations: {default.topic: knative-messaging-kafka.ns.ch}
  address: {name: http, url: "http://ch-kn-channel.ns.svc.cluster.local"}
  addresses: [{name: http, url: "http://ch-kn-channel.ns.svc.cluster.local"}]
  subscribers:
    - {uid: 2f9b5e8e-deb6-11e8-9f32-f2801f1b9fd1, observedGeneration: 1, ready: "True", message: ok}
  deadLetterSinkUri: http://dls
  deadLetterSinkCACerts: PEM
  policies: [{apiVersion: eventing.knative.dev/v1alpha1, name: p}]
"#;

    #[test]
    fn reads_every_knative_field() {
        let c: KafkaChannel = serde_yaml_ng::from_str(FULL).unwrap();
        let spec = &c.spec;
        assert_eq!(
            (
                spec.num_partitions,
                spec.replication_factor,
                spec.retention_duration.as_deref()
            ),
            (Some(3), Some(2), Some("P7D"))
        );
        assert_eq!(spec.delivery.as_ref().unwrap().retry, Some(4));
        let s = &spec.subscribers[0];
        assert_eq!(s.name.as_deref(), Some("sub1"));
        assert_eq!(
            s.uid.as_deref(),
            Some("2f9b5e8e-deb6-11e8-9f32-f2801f1b9fd1")
        );
        assert_eq!(s.generation, Some(1));
        assert_eq!(s.subscriber_uri.as_deref(), Some("http://call1"));
        assert_eq!(s.subscriber_ca_certs.as_deref(), Some("SUBPEM"));
        assert_eq!(s.subscriber_audience.as_deref(), Some("sub-aud"));
        assert_eq!(s.reply_uri.as_deref(), Some("http://sink2"));
        assert_eq!(s.reply_ca_certs.as_deref(), Some("REPLYPEM"));
        assert_eq!(s.reply_audience.as_deref(), Some("reply-aud"));
        let delivery = s.delivery.as_ref().unwrap();
        assert_eq!(delivery.retry, Some(2));
        assert_eq!(
            delivery
                .dead_letter_sink
                .as_ref()
                .unwrap()
                .ca_certs
                .as_deref(),
            Some("DLSPEM")
        );
        assert_eq!(
            s.auth.as_ref().unwrap().service_account_name.as_deref(),
            Some("sa")
        );
        assert_eq!(spec.subscribers[1].subscriber_uri, None);
        assert_eq!(spec.subscribers[1].generation, None);

        let status = c.status.as_ref().unwrap();
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            status.address.as_ref().unwrap().url.as_deref(),
            Some("http://ch-kn-channel.ns.svc.cluster.local")
        );
        assert_eq!(status.addresses.len(), 1);
        let sub = &status.subscribers[0];
        assert_eq!(
            (
                sub.observed_generation,
                sub.ready.as_deref(),
                sub.message.as_deref()
            ),
            (Some(1), Some("True"), Some("ok"))
        );
        assert_eq!(status.dead_letter_sink_uri.as_deref(), Some("http://dls"));
        assert_eq!(status.dead_letter_sink_ca_certs.as_deref(), Some("PEM"));
        assert_eq!(status.policies[0].name, "p");
        assert_eq!(
            status.annotations["default.topic"],
            "knative-messaging-kafka.ns.ch"
        );
    }

    #[test]
    fn minimal_channel_reads_with_everything_optional_absent() {
        // The object type needs `metadata` and `spec`; the feeds add empty ones when absent.
        let c: KafkaChannel =
            serde_yaml_ng::from_str("kind: KafkaChannel\nmetadata: {}\nspec: {}\n").unwrap();
        assert_eq!(c.spec, KafkaChannelSpec::default());
        assert!(c.status.is_none());
    }

    #[test]
    fn round_trips_through_json_with_knative_field_names() {
        let c: KafkaChannel = serde_yaml_ng::from_str(FULL).unwrap();
        let json = serde_json::to_value(&c).unwrap();
        let sub = &json["spec"]["subscribers"][0];
        assert_eq!(sub["subscriberCACerts"], "SUBPEM");
        assert_eq!(sub["replyCACerts"], "REPLYPEM");
        assert_eq!(sub["subscriberUri"], "http://call1");
        assert_eq!(json["spec"]["retentionDuration"], "P7D");
        assert_eq!(json["status"]["deadLetterSinkCACerts"], "PEM");
        assert_eq!(json["status"]["subscribers"][0]["observedGeneration"], 1);
        let back: KafkaChannel = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }
}
