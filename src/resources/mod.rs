//! Knative's resources as users write them (YAML or JSON, camelCase), as plain serde types.
//!
//! These mirror the Go API types field for field: unknown fields are ignored (as the API server
//! prunes them) and nothing is denied, so a manifest that `kubectl apply` accepts also parses here.
//! Values keep Knative's wire shapes (durations and URLs as strings, Secret data as base64): the
//! feeds parse and validate them once when they resolve a plan.

pub mod addressable;
pub mod channelable;
pub mod config_map;
pub mod crds;
pub mod delivery;
pub mod destination;
pub mod kafka_channel;
pub mod kafka_source;
pub mod meta;
pub mod secret;
pub mod status;

pub use addressable::{AddressStatus, Addressable};
pub use channelable::{AppliedEventPolicyRef, SubscriberSpec, SubscriberStatus};
pub use config_map::ConfigMap;
pub use delivery::{BackoffPolicyType, DeliveryFormat, DeliverySpec};
pub use destination::{Destination, KReference};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
pub use kafka_channel::{KafkaChannel, KafkaChannelSpec, KafkaChannelStatus};
pub use kafka_source::{
    CloudEventOverrides, InitialOffset, KafkaNetSpec, KafkaSaslSpec, KafkaSource, KafkaSourceSpec,
    KafkaSourceStatus, KafkaTlsSpec, Ordering, SecretValueFromSource,
};
pub use meta::DocumentMeta;
pub use secret::{Secret, SecretKeySelector};
