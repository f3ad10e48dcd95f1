//! The Kafka-API broker the bench runs against: tansu (a real broker, in its own process, memory
//! storage) or librdkafka's mock cluster (in the bench process, reachable over TCP by the bridge
//! and the baseline alike). Both are started fresh and hold only what the bench produces.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio::process::Command;

use crate::process::Proc;

const START_TIMEOUT: Duration = Duration::from_secs(30);
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    Tansu,
    Mock,
}

impl BrokerKind {
    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw {
            "tansu" => Ok(Self::Tansu),
            "mock" => Ok(Self::Mock),
            other => bail!("unknown broker {other:?}: use tansu or mock"),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Tansu => "tansu (separate process, memory storage)",
            Self::Mock => "librdkafka mock cluster (in the bench process)",
        }
    }
}

enum Backend {
    Tansu {
        proc: Box<Proc>,
        _dir: tempfile::TempDir,
    },
    // Not Send: the broker stays on the bench's main task.
    Mock(MockCluster<'static, DefaultProducerContext>),
}

pub struct Broker {
    pub kind: BrokerKind,
    pub bootstrap: String,
    backend: Backend,
}

impl Broker {
    pub async fn start(kind: BrokerKind, logs: &Path) -> anyhow::Result<Self> {
        match kind {
            BrokerKind::Tansu => start_tansu(logs).await,
            BrokerKind::Mock => {
                let cluster = MockCluster::new(1).context("starting the mock cluster")?;
                Ok(Self {
                    kind,
                    bootstrap: cluster.bootstrap_servers(),
                    backend: Backend::Mock(cluster),
                })
            }
        }
    }

    /// CPU used so far by a broker in its own process; None for the in-process mock cluster.
    pub fn cpu(&self) -> Option<Duration> {
        match &self.backend {
            Backend::Tansu { proc, .. } => proc.cpu().ok(),
            Backend::Mock(_) => None,
        }
    }

    /// Settings for the bench's producers.
    pub fn producer_config(&self) -> ClientConfig {
        client_config(&self.bootstrap)
    }

    /// Creates `topic` and waits until its metadata shows every partition.
    pub async fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Mock(cluster) => cluster
                .create_topic(topic, partitions, 1)
                .with_context(|| format!("creating topic {topic}"))?,
            Backend::Tansu { .. } => {
                let admin: AdminClient<DefaultClientContext> = client_config(&self.bootstrap)
                    .create()
                    .context("creating the admin client")?;
                let options = AdminOptions::new().operation_timeout(Some(TOPIC_TIMEOUT));
                let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
                let results = admin
                    .create_topics([&new], &options)
                    .await
                    .with_context(|| format!("creating topic {topic}"))?;
                for result in results {
                    if let Err((name, code)) = result {
                        bail!("creating topic {name}: {code}");
                    }
                }
            }
        }
        let bootstrap = self.bootstrap.clone();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || wait_for_partitions(&bootstrap, &topic, partitions))
            .await
            .context("metadata task")?
    }
}

/// The client settings every bench-side client shares.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3");
    config
}

fn wait_for_partitions(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let consumer: BaseConsumer = client_config(bootstrap)
        .create()
        .context("creating the metadata client")?;
    let deadline = Instant::now() + TOPIC_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            let ready = metadata.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == usize::try_from(partitions).unwrap_or(0)
            });
            if ready {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("topic {topic} did not show {partitions} partitions within {TOPIC_TIMEOUT:?}")
}

fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let installed = home.join(".cargo/bin/tansu");
    if installed.exists() {
        installed
    } else {
        PathBuf::from("tansu")
    }
}

async fn start_tansu(logs: &Path) -> anyhow::Result<Broker> {
    let dir = tempfile::tempdir().context("creating tansu's working directory")?;
    let addr = crate::process::free_port()?;
    let url = format!("tcp://{addr}");
    let mut command = Command::new(tansu_binary());
    command
        .current_dir(dir.path())
        .args(["broker", "--listener-url", &url])
        .args(["--advertised-listener-url", &url])
        .args(["--storage-engine", "memory://tansu/"])
        .env("RUST_LOG", "warn");
    let mut proc = Proc::spawn("tansu", command, &logs.join("tansu.log"))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        proc.ensure_running()?;
        let connect = tokio::net::TcpStream::connect(addr);
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            break;
        }
        if Instant::now() > deadline {
            bail!("tansu did not listen on {addr} within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Broker {
        kind: BrokerKind::Tansu,
        bootstrap: addr.to_string(),
        backend: Backend::Tansu {
            proc: Box::new(proc),
            _dir: dir,
        },
    })
}
