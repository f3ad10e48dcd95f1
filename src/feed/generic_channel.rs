//! Knative's generic `Channel` (`messaging.knative.dev/v1`), backed by a KafkaChannel.
//!
//! In a cluster, Knative's webhook gives a Channel without `spec.channelTemplate` the default
//! template from the ConfigMap `default-ch-webhook` in `knative-eventing` (key
//! `default-ch-config`: `namespaceDefaults.NS`, else `clusterDefault`), and its Channel controller
//! creates the backing channel of that kind with the Channel's name and namespace: the template's
//! spec plus the Channel's `delivery` and `subscribers`. Standalone mode does the same from the
//! files, so a Channel whose template is a KafkaChannel runs as that KafkaChannel. Pure: the
//! caller finds the documents.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::resources::kafka_channel::{GROUP as KAFKA_CHANNEL_GROUP, KIND as KAFKA_CHANNEL};

use super::resolve::FieldError;

pub const API_VERSION: &str = "messaging.knative.dev/v1";
pub const KIND: &str = "Channel";
pub const DEFAULTS_CONFIG_MAP: &str = "default-ch-webhook";
pub const DEFAULTS_KEY: &str = "default-ch-config";

/// A channel template: the kind of the backing channel and its spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelTemplate {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub spec: Option<Value>,
}

/// `default-ch-config`, as Knative's webhook reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelDefaults {
    #[serde(default)]
    pub cluster_default: Option<ChannelTemplate>,
    #[serde(default)]
    pub namespace_defaults: std::collections::BTreeMap<String, ChannelTemplate>,
}

impl ChannelDefaults {
    /// Parses the ConfigMap's `default-ch-config` value (YAML).
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        serde_yaml_ng::from_str(text)
            .map_err(|e| FieldError::new(format!("data.{DEFAULTS_KEY}"), format!("not valid: {e}")))
    }

    /// The template for a Channel in `namespace`: the namespace's, else the cluster's.
    pub fn for_namespace(&self, namespace: &str) -> Option<&ChannelTemplate> {
        self.namespace_defaults
            .get(namespace)
            .or(self.cluster_default.as_ref())
    }
}

/// The KafkaChannel document backing `channel` (a Channel document), or `None` when its template
/// is another kind of channel.
pub fn backing_kafka_channel(
    channel: &Value,
    namespace: &str,
    defaults: Option<&ChannelDefaults>,
) -> Result<Option<Value>, FieldError> {
    let spec = channel.get("spec").cloned().unwrap_or(Value::Null);
    let template = match spec.get("channelTemplate") {
        Some(template) if !template.is_null() => ChannelTemplate::deserialize(template)
            .map_err(|e| FieldError::new("spec.channelTemplate", format!("not valid: {e}")))?,
        _ => defaults
            .and_then(|d| d.for_namespace(namespace))
            .cloned()
            .ok_or_else(|| {
                FieldError::new(
                    "spec.channelTemplate",
                    format!(
                        "absent, and no ConfigMap knative-eventing/{DEFAULTS_CONFIG_MAP} in the \
                         files gives a default for namespace {namespace:?}"
                    ),
                )
            })?,
    };
    let group = template.api_version.rsplit_once('/').map(|(g, _)| g);
    if template.kind != KAFKA_CHANNEL || group != Some(KAFKA_CHANNEL_GROUP) {
        return Ok(None);
    }
    let mut backing_spec = match template.spec {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    // The Channel's own delivery and subscribers win over the template's, as Knative copies them.
    for field in ["delivery", "subscribers"] {
        if let Some(value) = spec.get(field).filter(|v| !v.is_null()) {
            backing_spec.insert(field.to_owned(), value.clone());
        }
    }
    let metadata = channel.get("metadata").cloned().unwrap_or(Value::Null);
    Ok(Some(serde_json::json!({
        "apiVersion": crate::resources::kafka_channel::API_VERSION,
        "kind": KAFKA_CHANNEL,
        "metadata": metadata,
        "spec": Value::Object(backing_spec),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEFAULTS: &str = "
clusterDefault:
  apiVersion: messaging.knative.dev/v1
  kind: InMemoryChannel
namespaceDefaults:
  kafka-ns:
    apiVersion: messaging.knative.dev/v1beta1
    kind: KafkaChannel
    spec: {numPartitions: 3, replicationFactor: 1}
";

    fn channel(spec: Value) -> Value {
        json!({"apiVersion": API_VERSION, "kind": KIND,
               "metadata": {"name": "c", "namespace": "kafka-ns"}, "spec": spec})
    }

    #[test]
    fn a_namespace_default_makes_a_kafka_channel_with_the_channels_subscribers() {
        let defaults = ChannelDefaults::parse(DEFAULTS).unwrap();
        let subscribers = json!([{"uid": "u1", "subscriberUri": "http://s"}]);
        let c = channel(json!({"subscribers": subscribers, "delivery": {"retry": 2}}));
        let backing = backing_kafka_channel(&c, "kafka-ns", Some(&defaults))
            .unwrap()
            .unwrap();
        assert_eq!(backing["kind"], "KafkaChannel");
        assert_eq!(backing["apiVersion"], "messaging.knative.dev/v1beta1");
        assert_eq!(backing["metadata"]["name"], "c");
        assert_eq!(backing["spec"]["numPartitions"], 3);
        assert_eq!(backing["spec"]["subscribers"], subscribers);
        assert_eq!(backing["spec"]["delivery"]["retry"], 2);
    }

    #[test]
    fn other_namespaces_fall_back_to_the_cluster_default() {
        let defaults = ChannelDefaults::parse(DEFAULTS).unwrap();
        let c = channel(json!({}));
        assert_eq!(
            backing_kafka_channel(&c, "elsewhere", Some(&defaults)).unwrap(),
            None,
            "InMemoryChannel is not run here"
        );
    }

    #[test]
    fn an_explicit_template_wins_over_the_defaults() {
        let defaults = ChannelDefaults::parse(DEFAULTS).unwrap();
        let c = channel(json!({"channelTemplate": {
            "apiVersion": "messaging.knative.dev/v1beta1", "kind": "KafkaChannel",
            "spec": {"numPartitions": 7}}}));
        let backing = backing_kafka_channel(&c, "elsewhere", Some(&defaults))
            .unwrap()
            .unwrap();
        assert_eq!(backing["spec"]["numPartitions"], 7);
    }

    #[test]
    fn without_template_or_defaults_the_error_names_the_field() {
        let err = backing_kafka_channel(&channel(json!({})), "ns", None).unwrap_err();
        assert_eq!(err.field, "spec.channelTemplate");
        assert!(
            err.problem.contains("default-ch-webhook"),
            "{}",
            err.problem
        );
        let bad = ChannelDefaults::parse("clusterDefault: [1]").unwrap_err();
        assert_eq!(bad.field, "data.default-ch-config");
    }
}
