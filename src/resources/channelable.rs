//! Knative's Channelable duck pieces (`knative.dev/eventing/pkg/apis/duck/v1`): the subscribers a
//! Subscription controller writes into a channel's spec, and their status.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::delivery::DeliverySpec;
use super::status::AuthStatus;

/// One entry of `spec.subscribers[]` (`SubscriberSpec`). Knative's validation asks for at least
/// one of `subscriberUri` and `replyUri`; everything else is optional in the schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberSpec {
    /// Name of the Subscription this entry comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// UID of the Subscription this entry comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Generation of that Subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_uri: Option<String>,
    /// PEM CA certificates to trust for `subscriberUri`.
    #[serde(
        rename = "subscriberCACerts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub subscriber_ca_certs: Option<String>,
    /// OIDC audience of `subscriberUri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber_audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_uri: Option<String>,
    #[serde(
        rename = "replyCACerts",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reply_ca_certs: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_audience: Option<String>,
    /// The Subscription's delivery; the channel's `spec.delivery` fills the fields it lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
    /// The OIDC service account the Subscription sends as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
}

/// One entry of `status.subscribers[]` (`SubscriberStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `True`, `False` or `Unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthStatus>,
}

/// `status.policies[]`: an EventPolicy that applies to the resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppliedEventPolicyRef {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub name: String,
}
