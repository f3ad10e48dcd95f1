//! One consumer group member: subscribes, and gives each assigned partition its own librdkafka
//! queue and worker.
//!
//! Nothing waits on delivery here. A worker reads its partition only when it has room, so a slow
//! partition holds back only itself, and librdkafka's bounded pre-fetch keeps memory flat. A
//! partition's queue is split off before it is assigned (see [`BridgeContext`]), so no record of
//! it passes through the shared queue and it never needs pausing; the loop hands the queue to
//! a new worker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::context::{BridgeContext, ConsumerState, TopicPartition};
use super::handler::RecordHandler;
use super::worker::{Concurrency, Worker};

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
}

/// Stop signals, in escalating order.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Stop fetching; let in-flight deliveries finish and commit.
    pub stop: CancellationToken,
    /// Abandon in-flight deliveries (uncommitted, so they are redelivered later).
    pub abort: CancellationToken,
}

/// A running partition worker and the assignment epoch it serves.
struct Assigned {
    epoch: u64,
    abort: CancellationToken,
}

struct PollLoop<H> {
    spec: ConsumerSpec,
    consumer: Arc<StreamConsumer<BridgeContext>>,
    state: Arc<ConsumerState>,
    handler: Arc<H>,
    shutdown: Shutdown,
    partitions: HashMap<TopicPartition, Assigned>,
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
    let consumer = Arc::new(consumer);
    consumer.context().queues.attach(&consumer);
    let topics: Vec<&str> = spec.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|source| ConsumerError::Subscribe {
            resource: spec.resource.clone(),
            topics: spec.topics.clone(),
            source,
        })?;
    let poll = PollLoop {
        consumer,
        state,
        handler,
        shutdown,
        partitions: HashMap::new(),
        workers: JoinSet::new(),
        spec,
    };
    poll.run().await;
    Ok(())
}

impl<H: RecordHandler> PollLoop<H> {
    async fn run(mut self) {
        let mut changes = self.state.subscribe_changes();
        // The shared queue must still be polled to serve rebalances and errors.
        let consumer = Arc::clone(&self.consumer);
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.stop.cancelled() => break,
                Ok(()) = changes.changed() => self.reconcile_assignment(),
                received = consumer.recv() => match received {
                    Ok(message) => tracing::warn!(
                        resource = %self.spec.resource,
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        "record on the shared queue ignored; it is read again from its partition"
                    ),
                    Err(error) => {
                        tracing::warn!(resource = %self.spec.resource, %error, "kafka consume error");
                    }
                },
            }
        }
        self.finish().await;
    }

    /// Starts a worker for each newly assigned partition and stops those of revoked ones (their
    /// in-flight deliveries are abandoned uncommitted: the new owner starts from the last commit).
    fn reconcile_assignment(&mut self) {
        let assignment: HashMap<TopicPartition, u64> =
            self.state.assignment().into_iter().collect();
        self.partitions.retain(|tp, assigned| {
            let current = assignment.get(tp) == Some(&assigned.epoch);
            if !current {
                assigned.abort.cancel();
            }
            current
        });
        for (tp, epoch) in assignment {
            if self.partitions.contains_key(&tp) {
                continue;
            }
            // Normally split before the assignment; splitting now is the fallback.
            let Some(queue) = self.consumer.context().queues.get_or_split(&tp) else {
                tracing::warn!(resource = %self.spec.resource, topic = %tp.0, partition = tp.1, "no queue for an assigned partition");
                continue;
            };
            let abort = self.shutdown.abort.child_token();
            let worker = Worker {
                tp: tp.clone(),
                queue,
                handler: Arc::clone(&self.handler),
                consumer: Arc::clone(&self.consumer),
                concurrency: Concurrency {
                    per_partition: self.spec.per_partition_in_flight.max(1),
                    shared: self.spec.shared_in_flight.clone(),
                },
                stop: self.shutdown.stop.clone(),
                abort: abort.clone(),
            };
            self.workers.spawn(worker.run());
            self.partitions.insert(tp, Assigned { epoch, abort });
        }
    }

    /// Lets in-flight deliveries finish (until `abort`), then commits what settled and leaves
    /// the group, off the async runtime since both block.
    async fn finish(mut self) {
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

impl<H> Drop for PollLoop<H> {
    /// The partition queues hold the consumer; letting go of them here (also when the task is
    /// dropped mid-way) lets the consumer close.
    fn drop(&mut self) {
        self.consumer.context().queues.clear();
    }
}
