//! What a consumer does with each record: the seam between Kafka consumption and delivery.
//! A KafkaSource maps records to events for its sink; a channel subscriber decodes stored events.

use std::future::Future;

use rdkafka::message::OwnedMessage;
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

pub trait RecordHandler: Send + Sync + 'static {
    /// Handles one record. `abort` fires when in-flight work must stop at once.
    fn handle(
        &self,
        record: &OwnedMessage,
        abort: &CancellationToken,
    ) -> impl Future<Output = Handled> + Send;
}
