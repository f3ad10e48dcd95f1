//! A running KafkaChannel: its topic and ingress route (the channel's core), and one
//! independently running subscriber each (see [`subscriber`](super::subscriber)). A new plan for a
//! channel whose own settings are unchanged only starts, restarts or stops the subscribers that
//! changed; the route and the other subscribers carry on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::consumer::Shutdown;
use crate::delivery::Cancelled;
use crate::engine::diff::subscriber_unchanged;
use crate::engine::plan::{ChannelPlan, SubscriberPlan};
use crate::engine::readiness::Part;
use crate::engine::subscriber;
use crate::engine::task::{Stopping, Task};
use crate::engine::{Deps, EMBEDDED_ONLY_STANDALONE};
use crate::kafka::topics::{ensure_topic, TopicSpec};

pub(crate) const KIND: &str = "KafkaChannel";

/// Waits between attempts to create the topic or initialise offsets while the broker is away.
pub(crate) const SETUP_RETRY: Duration = Duration::from_secs(2);

pub(crate) struct RunningChannel {
    plan: Arc<ChannelPlan>,
    core: Task,
    /// Turns true once the topic exists: subscribers initialise their offsets only then.
    topic_ready: watch::Receiver<bool>,
    subscribers: BTreeMap<String, RunningSubscriber>,
}

struct RunningSubscriber {
    plan: Arc<SubscriberPlan>,
    task: Task,
}

impl RunningChannel {
    /// Starts the channel and its subscribers; their readiness is registered at once.
    pub fn start(plan: Arc<ChannelPlan>, deps: &Arc<Deps>) -> Self {
        let routed = Arc::new(AtomicBool::new(false));
        let ready = Arc::clone(&routed);
        deps.readiness.set(part(&plan), plan.generation, move || {
            ready.load(Ordering::Relaxed)
        });
        let (topic_tx, topic_ready) = watch::channel(false);
        let core = {
            let (plan, deps) = (Arc::clone(&plan), Arc::clone(deps));
            Task::spawn(format!("{KIND} {}", plan.id), move |shutdown| {
                run_core(plan, deps, routed, topic_tx, shutdown)
            })
        };
        let mut channel = Self {
            plan: Arc::clone(&plan),
            core,
            topic_ready,
            subscribers: BTreeMap::new(),
        };
        channel.start_subscribers(&plan, deps);
        channel
    }

    pub fn plan(&self) -> &ChannelPlan {
        &self.plan
    }

    /// First half of moving to `next`, a plan with the same channel settings: takes out the
    /// subscribers that are gone or changed, for the caller to stop (alongside whatever else a
    /// new plan stops).
    pub fn take_outdated(&mut self, next: &ChannelPlan) -> Stopping {
        let wanted: BTreeMap<&str, &SubscriberPlan> = next
            .subscribers
            .iter()
            .map(|s| (s.uid.as_str(), &**s))
            .collect();
        let outdated: Vec<String> = self
            .subscribers
            .iter()
            .filter(|(uid, running)| {
                wanted
                    .get(uid.as_str())
                    .is_none_or(|sub| !subscriber_unchanged(&running.plan, sub))
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        let mut stopping = Stopping::default();
        for uid in outdated {
            if let Some(running) = self.subscribers.remove(&uid) {
                stopping.push(running.task, subscriber::part(&self.plan, &running.plan));
            }
        }
        stopping
    }

    /// Second half: starts the subscribers `next` adds (or changed), and records the
    /// generations of the ones that carry on.
    pub fn finish_update(&mut self, next: Arc<ChannelPlan>, deps: &Arc<Deps>) {
        for sub in &next.subscribers {
            if let Some(running) = self.subscribers.get_mut(&sub.uid) {
                running.plan = Arc::clone(sub);
                deps.readiness
                    .set_generation(&subscriber::part(&next, sub), sub.generation);
            }
        }
        self.start_subscribers(&next, deps);
        deps.readiness.set_generation(&part(&next), next.generation);
        self.plan = next;
    }

    /// Everything to stop to stop the channel: its route and all its subscribers.
    pub fn into_stopping(self) -> Stopping {
        let mut stopping = Stopping::default();
        stopping.push(self.core, part(&self.plan));
        for running in self.subscribers.into_values() {
            stopping.push(running.task, subscriber::part(&self.plan, &running.plan));
        }
        stopping
    }

    /// Starts every subscriber of `plan` not running yet.
    fn start_subscribers(&mut self, plan: &Arc<ChannelPlan>, deps: &Arc<Deps>) {
        for sub in &plan.subscribers {
            if self.subscribers.contains_key(&sub.uid) {
                continue;
            }
            let task = subscriber::start(plan, Arc::clone(sub), deps, self.topic_ready.clone());
            let running = RunningSubscriber {
                plan: Arc::clone(sub),
                task,
            };
            self.subscribers.insert(sub.uid.clone(), running);
        }
    }
}

pub(crate) fn part(plan: &ChannelPlan) -> Part {
    Part::Channel(plan.id.clone())
}

/// Ensures the topic, then serves the channel's route until `shutdown.stop` fires.
async fn run_core(
    plan: Arc<ChannelPlan>,
    deps: Arc<Deps>,
    routed: Arc<AtomicBool>,
    topic_ready: watch::Sender<bool>,
    shutdown: Shutdown,
) {
    let resource = format!("{KIND} {}", plan.id);
    if plan.kafka.is_embedded() {
        tracing::error!(%resource, error = EMBEDDED_ONLY_STANDALONE, "channel not started");
        shutdown.stop.cancelled().await;
        return;
    }
    if setup_topic(&plan, &deps, &resource, &shutdown.stop)
        .await
        .is_err()
    {
        return;
    }
    topic_ready.send_replace(true);
    match deps.producers.for_cluster(&plan.kafka) {
        Ok(producer) => {
            deps.routes.insert(&plan, producer);
            routed.store(true, Ordering::Relaxed);
            tracing::info!(%resource, generation = plan.generation, topic = %plan.topic, "channel serving");
        }
        Err(error) => tracing::error!(%resource, %error, "channel ingress not started"),
    }
    shutdown.stop.cancelled().await;
    if routed.swap(false, Ordering::Relaxed) {
        // Requests already routed finish; new ones get 404 until a restarted channel serves.
        deps.routes.remove(&plan.id);
    }
    tracing::info!(%resource, "channel stopped");
}

/// Creates the topic when absent, retrying while the broker is unreachable.
async fn setup_topic(
    plan: &ChannelPlan,
    deps: &Deps,
    resource: &str,
    stop: &CancellationToken,
) -> Result<(), Cancelled> {
    let spec = TopicSpec {
        name: plan.topic.clone(),
        partitions: plan.num_partitions,
        replication_factor: plan.replication_factor,
        retention: plan.retention,
    };
    // Bounded by `stop`: the engine cancels it when the channel is removed or on shutdown.
    loop {
        // Raced with `stop`: against an unreachable cluster an attempt lasts until its own
        // timeout, and removing the channel must not wait for that.
        let attempt = tokio::select! {
            () = stop.cancelled() => return Err(Cancelled),
            attempt = ensure_topic(&plan.kafka, &deps.options.client, &spec) => attempt,
        };
        match attempt {
            Ok(ensured) => {
                tracing::info!(%resource, topic = %spec.name, ?ensured, "topic ready");
                return Ok(());
            }
            Err(error) => tracing::warn!(%resource, %error, "topic not ready; retrying"),
        }
        tokio::select! {
            () = stop.cancelled() => return Err(Cancelled),
            () = tokio::time::sleep(SETUP_RETRY) => {}
        }
    }
}
