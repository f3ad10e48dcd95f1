//! What a consumer does with each record: the seam between Kafka consumption and delivery.
//! A KafkaSource maps records to events for its sink; a channel subscriber decodes stored events.
//!
//! Handling has two steps. [`RecordHandler::prepare`] runs on the partition's worker while
//! librdkafka still holds the record, and copies out only what delivery needs (the encoded
//! event), so a record's payload is copied once, straight into the request body.
//! [`RecordHandler::handle`] then delivers it, alongside the partition's other records in flight.

use std::future::Future;
use std::sync::Arc;

use rdkafka::message::Message;
use tokio_util::sync::CancellationToken;

/// The fate of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Delivered, dead-lettered, or dropped by the delivery policy: the offset may be committed.
    Settled,
    /// Given up because of shutdown or revocation: the offset must not be committed, so the
    /// record is delivered again by whoever consumes the partition next.
    Abandoned,
}

/// Where a record sits, for log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

pub trait RecordHandler: Send + Sync + 'static {
    /// What [`RecordHandler::prepare`] takes from a record.
    type Prepared: Send + 'static;

    /// Takes what delivery needs from `record`; records of a partition pass here in order.
    fn prepare(&self, record: &impl Message) -> Self::Prepared;

    /// Handles one prepared record. `abort` fires when in-flight work must stop at once.
    fn handle(
        &self,
        prepared: Self::Prepared,
        at: Position,
        abort: &CancellationToken,
    ) -> impl Future<Output = Handled> + Send;
}
