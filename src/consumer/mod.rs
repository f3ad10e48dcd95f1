//! Kafka consumption with at-least-once delivery: a poll loop per consumer, a worker per
//! partition, and offsets committed only over settled records.

pub mod context;
pub mod handler;
pub mod instance;
pub mod offsets;
mod partition_queues;
mod watchdog;
mod worker;

pub use context::ConsumerState;
pub use handler::{Handled, Position, RecordHandler};
pub use instance::{run, ConsumerError, ConsumerSpec, Shutdown};
pub use rdkafka::message::OwnedMessage as Record;
