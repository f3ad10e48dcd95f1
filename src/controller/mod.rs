//! The Kubernetes controller: watches KafkaSources and KafkaChannels, resolves them with the
//! feeds' code, publishes the plans to the data plane and writes their status.
//!
//! Each reconcile reads what the resource refers to ([`lookup`]), computes the desired state
//! and status purely ([`source`], [`channel`], [`conditions`]), and applies the side effects in
//! one place.

pub mod channel;
pub mod cluster;
pub mod conditions;
pub mod contract_store;
pub mod dataplane;
pub mod error;
pub mod leader;
pub mod lookup;
pub mod observed;
pub mod reconcile;
pub mod run;
pub mod source;
