//! One consumer group member: subscribes, polls, and hands each record to its partition's worker.
//!
//! The poll loop never waits on delivery. When a partition's queue is full its records go to a
//! small overflow and the partition is paused at the broker, so a slow partition holds back only
//! itself and memory stays bounded; it resumes once its worker has drained the overflow.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use rdkafka::{ClientConfig, TopicPartitionList};
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::context::{BridgeContext, ConsumerState, TopicPartition};
use super::handler::RecordHandler;
use super::worker::{Backpressure, Concurrency, Worker};

#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("creating the Kafka consumer for {resource}: {source}")]
    Create {
        resource: String,
        source: KafkaError,
    },
    #[error("subscribing {resource} to topics {topics:?}: {source}")]
    Subscribe {
        resource: String,
        topics: Vec<String>,
        source: KafkaError,
    },
}

/// What to consume and how.
#[derive(Clone)]
pub struct ConsumerSpec {
    /// Names the resource in logs and errors.
    pub resource: String,
    pub config: ClientConfig,
    pub topics: Vec<String>,
    /// Records of one partition in delivery at once (1 = ordered).
    pub per_partition_in_flight: usize,
    /// Records in delivery at once across all partitions (unordered delivery), shared by every
    /// consumer instance of the resource.
    pub shared_in_flight: Option<Arc<Semaphore>>,
    /// Records queued per partition ahead of its worker.
    pub queue_capacity: usize,
}

/// Stop signals, in escalating order.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Stop fetching; let in-flight deliveries finish and commit.
    pub stop: CancellationToken,
    /// Abandon in-flight deliveries (uncommitted, so they are redelivered later).
    pub abort: CancellationToken,
}

struct Slot {
    records: mpsc::Sender<OwnedMessage>,
    overflow: VecDeque<OwnedMessage>,
    /// Highest offset handed on; anything at or below it is a re-fetch and is skipped.
    last_forwarded: i64,
    backpressure: Arc<Backpressure>,
    abort: CancellationToken,
}

struct PollLoop<H> {
    spec: ConsumerSpec,
    consumer: Arc<StreamConsumer<BridgeContext>>,
    state: Arc<ConsumerState>,
    handler: Arc<H>,
    shutdown: Shutdown,
    slots: HashMap<TopicPartition, Slot>,
    paused: usize,
    room: Arc<Notify>,
    workers: JoinSet<()>,
}

/// Runs one consumer until `shutdown.stop` fires, then drains, commits and leaves the group.
pub async fn run<H: RecordHandler>(
    spec: ConsumerSpec,
    handler: Arc<H>,
    state: Arc<ConsumerState>,
    shutdown: Shutdown,
) -> Result<(), ConsumerError> {
    let context = BridgeContext::new(Arc::clone(&state), spec.resource.clone());
    let consumer: StreamConsumer<BridgeContext> = spec
        .config
        .create_with_context(context)
        .map_err(|source| ConsumerError::Create {
            resource: spec.resource.clone(),
            source,
        })?;
    let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|source| ConsumerError::Subscribe {
            resource: spec.resource.clone(),
            topics: spec.topics.clone(),
            source,
        })?;
    let poll = PollLoop {
        consumer: Arc::new(consumer),
        state,
        handler,
        shutdown,
        slots: HashMap::new(),
        paused: 0,
        room: Arc::new(Notify::new()),
        workers: JoinSet::new(),
        spec,
    };
    poll.run().await;
    Ok(())
}

impl<H: RecordHandler> PollLoop<H> {
    async fn run(mut self) {
        let mut changes = self.state.subscribe_changes();
        // A record borrows the consumer while the loop updates its own state.
        let consumer = Arc::clone(&self.consumer);
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.stop.cancelled() => break,
                Ok(()) = changes.changed() => self.reconcile_assignment(),
                () = self.room.notified(), if self.paused > 0 => self.drain_overflows(),
                received = consumer.recv() => match received {
                    Ok(message) => self.forward(&message),
                    Err(error) => {
                        tracing::warn!(resource = %self.spec.resource, %error, "kafka consume error");
                    }
                },
            }
        }
        self.finish().await;
    }

    fn forward(&mut self, message: &BorrowedMessage<'_>) {
        let tp = (message.topic().to_string(), message.partition());
        if !self.slots.contains_key(&tp) {
            if !self.state.is_assigned(&tp) {
                tracing::debug!(topic = %tp.0, partition = tp.1, "record of an unassigned partition skipped");
                return;
            }
            let slot = self.spawn_worker(tp.clone());
            self.slots.insert(tp.clone(), slot);
        }
        let Some(slot) = self.slots.get_mut(&tp) else {
            return;
        };
        if message.offset() <= slot.last_forwarded {
            return;
        }
        slot.last_forwarded = message.offset();
        let record = message.detach();
        if !slot.overflow.is_empty() {
            slot.overflow.push_back(record);
            return;
        }
        match slot.records.try_send(record) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(record)) => {
                slot.overflow.push_back(record);
                slot.backpressure.paused.store(true, Ordering::Release);
                self.paused += 1;
                self.set_paused(&tp, true);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The worker ended after an abandoned delivery (abort); the record stays
                // uncommitted and comes back to whoever consumes the partition next.
                tracing::debug!(topic = %tp.0, partition = tp.1, "worker gone, record left uncommitted");
            }
        }
    }

    fn drain_overflows(&mut self) {
        let mut resumed = Vec::new();
        for (tp, slot) in &mut self.slots {
            while let Some(record) = slot.overflow.pop_front() {
                match slot.records.try_send(record) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(record)) => {
                        slot.overflow.push_front(record);
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        slot.overflow.clear();
                        break;
                    }
                }
            }
            if slot.overflow.is_empty() && slot.backpressure.paused.swap(false, Ordering::AcqRel) {
                resumed.push(tp.clone());
            }
        }
        for tp in resumed {
            self.paused -= 1;
            self.set_paused(&tp, false);
        }
    }

    fn set_paused(&self, tp: &TopicPartition, pause: bool) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&tp.0, tp.1);
        let result = if pause {
            self.consumer.pause(&tpl)
        } else {
            self.consumer.resume(&tpl)
        };
        if let Err(error) = result {
            tracing::warn!(topic = %tp.0, partition = tp.1, pause, %error, "pause/resume failed");
        }
    }

    /// Drops the workers of partitions no longer assigned: their in-flight deliveries are
    /// abandoned uncommitted, as the new owner starts from the last commit.
    fn reconcile_assignment(&mut self) {
        let revoked: Vec<TopicPartition> = self
            .slots
            .keys()
            .filter(|tp| !self.state.is_assigned(tp))
            .cloned()
            .collect();
        for tp in revoked {
            if let Some(slot) = self.slots.remove(&tp) {
                slot.abort.cancel();
                if slot.backpressure.paused.load(Ordering::Acquire) {
                    self.paused -= 1;
                }
            }
        }
    }

    fn spawn_worker(&mut self, tp: TopicPartition) -> Slot {
        let (tx, rx) = mpsc::channel(self.spec.queue_capacity.max(1));
        let backpressure = Arc::new(Backpressure {
            paused: AtomicBool::new(false),
            room: Arc::clone(&self.room),
        });
        let abort = self.shutdown.abort.child_token();
        let worker = Worker {
            tp,
            records: rx,
            handler: Arc::clone(&self.handler),
            consumer: Arc::clone(&self.consumer),
            concurrency: Concurrency {
                per_partition: self.spec.per_partition_in_flight.max(1),
                shared: self.spec.shared_in_flight.clone(),
            },
            backpressure: Arc::clone(&backpressure),
            stop: self.shutdown.stop.clone(),
            abort: abort.clone(),
        };
        self.workers.spawn(worker.run());
        Slot {
            records: tx,
            overflow: VecDeque::new(),
            last_forwarded: -1,
            backpressure,
            abort,
        }
    }

    /// Lets in-flight deliveries finish (until `abort`), then commits what settled and leaves
    /// the group, off the async runtime since both block.
    async fn finish(mut self) {
        self.slots.clear();
        while self.workers.join_next().await.is_some() {}
        let consumer = Arc::clone(&self.consumer);
        let resource = self.spec.resource.clone();
        let state = Arc::clone(&self.state);
        drop(self);
        let closed = tokio::task::spawn_blocking(move || {
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => {}
                // Nothing stored since the last commit.
                Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
                Err(error) => tracing::warn!(%resource, %error, "final commit failed"),
            }
            consumer.unsubscribe();
            drop(consumer);
        });
        if tokio::time::timeout(Duration::from_secs(10), closed)
            .await
            .is_err()
        {
            tracing::warn!("consumer close took longer than 10s");
        }
        state.clear();
    }
}
