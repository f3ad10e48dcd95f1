//! Latency: with the bridge (unordered) already consuming a fresh topic, the bench produces at a
//! fixed rate; each value carries its production time and the sink records arrival minus that.

use std::time::Duration;

use anyhow::bail;

use crate::bridge::{Bridge, Ordering, Source};
use crate::broker::Broker;
use crate::report::{median, num, percentile, runs, Table};
use crate::sink::Sink;
use crate::{produce, Bench};

const PARTITIONS: i32 = 8;
const RECORD_SIZE: usize = 1024;
const RATES: [u64; 2] = [5_000, 20_000];
const PHASE: Duration = Duration::from_secs(10);
/// How long a phase may take to deliver its backlog once production stops.
const CATCH_UP: Duration = Duration::from_secs(15);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Default, Clone, Copy)]
struct Phase {
    achieved_rate: f64,
    delivered: u64,
    produced: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
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
        "Latency: production → sink arrival, kafka-bridge unordered",
        &[
            "target events/s",
            "produced events/s",
            "delivered",
            "p50 ms",
            "p99 ms",
            "max ms",
            "p99 runs",
            "bridge CPU % of a core",
        ],
    );
    for (rate, runs_of) in RATES.iter().zip(&phases) {
        let pick = |f: fn(&Phase) -> f64| runs_of.iter().map(f).collect::<Vec<f64>>();
        let delivered: Vec<String> = runs_of
            .iter()
            .map(|p| format!("{}/{}", p.delivered, p.produced))
            .collect();
        table.row(vec![
            rate.to_string(),
            num(median(&pick(|p| p.achieved_rate)), 0),
            delivered.join(" "),
            num(median(&pick(|p| p.p50_ms)), 1),
            num(median(&pick(|p| p.p99_ms)), 1),
            num(median(&pick(|p| p.max_ms)), 1),
            runs(&pick(|p| p.p99_ms), 1),
            num(median(&pick(|p| p.cpu_percent)), 0),
        ]);
    }
    table.note(format!(
        "{}-partition topic, {RECORD_SIZE} B values, {} s per rate, the rates one after the other \
         into the same running bridge (default settings). Each value starts with its production \
         time (Unix µs, stamped before the producer call; producer linger.ms=1); the sink \
         (axum, in the bench process) subtracts it from its clock on arrival. Median of {} run(s). \
         Broker: {}. 'delivered' counts arrivals within {} s after production stops.",
        PARTITIONS,
        PHASE.as_secs(),
        bench.settings.latency_repeats,
        broker.kind.describe(),
        CATCH_UP.as_secs()
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
    let mut bridge = Bridge::spawn(
        &bench.bridge_bin,
        &bench.work,
        &label,
        &broker.bootstrap,
        &[source],
    )?;
    let phases = measure(broker, &mut bridge, &sink, &topic, repeat).await;
    bridge.stop().await;
    phases
}

async fn measure(
    broker: &Broker,
    bridge: &mut Bridge,
    sink: &Sink,
    topic: &str,
    repeat: usize,
) -> anyhow::Result<Vec<Phase>> {
    bridge.wait_for("/readyz", READY_TIMEOUT).await?;
    let mut phases = Vec::new();
    let mut expected = 0;
    for rate in RATES {
        let cpu_before = bridge.proc.cpu()?;
        let started = std::time::Instant::now();
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
        let deadline = std::time::Instant::now() + CATCH_UP;
        while sink.count() < expected && std::time::Instant::now() < deadline {
            bridge.proc.ensure_running()?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let cpu = bridge.proc.cpu()?.saturating_sub(cpu_before);
        let mut samples = sink.take_latencies();
        if samples.is_empty() {
            bail!("latency #{repeat}: nothing arrived at {rate}/s");
        }
        samples.sort_unstable();
        let ms = |us: u64| us as f64 / 1e3;
        let phase = Phase {
            achieved_rate: produced.rate(),
            delivered: samples.len() as u64,
            produced: produced.count,
            p50_ms: ms(percentile(&samples, 50.0)),
            p99_ms: ms(percentile(&samples, 99.0)),
            max_ms: ms(percentile(&samples, 100.0)),
            cpu_percent: cpu.as_secs_f64() * 100.0 / started.elapsed().as_secs_f64(),
        };
        eprintln!(
            "latency #{repeat}: {rate}/s p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({}/{} delivered)",
            phase.p50_ms, phase.p99_ms, phase.max_ms, phase.delivered, phase.produced
        );
        // Duplicates (delivery is at-least-once) must not satisfy the next phase's wait early.
        expected = sink.count().max(expected);
        phases.push(phase);
    }
    Ok(phases)
}
