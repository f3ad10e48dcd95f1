//! The engine: runs a [`Plan`] of resolved resources and applies new plans live. Feeds (files in
//! standalone mode, the controller in a cluster) produce plans; the engine does not care which.

mod channel;
pub mod contract;
mod diff;
pub mod plan;
pub mod readiness;
mod recorder;
pub mod report;
mod source;
mod subscriber;
mod task;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::delivery::Dispatcher;
use crate::ingress::{Producers, Routes};
use crate::kafka::client_config::ClientSettings;
use crate::metrics::Metrics;
use channel::RunningChannel;
use diff::{channel_unchanged, diff, source_unchanged};
use plan::{ChannelPlan, Ordering, Plan, ResourceId, SourcePlan};
use readiness::Readiness;
use task::{Stopping, Task};

/// Why a resource asking for the in-process cluster does not run in a data plane: it would be a
/// separate, empty cluster in every replica.
pub(crate) const EMBEDDED_ONLY_STANDALONE: &str =
    "bootstrap server `embedded` runs only with `kafka-bridge run`; name the Kafka brokers";

/// Tuning shared by every resource.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Events in delivery at once per unordered source.
    pub max_in_flight: usize,
    /// How long a stopping resource may finish in-flight deliveries before they are abandoned.
    pub drain_timeout: Duration,
    pub client: ClientSettings,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            drain_timeout: Duration::from_secs(30),
            client: ClientSettings::default(),
        }
    }
}

impl EngineOptions {
    /// Events one partition may have in delivery, and the limit shared by all partitions of a
    /// resource: one at a time keeps a partition ordered; unordered shares `max_in_flight`.
    pub(crate) fn in_flight(&self, ordering: Ordering) -> (usize, Option<Arc<Semaphore>>) {
        match ordering {
            Ordering::Ordered => (1, None),
            Ordering::Unordered => {
                let limit = self.max_in_flight;
                (limit, Some(Arc::new(Semaphore::new(limit))))
            }
        }
    }
}

/// What every running resource shares.
pub(crate) struct Deps {
    pub dispatcher: Dispatcher,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    pub options: EngineOptions,
    /// The channels the ingress serves, changed as channels start and stop.
    pub routes: Routes,
    /// One producer per Kafka cluster, shared by the channels on it.
    pub producers: Producers,
}

struct RunningSource {
    plan: Arc<SourcePlan>,
    task: Task,
}

pub struct Engine {
    deps: Arc<Deps>,
    sources: BTreeMap<ResourceId, RunningSource>,
    channels: BTreeMap<ResourceId, RunningChannel>,
}

impl Engine {
    pub fn new(options: EngineOptions, metrics: Arc<Metrics>, readiness: Readiness) -> Self {
        let deps = Deps {
            dispatcher: Dispatcher::new(),
            routes: Routes::new(Arc::clone(&metrics)),
            producers: Producers::new(options.client.clone()),
            metrics,
            readiness,
            options,
        };
        Self {
            deps: Arc::new(deps),
            sources: BTreeMap::new(),
            channels: BTreeMap::new(),
        }
    }

    /// The route table the channel ingress serves from.
    pub fn routes(&self) -> Routes {
        self.deps.routes.clone()
    }

    /// Makes the running parts match `plan`, touching only what changed: new sources, channels
    /// and subscribers start; removed ones drain and stop; changed ones drain, stop and start
    /// again. A channel whose own settings are unchanged keeps its route and its unchanged
    /// subscribers running, whatever happens to the others. Everything that stops drains side
    /// by side (within the drain timeout) before anything new starts, so a part that restarts
    /// resumes from the offsets its previous run committed.
    pub async fn apply(&mut self, plan: &Plan) {
        let sources: BTreeMap<ResourceId, Arc<SourcePlan>> = plan
            .sources
            .iter()
            .map(|s| (s.id.clone(), Arc::clone(s)))
            .collect();
        let channels: BTreeMap<ResourceId, Arc<ChannelPlan>> = plan
            .channels
            .iter()
            .map(|c| (c.id.clone(), Arc::clone(c)))
            .collect();
        let source_diff = diff(&self.sources, &sources, |now, next| {
            source_unchanged(&now.plan, next)
        });
        let channel_diff = diff(&self.channels, &channels, |now, next| {
            channel_unchanged(now.plan(), next)
        });

        let mut stopping = Stopping::default();
        for id in source_diff.stop.iter().chain(&source_diff.restart) {
            if let Some(running) = self.sources.remove(id) {
                tracing::info!(resource = %format!("{} {id}", source::KIND), "stopping source");
                stopping.push(running.task, source::part(&running.plan));
            }
        }
        for id in channel_diff.stop.iter().chain(&channel_diff.restart) {
            if let Some(running) = self.channels.remove(id) {
                tracing::info!(resource = %format!("{} {id}", channel::KIND), "stopping channel");
                stopping.extend(running.into_stopping());
            }
        }
        for id in &channel_diff.keep {
            if let (Some(running), Some(next)) = (self.channels.get_mut(id), channels.get(id)) {
                stopping.extend(running.take_outdated(next));
            }
        }
        let drain = self.deps.options.drain_timeout;
        stopping.finish(drain, &self.deps.readiness).await;

        for id in source_diff.start.iter().chain(&source_diff.restart) {
            if let Some(plan) = sources.get(id) {
                let task = source::start(Arc::clone(plan), &self.deps);
                let plan = Arc::clone(plan);
                self.sources
                    .insert(id.clone(), RunningSource { plan, task });
            }
        }
        for id in &source_diff.keep {
            if let (Some(running), Some(next)) = (self.sources.get_mut(id), sources.get(id)) {
                running.plan = Arc::clone(next);
                let part = source::part(next);
                self.deps.readiness.set_generation(&part, next.generation);
            }
        }
        for id in channel_diff.start.iter().chain(&channel_diff.restart) {
            if let Some(plan) = channels.get(id) {
                let running = RunningChannel::start(Arc::clone(plan), &self.deps);
                self.channels.insert(id.clone(), running);
            }
        }
        for id in &channel_diff.keep {
            if let (Some(running), Some(next)) = (self.channels.get_mut(id), channels.get(id)) {
                running.finish_update(Arc::clone(next), &self.deps);
            }
        }
    }

    /// Drains and stops everything.
    pub async fn shutdown(mut self) {
        let mut stopping = Stopping::default();
        for (_, running) in std::mem::take(&mut self.sources) {
            stopping.push(running.task, source::part(&running.plan));
        }
        for (_, running) in std::mem::take(&mut self.channels) {
            stopping.extend(running.into_stopping());
        }
        stopping
            .finish(self.deps.options.drain_timeout, &self.deps.readiness)
            .await;
    }
}

#[cfg(test)]
mod tests;
