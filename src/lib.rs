//! kafka-bridge: Knative Eventing's KafkaSource and KafkaChannel data plane and controller.
//!
//! Dependencies point down: `feed` -> `engine` -> `consumer` -> `delivery`/`kafka` -> `event`.

pub mod delivery;
pub mod engine;
pub mod event;
pub mod feed;
pub mod resources;
