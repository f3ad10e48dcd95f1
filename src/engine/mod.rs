//! The engine: runs a [`Plan`] of resolved resources and applies new plans live. Feeds (files in
//! standalone mode, the controller in a cluster) produce plans; the engine does not care which.

mod channel;
pub mod contract;
pub mod plan;
pub mod readiness;
mod recorder;
mod source;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::consumer::Shutdown;
use crate::delivery::{DeliveryError, Dispatcher};
use crate::ingress::{Producers, Routes};
use crate::kafka::client_config::ClientSettings;
use crate::metrics::Metrics;
use plan::{ChannelPlan, Ordering, Plan, ResourceId, SourcePlan};
use readiness::Readiness;

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

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("creating the HTTP client: {0}")]
    Http(#[from] DeliveryError),
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

/// One resource of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resource {
    Source(Arc<SourcePlan>),
    Channel(Arc<ChannelPlan>),
}

impl Resource {
    fn key(&self) -> Key {
        match self {
            Resource::Source(plan) => (source::KIND, plan.id.clone()),
            Resource::Channel(plan) => (channel::KIND, plan.id.clone()),
        }
    }
}

/// Kind and identity: a source and a channel may share a name.
type Key = (&'static str, ResourceId);

struct Running {
    resource: Resource,
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

pub struct Engine {
    deps: Arc<Deps>,
    running: BTreeMap<Key, Running>,
}

impl Engine {
    pub fn new(
        options: EngineOptions,
        metrics: Arc<Metrics>,
        readiness: Readiness,
    ) -> Result<Self, EngineError> {
        let deps = Deps {
            dispatcher: Dispatcher::new()?,
            routes: Routes::new(Arc::clone(&metrics)),
            producers: Producers::new(options.client.clone()),
            metrics,
            readiness,
            options,
        };
        Ok(Self {
            deps: Arc::new(deps),
            running: BTreeMap::new(),
        })
    }

    /// The route table the channel ingress serves from.
    pub fn routes(&self) -> Routes {
        self.deps.routes.clone()
    }

    /// Makes the running set match `plan`: new resources start, removed ones drain and stop,
    /// changed ones restart; untouched ones are left alone.
    pub async fn apply(&mut self, plan: &Plan) {
        let wanted: BTreeMap<Key, Resource> = plan
            .sources
            .iter()
            .map(|s| Resource::Source(Arc::clone(s)))
            .chain(
                plan.channels
                    .iter()
                    .map(|c| Resource::Channel(Arc::clone(c))),
            )
            .map(|r| (r.key(), r))
            .collect();
        let outdated: Vec<Key> = self
            .running
            .iter()
            .filter(|(key, running)| wanted.get(*key) != Some(&running.resource))
            .map(|(key, _)| key.clone())
            .collect();
        for key in outdated {
            if let Some(running) = self.running.remove(&key) {
                self.stop(running).await;
            }
        }
        for (key, resource) in wanted {
            if self.running.contains_key(&key) {
                continue;
            }
            let shutdown = Shutdown::default();
            let deps = Arc::clone(&self.deps);
            let task = match &resource {
                Resource::Source(plan) => {
                    tokio::spawn(source::run(Arc::clone(plan), deps, shutdown.clone()))
                }
                Resource::Channel(plan) => {
                    tokio::spawn(channel::run(Arc::clone(plan), deps, shutdown.clone()))
                }
            };
            self.running.insert(
                key,
                Running {
                    resource,
                    shutdown,
                    task,
                },
            );
        }
    }

    /// Drains and stops everything.
    pub async fn shutdown(mut self) {
        let running = std::mem::take(&mut self.running);
        for r in running.values() {
            r.shutdown.stop.cancel();
        }
        let drain = self.deps.options.drain_timeout;
        futures::future::join_all(running.into_values().map(|r| stop_within(r, drain))).await;
    }

    async fn stop(&self, running: Running) {
        running.shutdown.stop.cancel();
        stop_within(running, self.deps.options.drain_timeout).await;
    }
}

/// Waits for a stopping resource; past `drain` its in-flight deliveries are abandoned.
async fn stop_within(mut running: Running, drain: Duration) {
    if tokio::time::timeout(drain, &mut running.task)
        .await
        .is_err()
    {
        let (kind, id) = running.resource.key();
        tracing::warn!(%kind, %id, "drain timed out; abandoning in-flight events");
        running.shutdown.abort.cancel();
        // A panicked task has nothing left to stop.
        let _ = running.task.await;
    }
}
