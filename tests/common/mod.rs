//! Shared helpers for the integration tests: a real Kafka-API broker (tansu), Kafka produce/consume
//! helpers, a programmable HTTP sink, and a handle on the `kafka-bridge` binary.
//!
//! Every test file includes this with `mod common;`. Each file uses only part of it, hence the
//! `dead_code` and `unused_imports` allowances. Every wait in here is bounded in time; failures
//! panic with diagnostics (broker or bridge logs, what arrived so far) so a red test says why.
#![allow(dead_code, unused_imports)]

pub mod bridge;
pub mod broker;
pub mod files;
pub mod kafka;
pub mod net;
pub mod process;
pub mod prometheus;
pub mod sink;

pub use bridge::BridgeProcess;
pub use broker::{broker, Broker};
pub use files::{write_yaml, ConfigFile, YamlFile};
pub use kafka::{
    committed_offsets, consume_all, consume_up_to, create_topic, produce, unique, Consumed,
    Delivered, Record,
};
pub use net::free_port;
pub use prometheus::metric_value;
pub use sink::{Delay, Plan, Request, Sink};

/// Where helpers put their temp dirs: cargo's per-target scratch dir, so that what a killed test
/// run leaves behind is removed with `cargo clean` instead of piling up in /tmp.
pub fn scratch_dir() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
}
