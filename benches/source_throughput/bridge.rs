//! The contender: a `kafka-bridge run` process fed KafkaSource YAML exactly as a user writes it,
//! with its admin endpoints polled to tell when it is up (/healthz) and consuming (/readyz).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::Command;

use crate::process::Proc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    Ordered,
    Unordered,
}

impl Ordering {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ordered => "ordered",
            Self::Unordered => "unordered",
        }
    }
}

/// One KafkaSource: reads `topic` as `group` from the earliest offset into `sink`.
pub struct Source<'a> {
    pub name: String,
    pub topic: &'a str,
    pub group: String,
    pub ordering: Ordering,
    pub sink: &'a str,
}

/// The sources as one multi-document YAML file, as `kubectl apply -f` would take it.
pub fn kafka_sources_yaml(bootstrap: &str, sources: &[Source<'_>]) -> String {
    let mut yaml = String::new();
    for source in sources {
        // Writing to a String cannot fail.
        let _ = write!(
            yaml,
            "---\n\
             apiVersion: sources.knative.dev/v1beta1\n\
             kind: KafkaSource\n\
             metadata:\n  name: {name}\n  namespace: bench\n\
             spec:\n\
             \x20 bootstrapServers:\n    - {bootstrap}\n\
             \x20 topics:\n    - {topic}\n\
             \x20 consumerGroup: {group}\n\
             \x20 initialOffset: earliest\n\
             \x20 ordering: {ordering}\n\
             \x20 sink:\n    uri: {sink}\n",
            name = source.name,
            topic = source.topic,
            group = source.group,
            ordering = source.ordering.as_str(),
            sink = source.sink,
        );
    }
    yaml
}

pub struct Bridge {
    pub proc: Proc,
    pub spawned_at: Instant,
    admin: SocketAddr,
    http: reqwest::Client,
}

impl Bridge {
    /// Writes the sources to `<work>/<label>.yaml` and starts the bridge on them.
    pub fn spawn(
        binary: &Path,
        work: &Path,
        label: &str,
        bootstrap: &str,
        sources: &[Source<'_>],
    ) -> anyhow::Result<Self> {
        let file: PathBuf = work.join(format!("{label}.yaml"));
        std::fs::write(&file, kafka_sources_yaml(bootstrap, sources))
            .with_context(|| format!("writing {}", file.display()))?;
        let admin = crate::free_port()?;
        let ingress = crate::free_port()?;
        let mut command = Command::new(binary);
        command
            .arg("run")
            .arg("-f")
            .arg(&file)
            .args(["--admin-addr", &admin.to_string()])
            .args(["--ingress-addr", &ingress.to_string()])
            .args([
                "--kafka-config",
                &format!("session.timeout.ms={}", crate::SESSION_TIMEOUT_MS),
            ]);
        // For experiments (e.g. `--max-in-flight 64`); empty in the reported runs.
        if let Some(extra) = std::env::var_os("BENCH_BRIDGE_ARGS") {
            command.args(extra.to_string_lossy().split_whitespace());
        }
        let spawned_at = Instant::now();
        let proc = Proc::spawn(label, command, &work.join(format!("{label}.log")))?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building the admin client")?;
        Ok(Self {
            proc,
            spawned_at,
            admin,
            http,
        })
    }

    /// Polls `path` on the admin address until it answers 200; returns the time since spawn.
    pub async fn wait_for(&mut self, path: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let url = format!("http://{}{path}", self.admin);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.proc.ensure_running()?;
            if let Ok(response) = self.http.get(&url).send().await {
                if response.status() == reqwest::StatusCode::OK {
                    return Ok(self.spawned_at.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        bail!("{url} did not answer 200 within {timeout:?}")
    }

    pub async fn stop(self) {
        self.proc.terminate(Duration::from_secs(15)).await;
    }
}

/// Checks of the YAML rendering, run by `cargo test --bench source_throughput` (see main).
pub fn self_check() {
    let sources = [Source {
        name: "s0".into(),
        topic: "t",
        group: "g0".into(),
        ordering: Ordering::Unordered,
        sink: "http://127.0.0.1:1/",
    }];
    let yaml = kafka_sources_yaml("127.0.0.1:9092", &sources);
    let want = "---\napiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\nmetadata:\n  \
                name: s0\n  namespace: bench\nspec:\n  bootstrapServers:\n    - 127.0.0.1:9092\n  \
                topics:\n    - t\n  consumerGroup: g0\n  initialOffset: earliest\n  \
                ordering: unordered\n  sink:\n    uri: http://127.0.0.1:1/\n";
    assert_eq!(yaml, want);
}
