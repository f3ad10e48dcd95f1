//! The contender: a `kafka-bridge run` process fed YAML exactly as a user writes it, with its
//! admin endpoints polled to tell when it is up (/healthz) and ready (/readyz). Shared by the
//! benches; each writes its own resources.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::Command;

use crate::process::{free_port, Proc};

/// Group session timeout for every consumer the benches start: joins take about half of it.
pub const SESSION_TIMEOUT_MS: &str = "6000";

pub struct Bridge {
    pub proc: Proc,
    pub spawned_at: Instant,
    /// Where the channel ingress listens.
    pub ingress: SocketAddr,
    admin: SocketAddr,
    http: reqwest::Client,
}

impl Bridge {
    /// Writes `yaml` to `<work>/<label>.yaml` and starts the bridge on it with `args` added,
    /// logging to `<work>/<label>.log`.
    pub fn spawn(
        binary: &Path,
        work: &Path,
        label: &str,
        yaml: &str,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let file: PathBuf = work.join(format!("{label}.yaml"));
        std::fs::write(&file, yaml).with_context(|| format!("writing {}", file.display()))?;
        let admin = free_port()?;
        let ingress = free_port()?;
        let mut command = Command::new(binary);
        command
            .arg("run")
            .arg("-f")
            .arg(&file)
            .args(["--admin-addr", &admin.to_string()])
            .args(["--ingress-addr", &ingress.to_string()])
            .args([
                "--kafka-config",
                &format!("session.timeout.ms={SESSION_TIMEOUT_MS}"),
            ])
            .args(args);
        // For experiments (e.g. `--max-in-flight 64`); empty in the reported runs.
        if let Some(extra) = std::env::var_os("BENCH_BRIDGE_ARGS") {
            command.args(extra.to_string_lossy().split_whitespace());
        }
        // Built before the clock starts: setting up its TLS roots takes longer than the
        // bridge takes to come up.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .context("building the admin client")?;
        let spawned_at = Instant::now();
        let proc = Proc::spawn(label, command, &work.join(format!("{label}.log")))?;
        Ok(Self {
            proc,
            spawned_at,
            ingress,
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
