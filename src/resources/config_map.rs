//! Kubernetes' v1 ConfigMap, as far as the feeds read it: plain-text `data`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::meta::DocumentMeta;

/// A `v1` ConfigMap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: DocumentMeta,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Values, base64-encoded; Knative's Kafka settings never live here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binary_data: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_data_with_dotted_keys() {
        let cm: ConfigMap = serde_yaml_ng::from_str(
            "apiVersion: v1\nkind: ConfigMap\n\
             metadata: {name: kafka-channel-config, namespace: knative-eventing}\n\
             data: {bootstrap.servers: 'a:9092,b:9092', auth.secret.ref.name: s}\n\
             binaryData: {blob: AAE=}\n",
        )
        .unwrap();
        assert_eq!(cm.data["bootstrap.servers"], "a:9092,b:9092");
        assert_eq!(cm.data["auth.secret.ref.name"], "s");
        assert_eq!(cm.binary_data["blob"], "AAE=");
        assert_eq!(cm.metadata.namespace.as_deref(), Some("knative-eventing"));
    }

    #[test]
    fn non_string_values_are_rejected_as_the_api_server_does() {
        // The feeds decode JSON values, where a YAML `3` stays a number.
        let value = serde_json::json!({"data": {"partitions": 3}});
        let err = serde_json::from_value::<ConfigMap>(value).unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
    }
}
