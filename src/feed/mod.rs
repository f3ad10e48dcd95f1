//! Feeds: what gives the engine its [`Plan`](crate::engine::plan::Plan).
//!
//! Standalone, the plan comes from Knative YAML files ([`load_plan`]); the resolution of one
//! KafkaSource into a [`SourcePlan`](crate::engine::plan::SourcePlan) ([`resolve`]) is shared with
//! any other feed, so defaults and validation are written once.

pub mod duration;
pub mod error;
pub mod files;
mod net;
pub mod resolve;
pub mod standalone;
mod target;

pub use error::{DocRef, FeedError};
pub use standalone::load_plan;
