//! Kubernetes' v1 Secret, as far as the feeds read it: `data` (base64) and `stringData`.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::meta::DocumentMeta;

/// A `v1` Secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: DocumentMeta,
    /// Values, base64-encoded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Plain-text values; on a key in both, `stringData` wins (as the API server merges them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: BTreeMap<String, String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

/// A `data` value that is not valid base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("data.{key} is not valid base64: {reason}")]
pub struct InvalidSecretData {
    pub key: String,
    pub reason: String,
}

impl Secret {
    /// The Secret's values as the API server would store them: `data` decoded, then `stringData`
    /// merged over it.
    pub fn values(&self) -> Result<BTreeMap<String, Vec<u8>>, InvalidSecretData> {
        let mut values = BTreeMap::new();
        for (key, encoded) in &self.data {
            // The API server accepts standard base64 with padding; tolerate whitespace that
            // YAML block scalars add.
            let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|e| InvalidSecretData {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
            values.insert(key.clone(), decoded);
        }
        for (key, value) in &self.string_data {
            values.insert(key.clone(), value.clone().into_bytes());
        }
        Ok(values)
    }
}

/// `secretKeyRef`: one key of a Secret in the referring object's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub key: String,
    /// When true, a missing Secret or key means "no value" instead of an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_wins_over_data() {
        let s: Secret = serde_yaml_ng::from_str(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n\
             data: {user: dXNlcg==, both: ZnJvbS1kYXRh, pem: \"LS0t\\nLS0t\"}\n\
             stringData: {both: from-string, plain: p}\n",
        )
        .unwrap();
        let v = s.values().unwrap();
        assert_eq!(v["user"], b"user");
        assert_eq!(v["both"], b"from-string");
        assert_eq!(v["plain"], b"p");
        assert_eq!(v["pem"], b"------");
    }

    #[test]
    fn invalid_base64_names_the_key() {
        let s = Secret {
            data: [("k".into(), "!!".into())].into(),
            ..Default::default()
        };
        let err = s.values().unwrap_err();
        assert_eq!(err.key, "k");
        assert!(
            err.to_string().starts_with("data.k is not valid base64"),
            "{err}"
        );
    }
}
