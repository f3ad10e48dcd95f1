//! The librdkafka context of a bridge consumer: it turns rebalances into an assignment the poll
//! loop reconciles its partition workers against, and statistics into a lag figure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use tokio::sync::watch;

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
    changed: watch::Sender<u64>,
}

impl Default for ConsumerState {
    fn default() -> Self {
        Self {
            assigned: Mutex::default(),
            assigned_count: AtomicUsize::new(0),
            lag: AtomicI64::new(0),
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
    }
}

pub struct BridgeContext {
    state: Arc<ConsumerState>,
    /// Names the resource in log lines coming from librdkafka callbacks.
    resource: String,
}

impl BridgeContext {
    pub fn new(state: Arc<ConsumerState>, resource: String) -> Self {
        Self { state, resource }
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
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(resource = %self.resource, %error, reason, "kafka client error");
    }
}

impl ConsumerContext for BridgeContext {
    /// New partitions are paused before they are assigned, so none is fetched until the poll loop
    /// has given it its own queue and resumed it. Pausing only after the assignment would race
    /// the first fetch: librdkafka drops what a pause catches in flight and, with nothing
    /// consumed yet, resumes *after* it, skipping those records.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            if let Err(error) = consumer.pause(tpl) {
                tracing::warn!(resource = %self.resource, %error, "pausing new partitions failed");
            }
        }
    }

    /// Records the assignment; new partitions are paused again in case the pause before the
    /// assignment found no partition state to mark (it normally does: metadata comes first).
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |tpl: &rdkafka::TopicPartitionList| -> Vec<TopicPartition> {
            tpl.elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect()
        };
        match rebalance {
            Rebalance::Assign(tpl) => {
                if let Err(error) = consumer.pause(tpl) {
                    tracing::warn!(resource = %self.resource, %error, "pausing new partitions failed");
                }
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
