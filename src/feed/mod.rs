//! Feeds: what gives the engine its [`Plan`](crate::engine::plan::Plan).
//!
//! Standalone, the plan comes from Knative YAML files ([`load_plan`]); in a cluster, from the
//! contract file the controller writes ([`contract_file`]). Resolving one resource is
//! shared with any other feed, so defaults and validation are written once: a KafkaSource into a
//! [`SourcePlan`](crate::engine::plan::SourcePlan) ([`resolve`]), a KafkaChannel into a
//! [`ChannelPlan`](crate::engine::plan::ChannelPlan) ([`channel`]) on the cluster that
//! `kafka-channel-config` describes ([`channel_config`]), and either's delivery ([`delivery`]).

pub mod auth_secret;
pub mod channel;
pub mod channel_config;
pub mod contract_file;
pub mod delivery;
pub mod duration;
pub mod error;
pub mod files;
pub mod generic_channel;
mod net;
pub mod resolve;
pub mod standalone;
mod target;

pub use error::{DocRef, FeedError};
pub use standalone::load_plan;
