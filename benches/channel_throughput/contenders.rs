//! Starting the ingresses under test: kafka-bridge running one KafkaChannel from YAML as a user
//! writes it (with the cluster's `kafka-channel-config`), and the naive Python ingress
//! (`benches/baseline/naive_ingress.py`) on a topic the bench creates; and the parked subscriber
//! that lets the ingress be measured alone.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::task::JoinHandle;

use crate::bridge::Bridge;
use crate::process::{free_port, Proc};

pub const NAMESPACE: &str = "bench";
pub const PARTITIONS: i32 = 8;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Events in delivery when the bridge is stopped are not the bench's concern: a short drain
/// keeps each stop short (a parked subscriber's events would otherwise hold it for 30 s).
const BRIDGE_ARGS: [&str; 2] = ["--drain-timeout", "1s"];
/// Connections a parked subscriber holds: above the bridge's in-flight limit per subscriber.
const MAX_PARKED: usize = 1024;
const NAIVE_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/baseline/naive_ingress.py"
);

/// The ConfigMap and one KafkaChannel `name` in [`NAMESPACE`] with a subscriber per URL.
pub fn channel_yaml(bootstrap: &str, name: &str, subscribers: &[&str]) -> String {
    let mut yaml = format!(
        "apiVersion: v1\n\
         kind: ConfigMap\n\
         metadata: {{name: kafka-channel-config, namespace: knative-eventing}}\n\
         data: {{bootstrap.servers: '{bootstrap}'}}\n\
         ---\n\
         apiVersion: messaging.knative.dev/v1beta1\n\
         kind: KafkaChannel\n\
         metadata: {{name: {name}, namespace: {NAMESPACE}}}\n\
         spec:\n\
         \x20 numPartitions: {PARTITIONS}\n\
         \x20 replicationFactor: 1\n"
    );
    if !subscribers.is_empty() {
        yaml.push_str("  subscribers:\n");
    }
    for (i, uri) in subscribers.iter().enumerate() {
        // Writing to a String cannot fail.
        let _ = writeln!(
            yaml,
            "    - {{uid: {name}-sub-{i}, generation: 1, subscriberUri: '{uri}'}}"
        );
    }
    yaml
}

/// The channel's ingress path.
pub fn channel_path(name: &str) -> String {
    format!("/{NAMESPACE}/{name}")
}

/// Starts the bridge on channel `name` and waits until /readyz says its topic, route and every
/// subscriber's consumer are ready.
pub async fn start_bridge(
    binary: &Path,
    work: &Path,
    bootstrap: &str,
    name: &str,
    subscribers: &[&str],
) -> anyhow::Result<Bridge> {
    let yaml = channel_yaml(bootstrap, name, subscribers);
    let mut bridge = Bridge::spawn(binary, work, name, &yaml, &BRIDGE_ARGS)?;
    if let Err(error) = bridge.wait_for("/readyz", READY_TIMEOUT).await {
        bridge.stop().await;
        return Err(error);
    }
    Ok(bridge)
}

/// Starts the naive ingress producing to `topic` (which must exist) and waits until it listens.
pub async fn start_naive(
    python: &Path,
    work: &Path,
    label: &str,
    bootstrap: &str,
    topic: &str,
) -> anyhow::Result<(Proc, SocketAddr)> {
    let addr = free_port()?;
    let mut command = Command::new(python);
    command
        .arg(NAIVE_SCRIPT)
        .args([bootstrap, topic, &addr.port().to_string()]);
    let mut proc = Proc::spawn(label, command, &work.join(format!("{label}.log")))?;
    let deadline = Instant::now() + LISTEN_TIMEOUT;
    loop {
        proc.ensure_running()?;
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            return Ok((proc, addr));
        }
        if Instant::now() > deadline {
            proc.terminate(Duration::from_secs(5)).await;
            bail!("{label} did not listen on {addr} within {LISTEN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A subscriber that accepts connections and never answers. A channel needs one to run (one
/// without subscribers stops at once in kafka-bridge today), and this one costs the bridge almost
/// nothing: its consumer fills its in-flight limit and pre-fetch cap, then fetches no further, so
/// the ingress section measures the ingress alone.
pub struct Parked {
    pub url: String,
    task: JoinHandle<()>,
}

impl Parked {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the parked subscriber")?;
        let addr = listener.local_addr().context("parked subscriber address")?;
        let task = tokio::spawn(async move {
            let mut held: Vec<TcpStream> = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                // Beyond the cap a connection is dropped: the bridge sees it fail and retries
                // later, which is still no work to speak of.
                if held.len() < MAX_PARKED {
                    held.push(stream);
                }
            }
        });
        Ok(Self {
            url: format!("http://{addr}/"),
            task,
        })
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks of the YAML rendering, run by `cargo test --bench channel_throughput` (see main).
pub fn self_check() {
    let yaml = channel_yaml("127.0.0.1:9092", "ch", &["http://127.0.0.1:1/"]);
    let want = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kafka-channel-config, \
                namespace: knative-eventing}\ndata: {bootstrap.servers: '127.0.0.1:9092'}\n---\n\
                apiVersion: messaging.knative.dev/v1beta1\nkind: KafkaChannel\nmetadata: \
                {name: ch, namespace: bench}\nspec:\n  numPartitions: 8\n  replicationFactor: 1\n  \
                subscribers:\n    - {uid: ch-sub-0, generation: 1, subscriberUri: \
                'http://127.0.0.1:1/'}\n";
    assert_eq!(yaml, want);
    assert!(!channel_yaml("b", "ch", &[]).contains("subscribers"));
}
