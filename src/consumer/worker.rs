//! A partition worker: reads one partition's own librdkafka queue, keeps up to `max_in_flight`
//! of its records in delivery (1 = ordered), and stores the commit point as the settled prefix
//! grows. It reads a record only when it has room for it, so a slow partition simply stops
//! reading: librdkafka then stops fetching it once its bounded pre-fetch queue is full, and the
//! other partitions are not affected.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::context::{BridgeContext, TopicPartition};
use super::handler::{Handled, Position, RecordHandler};
use super::offsets::OffsetTracker;
use super::partition_queues::PartitionQueue;

/// How a worker schedules deliveries.
#[derive(Clone)]
pub(crate) struct Concurrency {
    /// Records of this partition in delivery at once: 1 keeps them in order.
    pub per_partition: usize,
    /// Shared by all partitions of a resource when delivery is unordered.
    pub shared: Option<Arc<Semaphore>>,
}

pub(crate) struct Worker<H> {
    pub tp: TopicPartition,
    pub queue: Arc<PartitionQueue>,
    pub handler: Arc<H>,
    pub consumer: Arc<StreamConsumer<BridgeContext>>,
    pub concurrency: Concurrency,
    /// Stop taking records; finish those in flight.
    pub stop: CancellationToken,
    /// Abandon those in flight too.
    pub abort: CancellationToken,
}

impl<H: RecordHandler> Worker<H> {
    pub async fn run(self) {
        let topic: Arc<str> = Arc::from(self.tp.0.as_str());
        let mut tracker = OffsetTracker::default();
        let mut in_flight = FuturesUnordered::new();
        let mut stopping = false;
        loop {
            self.queue
                .in_flight
                .store(in_flight.len(), Ordering::Relaxed);
            if stopping && in_flight.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                () = self.abort.cancelled() => break,
                Some((offset, handled)) = in_flight.next(), if !in_flight.is_empty() => {
                    if handled == Handled::Abandoned {
                        // Everything after it is being abandoned too; nothing more may commit.
                        break;
                    }
                    if let Some(last) = tracker.settle(offset) {
                        self.store(last);
                    }
                }
                received = self.queue.queue.recv(),
                    if !stopping && in_flight.len() < self.concurrency.per_partition =>
                {
                    let (prepared, offset) = match received {
                        Ok(message) => (self.handler.prepare(&message), message.offset()),
                        Err(error) => {
                            tracing::warn!(topic = %self.tp.0, partition = self.tp.1, %error, "kafka consume error");
                            continue;
                        }
                    };
                    tracker.start(offset);
                    let at = Position {
                        topic: Arc::clone(&topic),
                        partition: self.tp.1,
                        offset,
                    };
                    let handler = Arc::clone(&self.handler);
                    let shared = self.concurrency.shared.clone();
                    let abort = self.abort.clone();
                    in_flight.push(async move {
                        // A closed semaphore never happens (we never close it); run unlimited then.
                        let _permit = match shared {
                            Some(semaphore) => semaphore.acquire_owned().await.ok(),
                            None => None,
                        };
                        (offset, handler.handle(prepared, at, &abort).await)
                    });
                }
                () = self.stop.cancelled(), if !stopping => stopping = true,
            }
        }
    }

    fn store(&self, offset: i64) {
        // Fails only when the partition was revoked meanwhile; its next owner redelivers from the
        // last commit, which is the at-least-once outcome we want.
        if let Err(error) = self.consumer.store_offset(&self.tp.0, self.tp.1, offset) {
            tracing::debug!(topic = %self.tp.0, partition = self.tp.1, offset, %error, "offset not stored");
        }
    }
}
