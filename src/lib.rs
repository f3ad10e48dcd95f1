//! kafka-bridge: Knative Eventing's KafkaSource and KafkaChannel data plane and controller.
//!
//! Dependencies point down: `feed` -> `engine` -> `consumer` -> `delivery`/`kafka` -> `event`,
//! with `resources` (the Knative types) read by the feeds only.

pub mod admin;
pub mod consumer;
pub mod controller;
pub mod delivery;
pub mod engine;
pub mod event;
pub mod feed;
pub mod ingress;
pub mod kafka;
pub mod metrics;
pub mod resources;
