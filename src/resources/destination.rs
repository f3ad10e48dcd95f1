//! Knative's `Destination` (`knative.dev/pkg/apis/duck/v1`): where events go, as a reference to an
//! Addressable, a URI, or a reference plus a URI relative to it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A sink, subscriber or dead-letter sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub ref_: Option<KReference>,
    /// Absolute URL, or a URL relative to the one `ref` resolves to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// PEM CA certificates to trust for the destination, on top of the Addressable's.
    #[serde(rename = "CACerts", default, skip_serializing_if = "Option::is_none")]
    pub ca_certs: Option<String>,
    /// OIDC audience, when the target is not an Addressable that advertises one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

/// A reference to another object (`KReference`): a trimmed-down `ObjectReference`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KReference {
    #[serde(default)]
    pub kind: String,
    /// Defaults to the namespace of the object holding the reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub api_version: String,
    /// API group without version, an experimental alternative to `apiVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Name of the address to pick from the referent's `status.addresses`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}
