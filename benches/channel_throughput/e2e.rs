//! End to end: clients POST to a KafkaChannel with one and with four subscribers (sinks in the
//! bench process answering 202); every subscriber must receive every accepted event. Reported:
//! the ingress rate while subscribers consume, each subscriber's delivery rate, how long after the
//! last POST the last delivery came, and the bridge's CPU and peak RSS over the whole run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::broker::Broker;
use crate::contenders::{self, channel_path};
use crate::load::{self, Load};
use crate::meter::{per_10k, percent_of_core, Meter};
use crate::report::{median, num, runs, Table};
use crate::request::{cloudevent_post, EVENT_SIZE};
use crate::sink::Sink;
use crate::Bench;

const SUBSCRIBERS: [usize; 2] = [1, 4];
const CLIENTS: usize = 64;
const WINDOW: Duration = Duration::from_secs(4);
/// How long subscribers may take to receive the backlog once the clients stop.
const CATCH_UP: Duration = Duration::from_secs(60);
/// A run with no arrival at any subscriber for this long has stalled: waiting on is pointless.
const STALL: Duration = Duration::from_secs(10);
/// The section's share of a bench meant to finish in about six minutes.
const BUDGET: Duration = Duration::from_secs(150);

/// One run. Rates are events per second.
#[derive(Debug, Clone, Copy)]
struct Point {
    ingress_rate: f64,
    accepted: u64,
    /// Fewest and most events one subscriber received.
    delivered_min: u64,
    delivered_max: u64,
    /// The slowest subscriber's rate, first to last arrival.
    per_subscriber_rate: f64,
    /// Every subscriber's arrivals together over the run: accepted x subscribers / time from the
    /// first POST to the last arrival anywhere.
    end_to_end_rate: f64,
    /// From the last answered POST to the last arrival.
    catch_up: f64,
    cpu_per_10k: f64,
    cpu_percent: f64,
    peak_rss_mib: f64,
}

pub async fn run(bench: &Bench, broker: &Broker) -> anyhow::Result<Table> {
    let mut points: Vec<Vec<Point>> = SUBSCRIBERS.iter().map(|_| Vec::new()).collect();
    let started = Instant::now();
    for repeat in 0..bench.settings.repeats {
        let done = u32::try_from(repeat).unwrap_or(u32::MAX);
        if repeat > 0 && started.elapsed() + started.elapsed() / done > BUDGET {
            eprintln!("e2e: stopping after {repeat} repeat(s) to stay within {BUDGET:?}");
            break;
        }
        for (i, subscribers) in SUBSCRIBERS.iter().enumerate() {
            let point = run_once(bench, broker, *subscribers, repeat).await?;
            eprintln!(
                "e2e #{repeat}: {subscribers} subscriber(s): ingress {:.0} events/s, slowest \
                 subscriber {:.0} events/s, delivered {}..{} of {}, caught up {:.1} s after the \
                 last POST",
                point.ingress_rate,
                point.per_subscriber_rate,
                point.delivered_min,
                point.delivered_max,
                point.accepted,
                point.catch_up
            );
            points[i].push(point);
        }
    }
    Ok(table(&points))
}

async fn run_once(
    bench: &Bench,
    broker: &Broker,
    subscribers: usize,
    repeat: usize,
) -> anyhow::Result<Point> {
    let mut sinks = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        sinks.push(Sink::start().await?);
    }
    let urls: Vec<&str> = sinks.iter().map(|s| s.url.as_str()).collect();
    let name = format!("e2e-{subscribers}-{repeat}");
    let mut bridge = contenders::start_bridge(
        &bench.bridge_bin,
        &bench.work,
        &broker.bootstrap,
        &name,
        &urls,
    )
    .await?;
    let measured = async {
        let addr = bridge.ingress;
        let request: Arc<[u8]> =
            cloudevent_post(&addr.to_string(), &channel_path(&name), EVENT_SIZE).into();
        let meter = Meter::start(Some(&bridge.proc), broker);
        let posting = Instant::now();
        let load = Load {
            clients: CLIENTS,
            warm_up: Duration::ZERO,
            window: WINDOW,
        };
        let outcome = load::run(addr, request, load).await?;
        let posted = Instant::now();
        let accepted = outcome.accepted_total;
        let deadline = posted + CATCH_UP;
        let (mut arrived, mut progress_at) = (0, Instant::now());
        while sinks.iter().any(|s| s.count() < accepted) && Instant::now() < deadline {
            bridge.proc.ensure_running()?;
            let now_arrived: u64 = sinks.iter().map(Sink::count).sum();
            if now_arrived != arrived {
                (arrived, progress_at) = (now_arrived, Instant::now());
            } else if progress_at.elapsed() > STALL {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let usage = meter.stop(Some(&bridge.proc), broker);
        let memory = bridge.proc.memory()?;
        let counts: Vec<u64> = sinks.iter().map(Sink::count).collect();
        let windows: Vec<(Instant, Instant)> = sinks
            .iter()
            .map(Sink::window)
            .collect::<Option<_>>()
            .context("a subscriber received nothing")?;
        let slowest = counts
            .iter()
            .zip(&windows)
            .map(|(count, (first, last))| {
                count.saturating_sub(1) as f64 / (*last - *first).as_secs_f64().max(1e-9)
            })
            .fold(f64::INFINITY, f64::min);
        let last = windows
            .iter()
            .map(|(_, last)| *last)
            .max()
            .unwrap_or(posted);
        let delivered: u64 = counts.iter().sum();
        anyhow::Ok(Point {
            ingress_rate: outcome.rate(),
            accepted,
            delivered_min: counts.iter().copied().min().unwrap_or(0),
            delivered_max: counts.iter().copied().max().unwrap_or(0),
            per_subscriber_rate: slowest,
            end_to_end_rate: delivered as f64
                / last
                    .saturating_duration_since(posting)
                    .as_secs_f64()
                    .max(1e-9),
            catch_up: last.saturating_duration_since(posted).as_secs_f64(),
            cpu_per_10k: per_10k(usage.contender, accepted),
            cpu_percent: percent_of_core(usage.contender, usage.wall),
            peak_rss_mib: memory.hwm_kib as f64 / 1024.0,
        })
    }
    .await;
    bridge.stop().await;
    measured
}

const COLUMNS: [&str; 10] = [
    "subscribers",
    "ingress accepted events/s",
    "slowest subscriber events/s (median)",
    "runs",
    "deliveries/s, all subscribers",
    "delivered per subscriber / accepted",
    "caught up after last POST, s",
    "bridge CPU ms / 10k events in",
    "bridge CPU % of a core",
    "peak RSS MiB",
];

fn table(points: &[Vec<Point>]) -> Table {
    let mut table = Table::new(
        &format!("Channel end to end: POST → Kafka → every subscriber, {CLIENTS} clients"),
        &COLUMNS,
    );
    let mut short = 0;
    for (subscribers, of) in SUBSCRIBERS.iter().zip(points) {
        short += of.iter().filter(|p| p.delivered_min < p.accepted).count();
        let pick = |f: fn(&Point) -> f64| of.iter().map(f).collect::<Vec<f64>>();
        let slowest = pick(|p| p.per_subscriber_rate);
        let delivered: Vec<String> = of
            .iter()
            .map(|p| {
                if p.delivered_min == p.delivered_max {
                    format!("{}/{}", p.delivered_min, p.accepted)
                } else {
                    format!("{}..{}/{}", p.delivered_min, p.delivered_max, p.accepted)
                }
            })
            .collect();
        table.row(vec![
            subscribers.to_string(),
            num(median(&pick(|p| p.ingress_rate)), 0),
            num(median(&slowest), 0),
            runs(&slowest, 0),
            num(median(&pick(|p| p.end_to_end_rate)), 0),
            delivered.join(" "),
            num(median(&pick(|p| p.catch_up)), 1),
            num(median(&pick(|p| p.cpu_per_10k)), 0),
            num(median(&pick(|p| p.cpu_percent)), 0),
            num(median(&pick(|p| p.peak_rss_mib)), 1),
        ]);
    }
    table.note(format!(
        "`kafka-bridge run -f` with one KafkaChannel (8 partitions) whose subscribers are sinks \
         in the bench process answering 202; each subscriber its own consumer group, default \
         delivery settings. {CLIENTS} clients POST {EVENT_SIZE} B binary-mode CloudEvents for \
         {} s (closed loop, keep-alive), then the bench waits up to {} s for every subscriber \
         to have every accepted event (giving up after {} s without an arrival).",
        WINDOW.as_secs(),
        CATCH_UP.as_secs(),
        STALL.as_secs()
    ));
    if short > 0 {
        table.note(format!(
            "{short} run(s) ended with a subscriber short of the accepted events. tansu 0.6 \
             returns nothing to a fetch that starts inside a record batch, and the ingress \
             stores events in multi-record batches, so a subscriber that pauses a partition \
             (its in-flight limit reached) and fetches it again from such an offset stalls on \
             that partition; its rates cover what arrived."
        ));
    }
    table.note(
        "slowest subscriber: its arrivals from first to last; deliveries/s: all subscribers' \
         arrivals over the time from the first POST to the last arrival; delivered: arrivals \
         per subscriber (min..max when they differ) / events accepted with 202. CPU and RSS of \
         the bridge process over the whole run (POSTs and catch-up).",
    );
    table
}
