//! A running KafkaSource: its consumers, and the handler that turns each record into a
//! CloudEvent (Knative's mapping) and delivers it to the sink.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::message::Message;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::consumer::{
    self, ConsumerSpec, ConsumerState, Handled, Position, RecordHandler, Shutdown,
};
use crate::delivery::{DeliveryError, Dispatcher, Subscriber};
use crate::engine::plan::SourcePlan;
use crate::engine::readiness::Part;
use crate::engine::recorder::DeliveryRecorder;
use crate::engine::task::Task;
use crate::engine::{Deps, EMBEDDED_ONLY_STANDALONE};
use crate::event::{HttpMessage, Mapper};
use crate::kafka::client_config::consumer_config;

pub(crate) const KIND: &str = "KafkaSource";

struct SourceHandler {
    mapper: Mapper,
    subscriber: Subscriber,
    dispatcher: Dispatcher,
    recorder: DeliveryRecorder,
}

impl RecordHandler for SourceHandler {
    type Prepared = HttpMessage;

    fn prepare(&self, record: &impl Message) -> HttpMessage {
        self.mapper.message_to_http(record)
    }

    async fn handle(
        &self,
        message: HttpMessage,
        at: Position,
        abort: &CancellationToken,
    ) -> Handled {
        let started = Instant::now();
        let delivery = self
            .dispatcher
            .deliver(&self.subscriber, &message, abort, &self.recorder)
            .await;
        self.recorder.settle(&at, started, delivery)
    }
}

/// Checks what can only be checked with a client in hand (CA certificates), and builds the
/// delivery target.
fn prepare(plan: &SourcePlan, deps: &Deps) -> Result<Subscriber, DeliveryError> {
    let targets = std::iter::once(&plan.sink).chain(plan.delivery.dead_letter.as_ref());
    for target in targets {
        deps.dispatcher.check_target(target)?;
    }
    Subscriber::new(plan.sink.clone(), plan.delivery.clone(), &plan.id.namespace)
}

/// Starts the source: its readiness is registered at once (not ready until its consumers hold
/// partitions); the engine removes it once the task has stopped.
pub(crate) fn start(plan: Arc<SourcePlan>, deps: &Arc<Deps>) -> Task {
    let states: Vec<Arc<ConsumerState>> = (0..plan.consumers.max(1))
        .map(|_| Arc::new(ConsumerState::default()))
        .collect();
    let ready_states = states.clone();
    deps.readiness.set(part(&plan), plan.generation, move || {
        ready_states
            .iter()
            .map(|s| s.assigned_partitions())
            .sum::<usize>()
            > 0
    });
    let deps = Arc::clone(deps);
    Task::spawn(format!("{KIND} {}", plan.id), move |shutdown| {
        run(plan, deps, states, shutdown)
    })
}

pub(crate) fn part(plan: &SourcePlan) -> Part {
    Part::Source(plan.id.clone())
}

/// Runs the source until `shutdown.stop` fires and its consumers have drained.
async fn run(
    plan: Arc<SourcePlan>,
    deps: Arc<Deps>,
    states: Vec<Arc<ConsumerState>>,
    shutdown: Shutdown,
) {
    let resource = format!("{KIND} {}", plan.id);
    let prepared = if plan.kafka.is_embedded() {
        Err(EMBEDDED_ONLY_STANDALONE.to_string())
    } else {
        prepare(&plan, &deps).map_err(|e| e.to_string())
    };
    let subscriber = match prepared {
        Ok(subscriber) => subscriber,
        Err(error) => {
            // Stays visibly not ready until removed, rather than vanishing from /readyz.
            tracing::error!(%resource, %error, "source not started");
            shutdown.stop.cancelled().await;
            return;
        }
    };
    let metrics = deps.metrics.resource(KIND, &plan.id);
    let handler = Arc::new(SourceHandler {
        mapper: Mapper::new(&plan),
        subscriber,
        dispatcher: deps.dispatcher.clone(),
        recorder: DeliveryRecorder {
            resource: resource.clone(),
            metrics: metrics.clone(),
        },
    });
    let (per_partition, shared) = deps.options.in_flight(plan.ordering);
    let spec = ConsumerSpec {
        resource: resource.clone(),
        config: consumer_config(
            &plan.kafka,
            &plan.consumer_group,
            plan.initial_offset,
            &deps.options.client,
        ),
        topics: plan.topics.clone(),
        per_partition_in_flight: per_partition,
        shared_in_flight: shared,
    };
    tracing::info!(%resource, generation = plan.generation, group = %plan.consumer_group, topics = ?plan.topics, sink = %plan.sink.url, "source starting");

    let mut consumers = JoinSet::new();
    for (index, state) in states.iter().enumerate() {
        let mut spec = spec.clone();
        if states.len() > 1 {
            // Tells the instances apart in logs: which one holds which partitions.
            spec.resource = format!("{resource} consumer {index}");
        }
        let handler = Arc::clone(&handler);
        let state = Arc::clone(state);
        let shutdown = shutdown.clone();
        consumers.spawn(async move { consumer::run(spec, handler, state, shutdown).await });
    }
    let mut gauges = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            joined = consumers.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(error))) => tracing::error!(%resource, %error, "consumer failed"),
                Some(Err(error)) => tracing::error!(%resource, %error, "consumer task panicked"),
            },
            _ = gauges.tick() => {
                metrics.lag.set(states.iter().map(|s| s.lag()).sum());
                metrics.assigned.set(states.iter().map(|s| s.assigned_partitions() as i64).sum());
                metrics
                    .partitions_stalled
                    .set(states.iter().map(|s| s.stalled_partitions() as i64).sum());
            }
        }
    }
    metrics.assigned.set(0);
    metrics.partitions_stalled.set(0);
    tracing::info!(%resource, "source stopped");
}
