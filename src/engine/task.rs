//! A running part's task and how it stops: `stop` ends fetching and lets in-flight deliveries
//! finish and commit within the drain timeout; past it they are abandoned, uncommitted, and
//! delivered again by whoever consumes the partition next.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::readiness::{Part, Readiness};
use crate::consumer::Shutdown;

/// How long an abandoned task may take to wind down before it is dropped.
const ABORT_GRACE: Duration = Duration::from_secs(10);

pub(crate) struct Task {
    /// Names the part in logs.
    name: String,
    shutdown: Shutdown,
    handle: JoinHandle<()>,
}

impl Task {
    pub fn spawn<F>(name: String, run: impl FnOnce(Shutdown) -> F) -> Task
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let shutdown = Shutdown::default();
        let handle = tokio::spawn(run(shutdown.clone()));
        Task {
            name,
            shutdown,
            handle,
        }
    }

    /// Stops the task and waits for it to drain.
    pub async fn stop(self, drain: Duration) {
        self.shutdown.stop.cancel();
        self.wait(drain).await;
    }

    async fn wait(mut self, drain: Duration) {
        if tokio::time::timeout(drain, &mut self.handle).await.is_ok() {
            return;
        }
        tracing::warn!(part = %self.name, "drain timed out; abandoning in-flight events");
        self.shutdown.abort.cancel();
        // Abandoning is prompt (nothing is committed); a task still running after the grace is
        // stuck in a call that ignores cancellation, and is dropped where it stands.
        if tokio::time::timeout(ABORT_GRACE, &mut self.handle)
            .await
            .is_err()
        {
            tracing::warn!(part = %self.name, "task did not stop when abandoned; dropping it");
            self.handle.abort();
        }
    }
}

/// Parts on their way out: each part's task, and its readiness entry, removed once it stopped.
#[derive(Default)]
pub(crate) struct Stopping {
    tasks: Vec<Task>,
    parts: Vec<Part>,
}

impl Stopping {
    pub fn push(&mut self, task: Task, part: Part) {
        self.tasks.push(task);
        self.parts.push(part);
    }

    pub fn extend(&mut self, other: Stopping) {
        self.tasks.extend(other.tasks);
        self.parts.extend(other.parts);
    }

    /// Stops every task at once, so they drain side by side rather than one after another.
    pub async fn finish(self, drain: Duration, readiness: &Readiness) {
        futures::future::join_all(self.tasks.into_iter().map(|task| task.stop(drain))).await;
        for part in &self.parts {
            readiness.remove(part);
        }
    }
}
