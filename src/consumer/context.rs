//! The librdkafka context of a bridge consumer: it gives each partition its own queue before the
//! partition is assigned, turns rebalances into an assignment the poll loop reconciles its
//! partition workers against, and statistics into a lag figure and stalled partitions.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use tokio::sync::watch;

use super::partition_queues::PartitionQueues;
use super::watchdog::{Change, Sample, Watch};

/// A topic and partition.
pub type TopicPartition = (String, i32);

/// What one consumer instance knows about itself, shared with the engine's readiness and metrics.
#[derive(Debug)]
pub struct ConsumerState {
    /// Assigned partitions, each with the epoch of the assignment that gave it: an eager
    /// rebalance can revoke and re-assign a partition between two looks, and its queue must then
    /// be split again.
    assigned: Mutex<Assignment>,
    assigned_count: AtomicUsize,
    lag: AtomicI64,
    stalled: AtomicUsize,
    changed: watch::Sender<u64>,
}

impl Default for ConsumerState {
    fn default() -> Self {
        Self {
            assigned: Mutex::default(),
            assigned_count: AtomicUsize::new(0),
            lag: AtomicI64::new(0),
            stalled: AtomicUsize::new(0),
            changed: watch::Sender::new(0),
        }
    }
}

#[derive(Debug, Default)]
struct Assignment {
    epoch: u64,
    partitions: HashMap<TopicPartition, u64>,
}

impl ConsumerState {
    /// Partitions currently assigned to this consumer.
    pub fn assigned_partitions(&self) -> usize {
        self.assigned_count.load(Ordering::Relaxed)
    }

    /// Records not yet settled across the assignment, from the latest librdkafka statistics.
    pub fn lag(&self) -> i64 {
        self.lag.load(Ordering::Relaxed)
    }

    /// Assigned partitions that have records waiting (or cannot fetch) while nothing moves for
    /// longer than the watchdog allows, as of the latest librdkafka statistics.
    pub fn stalled_partitions(&self) -> usize {
        self.stalled.load(Ordering::Relaxed)
    }

    /// The assigned partitions with the epoch of their assignment.
    pub fn assignment(&self) -> Vec<(TopicPartition, u64)> {
        let assigned = self.assigned.lock().unwrap_or_else(PoisonError::into_inner);
        assigned
            .partitions
            .iter()
            .map(|(tp, epoch)| (tp.clone(), *epoch))
            .collect()
    }

    /// Notified after each change of the assignment.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn update(&self, apply: impl FnOnce(&mut Assignment)) {
        let mut assigned = self.assigned.lock().unwrap_or_else(PoisonError::into_inner);
        apply(&mut assigned);
        self.assigned_count
            .store(assigned.partitions.len(), Ordering::Relaxed);
        drop(assigned);
        self.changed.send_modify(|generation| *generation += 1);
    }

    pub(crate) fn clear(&self) {
        self.update(|a| a.partitions.clear());
        self.stalled.store(0, Ordering::Relaxed);
    }
}

pub struct BridgeContext {
    state: Arc<ConsumerState>,
    /// Names the resource in log lines coming from librdkafka callbacks.
    resource: String,
    pub(crate) queues: PartitionQueues,
    /// The stall watchdog's view of each assigned partition.
    watches: Mutex<HashMap<TopicPartition, Watch>>,
}

impl BridgeContext {
    pub fn new(state: Arc<ConsumerState>, resource: String) -> Self {
        Self {
            state,
            resource,
            queues: PartitionQueues::default(),
            watches: Mutex::default(),
        }
    }

    /// Judges every assigned partition from a statistics report; logs stalls and recoveries.
    fn watch_partitions(&self, statistics: &Statistics) {
        let now = Instant::now();
        let mut watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        let mut kept = HashMap::new();
        for (tp, _) in self.state.assignment() {
            let Some(partition) = statistics
                .topics
                .get(&tp.0)
                .and_then(|topic| topic.partitions.get(&tp.1))
            else {
                continue;
            };
            let busy = self
                .queues
                .get(&tp)
                .is_some_and(|q| q.in_flight.load(Ordering::Relaxed) > 0);
            let sample = Sample::from_stats(partition, busy);
            let mut watch = watches
                .remove(&tp)
                .unwrap_or_else(|| Watch::new(&sample, now));
            match watch.observe(&sample, now) {
                Some(Change::Stalled(waited)) => tracing::warn!(
                    resource = %self.resource,
                    topic = %tp.0,
                    partition = tp.1,
                    waited_secs = waited.as_secs(),
                    fetch_state = %partition.fetch_state,
                    queued = partition.fetchq_cnt,
                    high_watermark = partition.hi_offset,
                    fetch_position = partition.next_offset,
                    consumed = partition.app_offset,
                    "partition stalled: records wait (or it does not fetch) but nothing moves"
                ),
                Some(Change::Recovered) => tracing::info!(
                    resource = %self.resource,
                    topic = %tp.0,
                    partition = tp.1,
                    "stalled partition moves again"
                ),
                None => {}
            }
            kept.insert(tp, watch);
        }
        let stalled = kept.values().filter(|w| w.stalled()).count();
        *watches = kept;
        self.state.stalled.store(stalled, Ordering::Relaxed);
    }
}

impl ClientContext for BridgeContext {
    fn stats(&self, statistics: Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|topic| topic.partitions.values())
            .filter(|p| p.partition >= 0 && p.desired && p.consumer_lag_stored > 0)
            .map(|p| p.consumer_lag_stored)
            .sum();
        self.state.lag.store(lag, Ordering::Relaxed);
        self.watch_partitions(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(resource = %self.resource, %error, reason, "kafka client error");
    }
}

impl ConsumerContext for BridgeContext {
    /// Splits each new partition's queue off before librdkafka starts fetching it (see
    /// [`PartitionQueues`]), so its records only ever reach its own worker.
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            for element in tpl.elements() {
                let tp = (element.topic().to_string(), element.partition());
                if self.queues.get_or_split(&tp).is_none() {
                    tracing::warn!(resource = %self.resource, topic = %tp.0, partition = tp.1, "no queue for a partition being assigned");
                }
            }
        }
    }

    /// Records the assignment for the poll loop.
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |tpl: &rdkafka::TopicPartitionList| -> Vec<TopicPartition> {
            tpl.elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect()
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                let added = partitions(tpl);
                tracing::info!(resource = %self.resource, partitions = ?added, "partitions assigned");
                self.state.update(|assigned| {
                    assigned.epoch += 1;
                    let epoch = assigned.epoch;
                    assigned
                        .partitions
                        .extend(added.into_iter().map(|tp| (tp, epoch)));
                });
            }
            Rebalance::Revoke(tpl) => {
                let removed = partitions(tpl);
                tracing::info!(resource = %self.resource, partitions = ?removed, "partitions revoked");
                self.state.update(|assigned| {
                    for tp in &removed {
                        assigned.partitions.remove(tp);
                    }
                });
            }
            Rebalance::Error(error) => {
                tracing::warn!(resource = %self.resource, %error, "rebalance failed");
            }
        }
    }
}
