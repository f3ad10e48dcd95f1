//! Latency: with the bridge (unordered) already consuming a fresh topic, the bench produces at a
//! fixed rate; each value carries its production time and the sink records arrival minus that. A
//! plain rdkafka consumer reads the same topic meanwhile (its own group) and notes the same
//! latency with no HTTP, to tell the bridge's share from the producer's and the broker's.

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::bridge::Bridge;
use crate::broker::Broker;
use crate::probe::LatencyProbe;
use crate::report::{median, num, percentile, runs, Table};
use crate::sink::Sink;
use crate::sources::{self, Ordering, Source};
use crate::{produce, Bench};

const PARTITIONS: i32 = 8;
const RECORD_SIZE: usize = 1024;
const RATES: [u64; 2] = [5_000, 20_000];
const PHASE: Duration = Duration::from_secs(10);
/// How long a phase may take to deliver its backlog once production stops.
const CATCH_UP: Duration = Duration::from_secs(15);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Latency figures of one consumer over one phase, in ms.
#[derive(Default, Clone, Copy)]
struct Stats {
    delivered: u64,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Stats {
    fn of(mut samples_us: Vec<u64>) -> Self {
        samples_us.sort_unstable();
        let ms = |us: u64| us as f64 / 1e3;
        Self {
            delivered: samples_us.len() as u64,
            p50: ms(percentile(&samples_us, 50.0)),
            p99: ms(percentile(&samples_us, 99.0)),
            max: ms(percentile(&samples_us, 100.0)),
        }
    }
}

/// Which consumer's figures a table row shows.
type StatsOf = fn(&Phase) -> Stats;

#[derive(Default, Clone, Copy)]
struct Phase {
    produced: u64,
    achieved_rate: f64,
    bridge: Stats,
    probe: Stats,
    cpu_percent: f64,
}

pub async fn run(bench: &Bench, broker: &Broker) -> anyhow::Result<Table> {
    let mut phases: Vec<Vec<Phase>> = RATES.iter().map(|_| Vec::new()).collect();
    for repeat in 0..bench.settings.latency_repeats {
        for (i, phase) in run_once(bench, broker, repeat)
            .await?
            .into_iter()
            .enumerate()
        {
            phases[i].push(phase);
        }
    }
    let mut table = Table::new(
        "Latency: production → arrival",
        &[
            "target events/s",
            "produced events/s",
            "consumer",
            "delivered",
            "p50 ms",
            "p99 ms",
            "max ms",
            "p99 runs",
            "bridge CPU % of a core",
        ],
    );
    for (rate, runs_of) in RATES.iter().zip(&phases) {
        let produced = median(&runs_of.iter().map(|p| p.achieved_rate).collect::<Vec<_>>());
        let cpu = median(&runs_of.iter().map(|p| p.cpu_percent).collect::<Vec<_>>());
        let consumers: [(&str, StatsOf); 2] = [
            ("kafka-bridge unordered → sink", |p| p.bridge),
            ("rdkafka consumer, no HTTP (yardstick)", |p| p.probe),
        ];
        for (i, (name, stats_of)) in consumers.iter().enumerate() {
            let stats: Vec<Stats> = runs_of.iter().map(stats_of).collect();
            let pick = |f: fn(&Stats) -> f64| stats.iter().map(f).collect::<Vec<f64>>();
            let delivered: Vec<String> = stats
                .iter()
                .zip(runs_of)
                .map(|(s, p)| format!("{}/{}", s.delivered, p.produced))
                .collect();
            table.row(vec![
                rate.to_string(),
                num(produced, 0),
                (*name).to_owned(),
                delivered.join(" "),
                num(median(&pick(|s| s.p50)), 1),
                num(median(&pick(|s| s.p99)), 1),
                num(median(&pick(|s| s.max)), 1),
                runs(&pick(|s| s.p99), 1),
                if i == 0 { num(cpu, 0) } else { "n/a".into() },
            ]);
        }
    }
    table.note(format!(
        "{PARTITIONS}-partition topic, {RECORD_SIZE} B values, {} s per rate, the rates one after \
         the other into the same running bridge (default settings). Each value starts with its \
         production time (Unix µs, stamped before the producer call; producer linger.ms=5, \
         librdkafka's default); the sink (axum, in the bench process) and the yardstick consumer \
         (in the bench process, with the bridge's fetch.wait.max.ms=100) subtract it from the \
         clock on arrival. produced events/s: until the broker acknowledged the last record. \
         'delivered' counts arrivals within {} s after production stops. Median of {} run(s). \
         Broker: {}.",
        PHASE.as_secs(),
        CATCH_UP.as_secs(),
        bench.settings.latency_repeats,
        broker.kind.describe(),
    ));
    Ok(table)
}

async fn run_once(bench: &Bench, broker: &Broker, repeat: usize) -> anyhow::Result<Vec<Phase>> {
    let topic = format!("latency-{repeat}");
    broker.create_topic(&topic, PARTITIONS).await?;
    let sink = Sink::start().await?;
    let label = format!("latency-{repeat}");
    let source = Source {
        name: label.clone(),
        topic: &topic,
        group: label.clone(),
        ordering: Ordering::Unordered,
        sink: &sink.url,
    };
    let probe = LatencyProbe::start(&broker.bootstrap, &topic, &format!("{label}-probe"))?;
    let mut bridge = sources::spawn(
        &bench.bridge_bin,
        &bench.work,
        &label,
        &broker.bootstrap,
        &[source],
    )?;
    let phases = measure(broker, &mut bridge, &sink, &probe, &topic, repeat).await;
    bridge.stop().await;
    probe.stop().await?;
    phases
}

async fn measure(
    broker: &Broker,
    bridge: &mut Bridge,
    sink: &Sink,
    probe: &LatencyProbe,
    topic: &str,
    repeat: usize,
) -> anyhow::Result<Vec<Phase>> {
    bridge.wait_for("/readyz", READY_TIMEOUT).await?;
    probe.wait_assigned(READY_TIMEOUT).await?;
    let mut phases = Vec::new();
    let mut expected = 0;
    for rate in RATES {
        let cpu_before = bridge.proc.cpu()?;
        let started = Instant::now();
        let produced = produce::paced(
            broker.producer_config(),
            topic,
            PARTITIONS,
            rate,
            PHASE,
            RECORD_SIZE,
        )
        .await?;
        expected += produced.count;
        let deadline = Instant::now() + CATCH_UP;
        while sink.count() < expected && Instant::now() < deadline {
            bridge.proc.ensure_running()?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let cpu = bridge.proc.cpu()?.saturating_sub(cpu_before);
        let bridge_samples = sink.take_latencies();
        if bridge_samples.is_empty() {
            bail!("latency #{repeat}: nothing arrived at {rate}/s");
        }
        let phase = Phase {
            produced: produced.count,
            achieved_rate: produced.rate(),
            bridge: Stats::of(bridge_samples),
            probe: Stats::of(probe.take()),
            cpu_percent: cpu.as_secs_f64() * 100.0 / started.elapsed().as_secs_f64(),
        };
        eprintln!(
            "latency #{repeat}: {rate}/s bridge p50 {:.1} ms, p99 {:.1} ms ({}/{}); \
             plain consumer p50 {:.1} ms, p99 {:.1} ms",
            phase.bridge.p50,
            phase.bridge.p99,
            phase.bridge.delivered,
            phase.produced,
            phase.probe.p50,
            phase.probe.p99
        );
        // Duplicates (delivery is at-least-once) must not satisfy the next phase's wait early.
        expected = sink.count().max(expected);
        phases.push(phase);
    }
    Ok(phases)
}
