//! Ingress: accepted events/s and latency at 1, 64 and 256 concurrent clients, each POSTing
//! 1 KiB binary-mode CloudEvents in a closed loop. Contenders take turns within each repeat: the
//! yardstick (the same load generator against a trivial axum server answering 202 at once, in the
//! bench process: the generator's own ceiling), kafka-bridge (one KafkaChannel whose only
//! subscriber is parked, acks=all) and the naive Python ingress (acks=all).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bridge::Bridge;
use crate::broker::Broker;
use crate::contenders::{self, channel_path, Parked, PARTITIONS};
use crate::load::{self, Load};
use crate::meter::{per_10k, Meter};
use crate::process::Proc;
use crate::report::{median, num, runs, Table};
use crate::request::{cloudevent_post, EVENT_SIZE};
use crate::sink::Sink;
use crate::Bench;

pub const LEVELS: [usize; 3] = [1, 64, 256];
const WARM_UP: Duration = Duration::from_secs(1);
const WINDOW: Duration = Duration::from_secs(4);
/// The section's share of a bench meant to finish in about six minutes.
const BUDGET: Duration = Duration::from_secs(170);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    Yardstick,
    Bridge,
    Naive,
}

impl Contender {
    pub const ALL: [Contender; 3] = [Self::Yardstick, Self::Bridge, Self::Naive];

    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw {
            "yardstick" => Ok(Self::Yardstick),
            "bridge" => Ok(Self::Bridge),
            "baseline" => Ok(Self::Naive),
            other => anyhow::bail!("unknown contender {other:?}: use yardstick, bridge, baseline"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Yardstick => "yardstick: axum answering 202 at once, no Kafka",
            Self::Bridge => "kafka-bridge",
            Self::Naive => "naive Python baseline",
        }
    }
}

/// One contender at one level in one repeat. CPU figures are ms per 10k accepted events.
#[derive(Debug, Clone, Copy)]
struct Point {
    rate: f64,
    p50: f64,
    p99: f64,
    errors: u64,
    cpu: f64,
    broker_cpu: f64,
    bench_cpu: f64,
    others_cores: f64,
    peak_rss_mib: f64,
}

/// A running ingress under test.
enum Running {
    InBench(Sink),
    Bridge(Bridge, Parked),
    Naive(Proc),
}

impl Running {
    fn proc(&self) -> Option<&Proc> {
        match self {
            Self::InBench(_) => None,
            Self::Bridge(bridge, _) => Some(&bridge.proc),
            Self::Naive(proc) => Some(proc),
        }
    }

    async fn stop(self) {
        match self {
            Self::InBench(sink) => drop(sink),
            Self::Bridge(bridge, _parked) => bridge.stop().await,
            Self::Naive(proc) => proc.terminate(Duration::from_secs(15)).await,
        }
    }
}

pub async fn run(bench: &Bench, broker: &Broker) -> anyhow::Result<Table> {
    // points[contender][level] holds one Point per repeat.
    let mut points: Vec<Vec<Vec<Point>>> = Contender::ALL
        .iter()
        .map(|_| LEVELS.iter().map(|_| Vec::new()).collect())
        .collect();
    let started = Instant::now();
    for repeat in 0..bench.settings.repeats {
        let done = u32::try_from(repeat).unwrap_or(u32::MAX);
        if repeat > 0 && started.elapsed() + started.elapsed() / done > BUDGET {
            eprintln!("ingress: stopping after {repeat} repeat(s) to stay within {BUDGET:?}");
            break;
        }
        for (c, contender) in Contender::ALL.iter().enumerate() {
            if !bench.settings.contenders.contains(contender) {
                continue;
            }
            let measured = run_contender(bench, broker, *contender, repeat).await?;
            for (l, point) in measured.into_iter().enumerate() {
                points[c][l].push(point);
            }
        }
    }
    Ok(table(&points))
}

async fn run_contender(
    bench: &Bench,
    broker: &Broker,
    contender: Contender,
    repeat: usize,
) -> anyhow::Result<Vec<Point>> {
    let name = format!("ingress-{repeat}");
    let (running, addr) = start(bench, broker, contender, &name).await?;
    let request: Arc<[u8]> =
        cloudevent_post(&addr.to_string(), &channel_path(&name), EVENT_SIZE).into();
    let measured = measure(broker, &running, addr, request, contender, repeat).await;
    running.stop().await;
    measured
}

async fn start(
    bench: &Bench,
    broker: &Broker,
    contender: Contender,
    name: &str,
) -> anyhow::Result<(Running, SocketAddr)> {
    Ok(match contender {
        Contender::Yardstick => {
            let sink = Sink::start().await?;
            let addr = sink.addr;
            (Running::InBench(sink), addr)
        }
        Contender::Bridge => {
            let parked = Parked::start().await?;
            let bridge = contenders::start_bridge(
                &bench.bridge_bin,
                &bench.work,
                &broker.bootstrap,
                name,
                &[&parked.url],
            )
            .await?;
            let addr = bridge.ingress;
            (Running::Bridge(bridge, parked), addr)
        }
        Contender::Naive => {
            let topic = format!("naive-{name}");
            broker.create_topic(&topic, PARTITIONS).await?;
            let label = format!("naive-{name}");
            let (proc, addr) = contenders::start_naive(
                &bench.python,
                &bench.work,
                &label,
                &broker.bootstrap,
                &topic,
            )
            .await?;
            (Running::Naive(proc), addr)
        }
    })
}

async fn measure(
    broker: &Broker,
    running: &Running,
    addr: SocketAddr,
    request: Arc<[u8]>,
    contender: Contender,
    repeat: usize,
) -> anyhow::Result<Vec<Point>> {
    let mut points = Vec::with_capacity(LEVELS.len());
    for clients in LEVELS {
        let meter = Meter::start(running.proc(), broker);
        let load = Load {
            clients,
            warm_up: WARM_UP,
            window: WINDOW,
        };
        let outcome = load::run(addr, Arc::clone(&request), load).await?;
        let usage = meter.stop(running.proc(), broker);
        // CPU is read over warm-up and window alike, so it is divided by what both accepted.
        let events = outcome.accepted_total;
        let peak_rss_mib = match running.proc() {
            Some(proc) => proc.memory()?.hwm_kib as f64 / 1024.0,
            None => f64::NAN,
        };
        let point = Point {
            rate: outcome.rate(),
            p50: outcome.latency_ms(50.0),
            p99: outcome.latency_ms(99.0),
            errors: outcome.errors,
            cpu: per_10k(usage.contender, events),
            broker_cpu: per_10k(usage.broker, events),
            bench_cpu: per_10k(usage.bench, events),
            others_cores: usage.others_cores,
            peak_rss_mib,
        };
        eprintln!(
            "ingress #{repeat}: {} at {clients} client(s): {:.0} events/s, p50 {:.2} ms, p99 \
             {:.2} ms, {} errors, {:.0} CPU ms/10k",
            contender.label(),
            point.rate,
            point.p50,
            point.p99,
            point.errors,
            point.cpu
        );
        points.push(point);
    }
    Ok(points)
}

const COLUMNS: [&str; 13] = [
    "clients",
    "ingress",
    "accepted events/s (median)",
    "runs",
    "vs baseline",
    "p50 ms",
    "p99 ms",
    "errors",
    "ingress CPU ms / 10k",
    "peak RSS MiB",
    "broker CPU ms / 10k",
    "bench (load generator) CPU ms / 10k",
    "others' load, cores",
];

fn table(points: &[Vec<Vec<Point>>]) -> Table {
    let mut table = Table::new(
        &format!("Ingress: {EVENT_SIZE} B binary-mode CloudEvents, acks=all"),
        &COLUMNS,
    );
    let naive = Contender::ALL
        .iter()
        .position(|c| *c == Contender::Naive)
        .unwrap_or(0);
    for (l, clients) in LEVELS.iter().enumerate() {
        let baseline_rate = median(&points[naive][l].iter().map(|p| p.rate).collect::<Vec<_>>());
        for (c, contender) in Contender::ALL.iter().enumerate() {
            let of = &points[c][l];
            if of.is_empty() {
                continue;
            }
            let pick = |f: fn(&Point) -> f64| of.iter().map(f).collect::<Vec<f64>>();
            let rates = pick(|p| p.rate);
            let errors: u64 = of.iter().map(|p| p.errors).sum();
            table.row(vec![
                clients.to_string(),
                contender.label().to_owned(),
                num(median(&rates), 0),
                runs(&rates, 0),
                num(median(&rates) / baseline_rate, 2),
                num(median(&pick(|p| p.p50)), 2),
                num(median(&pick(|p| p.p99)), 2),
                errors.to_string(),
                num(median(&pick(|p| p.cpu)), 0),
                num(median(&pick(|p| p.peak_rss_mib)), 1),
                num(median(&pick(|p| p.broker_cpu)), 0),
                num(median(&pick(|p| p.bench_cpu)), 0),
                num(median(&pick(|p| p.others_cores)), 2),
            ]);
        }
    }
    let repeats = points
        .iter()
        .filter_map(|c| c.first())
        .map(Vec::len)
        .max()
        .unwrap_or(0);
    table.note(format!(
        "Each client: one keep-alive HTTP/1.1 connection, the next POST as soon as the answer is \
         in (closed loop). {} s warm-up, then {} s measured; a request counts when sent and \
         answered within the window; latency is send to last byte of the answer. Median of \
         {repeats} run(s), contenders in turn within each run; 'runs' lists each.",
        WARM_UP.as_secs(),
        WINDOW.as_secs()
    ));
    table.note(
        "kafka-bridge: `kafka-bridge run -f` with one KafkaChannel (8 partitions), default \
         settings; its one subscriber accepts connections and never answers, so its consumer \
         stops fetching once its in-flight limit and pre-fetch are full and the ingress is \
         measured alone (a channel without subscribers stops at once in kafka-bridge today). Baseline: benches/baseline/naive_ingress.py, aiohttp + \
         confluent-kafka (acks=all, librdkafka defaults), 202 after each delivery report. \
         Yardstick: the same generator against axum answering 202 in the bench process, so its \
         rate is the generator's ceiling on this machine (server and generator sharing it).",
    );
    table.note(
        "CPU: utime+stime from /proc over warm-up and window, per 10k events accepted in both; \
         the yardstick's server runs in the bench process, so its own CPU shows in the bench \
         column. Peak RSS: VmHWM of the ingress process. Others' load: CPU the rest of this \
         shared machine used meanwhile (machine busy time from /proc/stat less ours), in cores.",
    );
    table
}
