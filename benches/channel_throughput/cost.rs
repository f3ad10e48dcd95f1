//! Cost: CPU per request of the channel ingress in-process. The ingress router (the one
//! `kafka-bridge run` serves) runs on a thread of its own with a current-thread runtime, producing
//! to librdkafka's mock cluster in this process (acks=all); a client on another thread POSTs the
//! load generator's 1 KiB binary-mode CloudEvent over keep-alive connections and expects 202s.
//!
//! Thread CPU time on a shared machine varies by some percent; for a repeatable figure run it
//! under callgrind (`--separate-threads=yes`) at two request counts and divide the difference in
//! a thread's instructions by the difference in requests (README, "Performance / KafkaChannel").
//! Thread files in creation order: the bench's runtime, the mock cluster's librdkafka threads, then
//! `cost-ingress` (its functions include `ingress::handler::receive`), the ingress producer's
//! librdkafka threads and its polling thread, and `cost-client` last.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use kafka_bridge::engine::plan::{ChannelPlan, KafkaConnection, ResourceId};
use kafka_bridge::ingress::{self, IngressOptions, Producers, Routes};
use kafka_bridge::kafka::client_config::ClientSettings;
use kafka_bridge::metrics::Metrics;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::http1::Connection;
use crate::process::{current_thread, thread_cpu, thread_ids, threads_cpu};
use crate::report::{num, Table};
use crate::request::{cloudevent_post, EVENT_SIZE};

const PARTITIONS: i32 = 8;
/// Requests in flight at once, each on its own keep-alive connection.
const IN_FLIGHT: usize = 64;
/// Requests answered before measuring: connections open, the producer's metadata and
/// connections in place, allocator warmed up.
const WARM_UP: u64 = 1_000;
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// CPU over the measured requests, by thread group.
struct Measured {
    requests: u64,
    ingress: Duration,
    client: Duration,
    /// The ingress producer's threads: librdkafka's and rdkafka's polling thread.
    producer: Duration,
    /// The mock cluster: the broker side, for scale.
    broker: Duration,
}

/// Sends `requests` requests (after a warm-up) and reports CPU per request.
pub fn run(requests: u64) -> anyhow::Result<Table> {
    let measured = measure(requests)?;
    let per_request = |cpu: Duration| cpu.as_secs_f64() * 1e6 / measured.requests as f64;
    let mut table = Table::new(
        "Ingress cost: POST -> decode -> produce (acks=all, mock cluster) -> 202, in-process",
        &["threads", "CPU µs / request", "requests"],
    );
    let rows = [
        ("ingress (axum + kafka-bridge handler)", measured.ingress),
        ("ingress producer (librdkafka + polling)", measured.producer),
        ("mock cluster (broker side)", measured.broker),
        ("client (load generator)", measured.client),
    ];
    for (name, cpu) in rows {
        table.row(vec![
            name.into(),
            num(per_request(cpu), 1),
            measured.requests.to_string(),
        ]);
    }
    table.note(format!(
        "{EVENT_SIZE}-byte binary-mode events, {IN_FLIGHT} in flight, {PARTITIONS} partitions, \
         after {WARM_UP} warm-up requests; thread CPU time (user + system, the producer's and \
         broker's threads from /proc at 10 ms resolution), so the kernel's loopback TCP is \
         included."
    ));
    Ok(table)
}

fn measure(requests: u64) -> anyhow::Result<Measured> {
    let before_cluster = thread_ids();
    let cluster: MockCluster<'static, DefaultProducerContext> =
        MockCluster::new(1).context("starting the mock cluster")?;
    let plan = plan(&cluster.bootstrap_servers());
    cluster
        .create_topic(&plan.topic, PARTITIONS, 1)
        .context("creating the channel's topic")?;
    let before_ingress = thread_ids();

    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (mark_tx, mark_rx) = mpsc::channel::<()>(2);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let ingress = std::thread::Builder::new()
        .name("cost-ingress".into())
        .spawn(move || -> anyhow::Result<Duration> {
            current_thread()?.block_on(serve(plan, addr_tx, mark_rx, stop_rx))
        })
        .context("starting the ingress thread")?;
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the ingress did not start")?;
    let producer_threads: BTreeSet<u32> =
        thread_ids().difference(&before_ingress).copied().collect();
    let broker_threads: BTreeSet<u32> = before_ingress
        .difference(&before_cluster)
        .copied()
        .collect();

    let producer_before = threads_cpu(&producer_threads);
    let broker_before = threads_cpu(&broker_threads);
    let client = std::thread::Builder::new()
        .name("cost-client".into())
        .spawn(move || -> anyhow::Result<Duration> {
            current_thread()?.block_on(post_all(addr, requests, mark_tx))
        })
        .context("starting the client thread")?;
    let client = client.join();
    let producer = threads_cpu(&producer_threads).saturating_sub(producer_before);
    let broker = threads_cpu(&broker_threads).saturating_sub(broker_before);
    // Either a send or a dropped receiver; the ingress stops in both cases.
    let _ = stop_tx.send(());
    let ingress = match ingress.join() {
        Ok(result) => result?,
        Err(_) => bail!("the ingress thread panicked"),
    };
    let client = match client {
        Ok(result) => result?,
        Err(_) => bail!("the client thread panicked"),
    };
    drop(cluster);
    Ok(Measured {
        requests,
        ingress,
        client,
        producer,
        broker,
    })
}

fn plan(bootstrap: &str) -> ChannelPlan {
    ChannelPlan {
        id: ResourceId::new("bench", "cost"),
        generation: 1,
        kafka: KafkaConnection::plaintext(bootstrap),
        topic: "knative-messaging-kafka.bench.cost".to_owned(),
        num_partitions: PARTITIONS,
        replication_factor: 1,
        retention: Duration::from_secs(3600),
        subscribers: Vec::new(),
    }
}

/// Serves the ingress until `stop`; returns this thread's CPU time between the client's two
/// marks (the end of the warm-up and the end of the measured requests).
async fn serve(
    plan: ChannelPlan,
    addr_tx: std::sync::mpsc::Sender<SocketAddr>,
    mut marks: mpsc::Receiver<()>,
    stop: oneshot::Receiver<()>,
) -> anyhow::Result<Duration> {
    let routes = Routes::new(Arc::new(Metrics::new()));
    let producers = Producers::new(ClientSettings::default());
    routes.insert(&plan, producers.for_cluster(&plan.kafka)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the ingress")?;
    addr_tx
        .send(listener.local_addr().context("the ingress address")?)
        .context("the bench stopped waiting for the ingress")?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(ingress::serve(
        listener,
        ingress::router(routes, IngressOptions::default()),
        shutdown.clone(),
    ));
    // The marks are read on this thread, so they time this thread's work alone.
    let started = marks.recv().await.map(|()| thread_cpu());
    let ended = marks.recv().await.map(|()| thread_cpu());
    // A dropped sender also means stop.
    let _ = stop.await;
    shutdown.cancel();
    server
        .await
        .context("the ingress task")?
        .context("serving the ingress")?;
    match (started, ended) {
        (Some(started), Some(ended)) => Ok(ended.saturating_sub(started)),
        _ => bail!("the client stopped before the end of the measured requests"),
    }
}

/// Posts the warm-up, marks, posts `requests` measured requests, marks; returns this thread's
/// CPU time over the measured ones.
async fn post_all(
    addr: SocketAddr,
    requests: u64,
    marks: mpsc::Sender<()>,
) -> anyhow::Result<Duration> {
    let request = cloudevent_post(&addr.to_string(), "/bench/cost", EVENT_SIZE);
    let mut connections = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        connections.push(Connection::open(addr).await?);
    }
    post(&mut connections, &request, WARM_UP).await?;
    marks.send(()).await.context("the ingress stopped")?;
    let started = thread_cpu();
    post(&mut connections, &request, requests).await?;
    let cpu = thread_cpu().saturating_sub(started);
    marks.send(()).await.context("the ingress stopped")?;
    Ok(cpu)
}

/// Sends `count` requests over `connections`, each connection sending its next as soon as its
/// answer is in; every answer must be a 202.
async fn post(connections: &mut [Connection], request: &[u8], count: u64) -> anyhow::Result<()> {
    let left = Cell::new(count);
    let take = || {
        let n = left.get();
        left.set(n.saturating_sub(1));
        n > 0
    };
    let senders = connections.iter_mut().map(|connection| async {
        while take() {
            let status = connection.send(request, ANSWER_TIMEOUT).await?;
            if status != 202 {
                bail!("the ingress answered {status}");
            }
        }
        Ok(())
    });
    futures::future::try_join_all(senders).await?;
    Ok(())
}
