//! The engine: runs a [`Plan`] of resolved resources and applies new plans live. Feeds (files in
//! standalone mode, the controller in a cluster) produce plans; the engine does not care which.

pub mod plan;
pub mod readiness;
mod source;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::consumer::Shutdown;
use crate::delivery::{DeliveryError, Dispatcher};
use crate::kafka::client_config::ClientSettings;
use crate::metrics::Metrics;
use plan::{Plan, ResourceId, SourcePlan};
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
}

struct Running {
    plan: Arc<SourcePlan>,
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

pub struct Engine {
    deps: Arc<Deps>,
    sources: BTreeMap<ResourceId, Running>,
}

impl Engine {
    pub fn new(
        options: EngineOptions,
        metrics: Arc<Metrics>,
        readiness: Readiness,
    ) -> Result<Self, EngineError> {
        let deps = Deps {
            dispatcher: Dispatcher::new()?,
            metrics,
            readiness,
            options,
        };
        Ok(Self {
            deps: Arc::new(deps),
            sources: BTreeMap::new(),
        })
    }

    /// Makes the running set match `plan`: new resources start, removed ones drain and stop,
    /// changed ones restart; untouched ones are left alone.
    pub async fn apply(&mut self, plan: &Plan) {
        let wanted: BTreeMap<&ResourceId, &Arc<SourcePlan>> =
            plan.sources.iter().map(|s| (&s.id, s)).collect();
        let outdated: Vec<ResourceId> = self
            .sources
            .iter()
            .filter(|(id, running)| wanted.get(id).is_none_or(|p| **p != running.plan))
            .map(|(id, _)| id.clone())
            .collect();
        for id in outdated {
            if let Some(running) = self.sources.remove(&id) {
                self.stop(running).await;
            }
        }
        for (id, source) in wanted {
            if !self.sources.contains_key(id) {
                let shutdown = Shutdown::default();
                let task = tokio::spawn(source::run(
                    Arc::clone(source),
                    Arc::clone(&self.deps),
                    shutdown.clone(),
                ));
                self.sources.insert(
                    id.clone(),
                    Running {
                        plan: Arc::clone(source),
                        shutdown,
                        task,
                    },
                );
            }
        }
    }

    /// Drains and stops everything.
    pub async fn shutdown(mut self) {
        let running = std::mem::take(&mut self.sources);
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
        tracing::warn!(source = %running.plan.id, "drain timed out; abandoning in-flight events");
        running.shutdown.abort.cancel();
        // A panicked task has nothing left to stop.
        let _ = running.task.await;
    }
}
