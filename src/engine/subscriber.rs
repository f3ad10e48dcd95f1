//! One subscriber of a running KafkaChannel: its own consumer group, initialised at the end of
//! the topic before it reports ready, delivering every stored event to the subscriber,
//! forwarding replies and dead-lettering failures. Each runs, changes and stops on its own.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};
use rdkafka::message::{Headers, Message};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::consumer::{
    self, ConsumerSpec, ConsumerState, Handled, Position, RecordHandler, Shutdown,
};
use crate::delivery::{
    AcceptAll, AcceptResponse, Cancelled, Dispatcher, Failure, Outcome, Response, Subscriber,
};
use crate::engine::channel::{KIND, SETUP_RETRY};
use crate::engine::plan::{ChannelPlan, InitialOffset, SubscriberPlan};
use crate::engine::readiness::Part;
use crate::engine::recorder::DeliveryRecorder;
use crate::engine::task::Task;
use crate::engine::Deps;
use crate::event::{http_binding, kafka_binding, HttpMessage};
use crate::ingress::producer::is_forwarded;
use crate::kafka::client_config::consumer_config;
use crate::kafka::offsets::initialize_to_latest;

/// Starts subscriber `sub` of `channel` once `topic_ready` turns true; its readiness is
/// registered at once, and removed by whoever stops it.
pub(crate) fn start(
    channel: &Arc<ChannelPlan>,
    sub: Arc<SubscriberPlan>,
    deps: &Arc<Deps>,
    topic_ready: watch::Receiver<bool>,
) -> Task {
    let state = Arc::new(ConsumerState::default());
    let ready = Arc::clone(&state);
    deps.readiness
        .set(part(channel, &sub), sub.generation, move || {
            ready.assigned_partitions() > 0
        });
    let (channel, deps) = (Arc::clone(channel), Arc::clone(deps));
    Task::spawn(
        format!("{KIND} {} subscriber {}", channel.id, sub.uid),
        move |shutdown| run(channel, sub, deps, state, topic_ready, shutdown),
    )
}

pub(crate) fn part(channel: &ChannelPlan, sub: &SubscriberPlan) -> Part {
    Part::Subscriber {
        channel: channel.id.clone(),
        uid: sub.uid.clone(),
    }
}

async fn run(
    plan: Arc<ChannelPlan>,
    sub: Arc<SubscriberPlan>,
    deps: Arc<Deps>,
    state: Arc<ConsumerState>,
    mut topic_ready: watch::Receiver<bool>,
    shutdown: Shutdown,
) {
    let resource = format!("{KIND} {} subscriber {}", plan.id, sub.uid);
    let handler = match SubscriberHandler::new(&plan, &sub, &deps, resource.clone()) {
        Ok(handler) => Arc::new(handler),
        Err(error) => {
            tracing::error!(%resource, %error, "subscriber not started");
            shutdown.stop.cancelled().await;
            return;
        }
    };
    let channel_gone = tokio::select! {
        () = shutdown.stop.cancelled() => return,
        // The borrow the wait returns holds a lock: only whether it failed is kept.
        ready = topic_ready.wait_for(|ready| *ready) => ready.is_err(),
    };
    if channel_gone {
        // The channel stopped before its topic was ready; this subscriber stops with it.
        shutdown.stop.cancelled().await;
        return;
    }
    // A new subscriber starts at the end of the topic; retried while the broker is away.
    loop {
        let (conn, settings, group, topic) = (
            plan.kafka.clone(),
            deps.options.client.clone(),
            sub.consumer_group.clone(),
            plan.topic.clone(),
        );
        let init = tokio::task::spawn_blocking(move || {
            initialize_to_latest(&conn, &settings, &group, &topic)
        });
        // Raced with `stop`: against an unreachable cluster the blocking call lasts until its
        // own timeouts, and removing the subscriber must not wait for that (the call finishes
        // in the background).
        let init = tokio::select! {
            () = shutdown.stop.cancelled() => return,
            init = init => init,
        };
        match init {
            Ok(Ok(initialised)) => {
                tracing::info!(%resource, generation = sub.generation, initialised, "subscriber offsets ready");
                break;
            }
            Ok(Err(error)) => {
                tracing::warn!(%resource, %error, "offsets not initialised; retrying")
            }
            Err(error) => tracing::warn!(%resource, %error, "offset initialisation failed"),
        }
        tokio::select! {
            () = shutdown.stop.cancelled() => return,
            () = tokio::time::sleep(SETUP_RETRY) => {}
        }
    }
    let (per_partition, shared) = deps.options.in_flight(sub.ordering);
    let spec = ConsumerSpec {
        resource: resource.clone(),
        // Committed offsets exist for every partition now; `earliest` only matters if they are
        // lost (e.g. expired), where replaying beats skipping.
        config: consumer_config(
            &plan.kafka,
            &sub.consumer_group,
            InitialOffset::Earliest,
            &deps.options.client,
        ),
        topics: vec![plan.topic.clone()],
        per_partition_in_flight: per_partition,
        shared_in_flight: shared,
    };
    let metrics = handler.recorder.metrics.clone();
    let gauges_state = Arc::clone(&state);
    let run = consumer::run(spec, handler, state, shutdown);
    tokio::pin!(run);
    let mut gauges = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            result = &mut run => {
                if let Err(error) = result {
                    tracing::error!(%resource, %error, "subscriber consumer failed");
                }
                break;
            }
            _ = gauges.tick() => {
                metrics.lag.set(gauges_state.lag());
                metrics.assigned.set(gauges_state.assigned_partitions() as i64);
                metrics
                    .partitions_stalled
                    .set(gauges_state.stalled_partitions() as i64);
            }
        }
    }
    metrics.assigned.set(0);
    metrics.partitions_stalled.set(0);
}

struct SubscriberHandler {
    /// Where each event goes: the subscriber, or the reply target when the subscription only
    /// forwards.
    target: Subscriber,
    /// Where the subscriber's replies go, when it has both.
    reply: Option<Subscriber>,
    /// Whether `target` is a subscriber, whose 200 responses are replies; a reply target
    /// delivered to directly answers nothing that is read.
    reads_replies: bool,
    dispatcher: Dispatcher,
    recorder: DeliveryRecorder,
}

#[derive(Debug, thiserror::Error)]
enum SubscriberError {
    #[error("it has neither a subscriberUri nor a replyUri")]
    NoTarget,
    #[error(transparent)]
    Delivery(#[from] crate::delivery::DeliveryError),
}

impl SubscriberHandler {
    fn new(
        plan: &ChannelPlan,
        sub: &SubscriberPlan,
        deps: &Deps,
        resource: String,
    ) -> Result<Self, SubscriberError> {
        let namespace = &plan.id.namespace;
        let make = |target: &crate::delivery::Target, with_dead_letter: bool| {
            deps.dispatcher.check_target(target)?;
            let mut policy = sub.delivery.clone();
            if !with_dead_letter {
                // A reply that cannot be delivered fails the whole delivery, which is then
                // retried and dead-lettered as the original event.
                policy.dead_letter = None;
            }
            if let Some(dead_letter) = &policy.dead_letter {
                deps.dispatcher.check_target(dead_letter)?;
            }
            Subscriber::new(target.clone(), policy, namespace).map_err(SubscriberError::from)
        };
        let (target, reply, reads_replies) = match (&sub.subscriber, &sub.reply) {
            (Some(subscriber), reply) => (
                make(subscriber, true)?,
                reply.as_ref().map(|r| make(r, false)).transpose()?,
                true,
            ),
            (None, Some(reply)) => (make(reply, true)?, None, false),
            (None, None) => return Err(SubscriberError::NoTarget),
        };
        Ok(Self {
            target,
            reply,
            reads_replies,
            dispatcher: deps.dispatcher.clone(),
            recorder: DeliveryRecorder {
                resource,
                metrics: deps.metrics.subscriber(KIND, &plan.id, &sub.uid),
            },
        })
    }

    /// The stored event, with the request headers that travel with it.
    fn message(record: &impl Message) -> Option<HttpMessage> {
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers()
            .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
            .unwrap_or_default();
        let event = kafka_binding::decode(&headers, record.payload())?.ok()?;
        let mut message = http_binding::encode_binary_owned(event);
        for (name, value) in headers {
            if !is_forwarded(name) {
                continue;
            }
            let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.map(HeaderValue::from_bytes),
            ) else {
                continue;
            };
            message.headers.append(name, value);
        }
        Some(message)
    }
}

impl RecordHandler for SubscriberHandler {
    /// `None` for a record that is not a CloudEvent.
    type Prepared = Option<HttpMessage>;

    fn prepare(&self, record: &impl Message) -> Option<HttpMessage> {
        Self::message(record)
    }

    async fn handle(
        &self,
        message: Option<HttpMessage>,
        at: Position,
        abort: &CancellationToken,
    ) -> Handled {
        let Some(message) = message else {
            // Only the ingress writes this topic, in the CloudEvents binding; anything else
            // cannot be delivered as an event, and holding the partition for it helps nobody.
            tracing::warn!(
                resource = %self.recorder.resource,
                topic = &*at.topic,
                partition = at.partition,
                offset = at.offset,
                "record is not a CloudEvent; skipped"
            );
            self.recorder.metrics.failed.inc();
            return Handled::Settled;
        };
        let started = std::time::Instant::now();
        let forward = ForwardReply {
            reply: self.reply.as_ref(),
            dispatcher: &self.dispatcher,
        };
        let accept: &dyn AcceptResponse = if self.reads_replies {
            &forward
        } else {
            &AcceptAll
        };
        let delivery = self
            .dispatcher
            .deliver_accepting(&self.target, &message, abort, &self.recorder, accept)
            .await;
        self.recorder.settle(&at, started, delivery)
    }
}

/// Reads a subscriber's reply and forwards it: a 200 with a CloudEvent body is a reply; a 202 or
/// an empty body is plain success; a 200 whose body is not a CloudEvent is a failure.
struct ForwardReply<'a> {
    reply: Option<&'a Subscriber>,
    dispatcher: &'a Dispatcher,
}

impl AcceptResponse for ForwardReply<'_> {
    fn accept<'a>(
        &'a self,
        response: &'a Response,
        cancel: &'a CancellationToken,
    ) -> futures::future::BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            if response.status != StatusCode::OK || response.body.is_empty() {
                return Ok(());
            }
            let invalid = |message: String| Failure::Response {
                status: response.status,
                message,
            };
            if response.truncated {
                return Err(invalid("reply body over the size limit".into()));
            }
            let event = http_binding::decode(&response.headers, response.body.clone())
                .map_err(|e| invalid(format!("response body is not a CloudEvent: {e}")))?;
            let Some(reply) = self.reply else {
                // No replyUri: the reply is dropped, as in Knative.
                return Ok(());
            };
            let message = http_binding::encode_binary_owned(event);
            match self.dispatcher.deliver(reply, &message, cancel, &()).await {
                Ok(delivery) => match delivery.outcome {
                    Outcome::Delivered { .. } => Ok(()),
                    other => Err(invalid(format!(
                        "reply not delivered to {}: {other:?}",
                        reply.target().url
                    ))),
                },
                Err(Cancelled) => Err(invalid("reply cancelled".into())),
            }
        })
    }
}
