//! Each partition's own librdkafka queue, split off the consumer's shared queue *before* the
//! partition is assigned and kept for the consumer's whole life.
//!
//! Splitting before the assignment means no record of the partition can ever reach the shared
//! queue, so new partitions need no pause/resume. That matters: a pause or resume takes a
//! librdkafka "version barrier", and when one lands between librdkafka taking the barrier for the
//! partition's own fetch start and queueing it, the fetch start is discarded as outdated and the
//! partition never fetches at all, silently (librdkafka issue #2190; seen here under CPU load).
//!
//! Keeping the queue across re-assignments matters too: the fetch queue belongs to the partition,
//! and dropping a split handle switches off the wake-up of every handle on it, so splitting it
//! again while an old worker still held the previous handle left the new worker asleep.

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use rdkafka::consumer::stream_consumer::StreamPartitionQueue;
use rdkafka::consumer::StreamConsumer;

use super::context::{BridgeContext, TopicPartition};

/// One partition's queue and what its worker is doing with it.
pub(crate) struct PartitionQueue {
    pub queue: StreamPartitionQueue<BridgeContext>,
    /// Records the worker has taken and not yet settled (read by the stall watchdog).
    pub in_flight: AtomicUsize,
}

/// The consumer's partition queues. Each holds the consumer alive, so the poll loop empties this
/// when it ends (see [`PartitionQueues::clear`]).
#[derive(Default)]
pub(crate) struct PartitionQueues {
    consumer: OnceLock<Weak<StreamConsumer<BridgeContext>>>,
    queues: Mutex<HashMap<TopicPartition, Arc<PartitionQueue>>>,
}

impl PartitionQueues {
    /// Gives access to the consumer that owns the context holding this.
    pub fn attach(&self, consumer: &Arc<StreamConsumer<BridgeContext>>) {
        // Set once, right after the consumer is created; a second call has nothing to change.
        let _ = self.consumer.set(Arc::downgrade(consumer));
    }

    /// The queue of `tp`, split now unless it already was. `None` when the consumer is going
    /// away or librdkafka knows no such partition.
    pub fn get_or_split(&self, tp: &TopicPartition) -> Option<Arc<PartitionQueue>> {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(queue) = queues.get(tp) {
            return Some(Arc::clone(queue));
        }
        let consumer = self.consumer.get()?.upgrade()?;
        let queue = Arc::new(PartitionQueue {
            queue: consumer.split_partition_queue(&tp.0, tp.1)?,
            in_flight: AtomicUsize::new(0),
        });
        queues.insert(tp.clone(), Arc::clone(&queue));
        Some(queue)
    }

    /// The queue of `tp` if it has been split.
    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<PartitionQueue>> {
        let queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        queues.get(tp).cloned()
    }

    /// Drops every queue, releasing their hold on the consumer.
    pub fn clear(&self) {
        let drained: Vec<_> = self
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        // Dropped outside the lock: dropping a queue calls into librdkafka.
        drop(drained);
    }
}
