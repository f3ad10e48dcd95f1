//! Drain: a topic loaded beforehand is read from the start by each contender in its own consumer
//! group, into the bench's sink. Contenders take turns within each repeat (probe, unordered,
//! ordered, baseline), so drift on a noisy machine spreads over all of them.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::bridge::Bridge;
use crate::broker::{Broker, BrokerKind};
use crate::process::Proc;
use crate::report::{median, num, runs, Table};
use crate::sink::Sink;
use crate::sources::{self, Ordering, Source};
use crate::{baseline, probe, process, produce, Bench};

const TOPIC: &str = "drain";
const PARTITIONS: i32 = 8;
const RECORD_SIZE: usize = 1024;
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// The drain's share of a bench meant to finish in about ten minutes.
const BUDGET: Duration = Duration::from_secs(330);
/// What librdkafka's mock cluster keeps per partition before dropping the oldest records (5 MiB,
/// fixed in rdkafka_mock.c), less a margin for batch overhead.
const MOCK_PARTITION_BYTES: u64 = 4_500_000;
/// What a reader must know about tansu to trust a short run.
pub const TANSU_CAVEAT: &str = "tansu 0.6 returns nothing to a fetch that starts inside a record \
    batch (measured: a consumer assigned at offset 500 of a 1000-record batch gets nothing), so a \
    consumer that re-fetches from such an offset (e.g. after pausing a partition and discarding \
    its \
    pre-fetched records) stalls there; such a run shows up short of its records.";

const COLUMNS: [&str; 11] = [
    "consumer",
    "events/s first→last (median)",
    "runs",
    "events/s from spawn",
    "vs baseline",
    "CPU ms / 10k events (steady)",
    "CPU ms / 10k (incl. start)",
    "peak RSS MiB",
    "broker CPU ms / 10k",
    "bench (sink) CPU ms / 10k",
    "others' load, cores",
];

/// Enough POSTs for a steady rate from the HTTP-only yardstick, few enough to take seconds.
const HTTP_PROBE_EVENTS: u64 = 20_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Contender {
    Unordered,
    Ordered,
    Baseline,
}

impl Contender {
    const ALL: [Contender; 3] = [Self::Unordered, Self::Ordered, Self::Baseline];

    fn label(self) -> &'static str {
        match self {
            Self::Unordered => "kafka-bridge unordered",
            Self::Ordered => "kafka-bridge ordered",
            Self::Baseline => "naive Python baseline",
        }
    }

    fn slug(self) -> &'static str {
        match self {
            Self::Unordered => "unordered",
            Self::Ordered => "ordered",
            Self::Baseline => "baseline",
        }
    }
}

/// One contender's run. Rates are events per second; CPU is in ms per 10k events.
#[derive(Default, Clone, Copy)]
struct Run {
    delivered: u64,
    rate_first_to_last: f64,
    rate_from_spawn: f64,
    cpu_steady: f64,
    cpu_total: f64,
    peak_rss_mib: f64,
    broker_cpu: f64,
    sink_cpu: f64,
    /// Cores other users of the machine kept busy during the run, on average.
    others_cores: f64,
}

enum Running {
    Bridge(Bridge),
    Baseline(Proc),
}

impl Running {
    fn proc(&mut self) -> &mut Proc {
        match self {
            Self::Bridge(bridge) => &mut bridge.proc,
            Self::Baseline(proc) => proc,
        }
    }

    async fn stop(self) {
        match self {
            Self::Bridge(bridge) => bridge.stop().await,
            Self::Baseline(proc) => proc.terminate(Duration::from_secs(15)).await,
        }
    }
}

pub async fn run(bench: &Bench, broker: &Broker) -> anyhow::Result<Table> {
    let records = bench.settings.records;
    let per_partition = records * RECORD_SIZE as u64 / PARTITIONS as u64;
    if broker.kind == BrokerKind::Mock && per_partition > MOCK_PARTITION_BYTES {
        bail!(
            "the mock cluster keeps about {MOCK_PARTITION_BYTES} bytes per partition and drops \
             older \
             records; {records} records need {per_partition}: use tansu or --records {}",
            MOCK_PARTITION_BYTES * PARTITIONS as u64 / RECORD_SIZE as u64
        );
    }
    broker.create_topic(TOPIC, PARTITIONS).await?;
    let loaded = produce::bulk(
        broker.producer_config(),
        TOPIC,
        PARTITIONS,
        records,
        RECORD_SIZE,
    )
    .await?;
    eprintln!(
        "drain: loaded {records} x {RECORD_SIZE} B into {PARTITIONS} partitions in {:.1} s \
         ({:.0} records/s)",
        loaded.elapsed.as_secs_f64(),
        loaded.rate()
    );

    let mut probes = Vec::new();
    let mut http_rates = Vec::new();
    let mut results: Vec<(Contender, Vec<Run>)> =
        Contender::ALL.iter().map(|c| (*c, Vec::new())).collect();
    let started = Instant::now();
    for repeat in 0..bench.settings.repeats {
        // Another repeat only if one more of the same length still fits the budget.
        let done = u32::try_from(repeat).unwrap_or(u32::MAX);
        if repeat > 0 && started.elapsed() + started.elapsed() / done > BUDGET {
            eprintln!("drain: stopping after {repeat} repeat(s) to stay within {BUDGET:?}");
            break;
        }
        let group = format!("drain-probe-{repeat}");
        let raw = probe::raw_drain(&broker.bootstrap, TOPIC, &group, records, RUN_TIMEOUT).await?;
        let rate = rate(raw.count, raw.last - raw.first);
        eprintln!("drain #{repeat}: raw rdkafka consumer {rate:.0} events/s");
        probes.push((
            rate,
            raw.count as f64 / raw.last.duration_since(raw.started).as_secs_f64(),
        ));
        let sink = Sink::start().await?;
        let http = probe::http_only(&sink.url, records.min(HTTP_PROBE_EVENTS), 64).await?;
        drop(sink);
        eprintln!(
            "drain #{repeat}: HTTP only (the bridge's dispatcher, 64 in flight) {http:.0} events/s"
        );
        http_rates.push(http);
        for (contender, runs_of) in &mut results {
            let run = run_once(bench, broker, *contender, repeat).await?;
            eprintln!(
                "drain #{repeat}: {} {:.0} events/s, {:.0} CPU ms/10k, {:.0} MiB peak",
                contender.label(),
                run.rate_first_to_last,
                run.cpu_steady,
                run.peak_rss_mib
            );
            runs_of.push(run);
        }
    }
    Ok(table(broker, records, &probes, &http_rates, &results))
}

async fn run_once(
    bench: &Bench,
    broker: &Broker,
    contender: Contender,
    repeat: usize,
) -> anyhow::Result<Run> {
    let sink = Sink::start().await?;
    let group = format!("drain-{}-{repeat}", contender.slug());
    let label = format!("drain-{}-{repeat}", contender.slug());
    let bootstrap = &broker.bootstrap;
    let broker_cpu_before = broker.cpu();
    let self_before = process::self_cpu();
    let machine_before = process::machine_busy();
    let mut running = match contender {
        Contender::Baseline => Running::Baseline(baseline::spawn(
            &bench.python,
            &bench.work,
            &label,
            bootstrap,
            TOPIC,
            &group,
            &sink.url,
        )?),
        Contender::Unordered | Contender::Ordered => {
            let ordering = if contender == Contender::Ordered {
                Ordering::Ordered
            } else {
                Ordering::Unordered
            };
            let source = Source {
                name: label.clone(),
                topic: TOPIC,
                group: group.clone(),
                ordering,
                sink: &sink.url,
            };
            Running::Bridge(sources::spawn(
                &bench.bridge_bin,
                &bench.work,
                &label,
                bootstrap,
                &[source],
            )?)
        }
    };
    let spawned = Instant::now();
    let expected = bench.settings.records;
    let mut at_first = None;
    // Poll every 5 ms: the CPU reading at the first arrival separates start-up and the group
    // join from the steady state, within one poll of delivery.
    while sink.count() < expected && spawned.elapsed() < RUN_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let count = sink.count();
        if at_first.is_none() && count > 0 {
            at_first = Some((count, running.proc().cpu()?));
        }
        running.proc().ensure_running()?;
    }
    let delivered = sink.count();
    let cpu_end = running.proc().cpu()?;
    let memory = running.proc().memory()?;
    let broker_cpu_after = broker.cpu();
    let self_after = process::self_cpu();
    let machine_after = process::machine_busy();
    let wall = spawned.elapsed();
    running.stop().await;
    if delivered < expected {
        eprintln!(
            "drain #{repeat}: {} delivered only {delivered} of {expected} within {RUN_TIMEOUT:?}",
            contender.label()
        );
    }
    let (first, last) = sink
        .window()
        .with_context(|| format!("{} delivered nothing", contender.label()))?;
    let (count_at_first, cpu_at_first) = at_first.unwrap_or((delivered, cpu_end));
    let per_10k = |cpu: Duration, events: u64| cpu.as_secs_f64() * 1e3 * 1e4 / events.max(1) as f64;
    let broker_cpu = match (broker_cpu_before, broker_cpu_after) {
        (Some(before), Some(after)) => per_10k(after.saturating_sub(before), delivered),
        _ => f64::NAN,
    };
    let sink_cpu = match (self_before, self_after) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => Duration::ZERO,
    };
    let broker_own = match (broker_cpu_before, broker_cpu_after) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => Duration::ZERO,
    };
    let others_cores = match (machine_before, machine_after) {
        (Some(before), Some(after)) => {
            let others = after
                .saturating_sub(before)
                .saturating_sub(cpu_end + sink_cpu + broker_own);
            others.as_secs_f64() / wall.as_secs_f64().max(1e-9)
        }
        _ => f64::NAN,
    };
    Ok(Run {
        delivered,
        rate_first_to_last: rate(delivered, last - first),
        rate_from_spawn: rate(delivered, last.saturating_duration_since(spawned)),
        cpu_steady: per_10k(
            cpu_end.saturating_sub(cpu_at_first),
            delivered.saturating_sub(count_at_first),
        ),
        cpu_total: per_10k(cpu_end, delivered),
        peak_rss_mib: memory.hwm_kib as f64 / 1024.0,
        broker_cpu,
        sink_cpu: per_10k(sink_cpu, delivered),
        others_cores,
    })
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    // The first event opens the window, so count - 1 intervals span it.
    count.saturating_sub(1) as f64 / elapsed.as_secs_f64().max(1e-9)
}

fn table(
    broker: &Broker,
    records: u64,
    probes: &[(f64, f64)],
    http_rates: &[f64],
    results: &[(Contender, Vec<Run>)],
) -> Table {
    let mut table = Table::new(
        &format!("Drain: {records} records of {RECORD_SIZE} B, {PARTITIONS} partitions"),
        &COLUMNS,
    );
    let baseline_rate = results
        .iter()
        .find(|(c, _)| *c == Contender::Baseline)
        .map(|(_, done)| {
            median(
                &done
                    .iter()
                    .map(|r| r.rate_first_to_last)
                    .collect::<Vec<_>>(),
            )
        })
        .unwrap_or(f64::NAN);
    let probe_first: Vec<f64> = probes.iter().map(|p| p.0).collect();
    let probe_spawn: Vec<f64> = probes.iter().map(|p| p.1).collect();
    // Yardsticks measure a rate only; their other cells read n/a.
    let yardstick = |mut cells: Vec<String>| {
        cells.resize(COLUMNS.len(), "n/a".to_owned());
        cells
    };
    table.row(yardstick(vec![
        "rdkafka consumer, no HTTP (yardstick)".into(),
        num(median(&probe_first), 0),
        runs(&probe_first, 0),
        num(median(&probe_spawn), 0),
        num(median(&probe_first) / baseline_rate, 2),
    ]));
    table.row(yardstick(vec![
        format!(
            "HTTP only, no Kafka: the bridge's dispatcher in the bench, 64 in flight, {} events (yardstick)",
            records.min(HTTP_PROBE_EVENTS)
        ),
        num(median(http_rates), 0),
        runs(http_rates, 0),
        "n/a".into(),
        num(median(http_rates) / baseline_rate, 2),
    ]));
    for (contender, runs_of) in results {
        let pick = |f: fn(&Run) -> f64| runs_of.iter().map(f).collect::<Vec<f64>>();
        let first = pick(|r| r.rate_first_to_last);
        table.row(vec![
            contender.label().into(),
            num(median(&first), 0),
            runs(&first, 0),
            num(median(&pick(|r| r.rate_from_spawn)), 0),
            num(median(&first) / baseline_rate, 2),
            num(median(&pick(|r| r.cpu_steady)), 0),
            num(median(&pick(|r| r.cpu_total)), 0),
            num(median(&pick(|r| r.peak_rss_mib)), 1),
            num(median(&pick(|r| r.broker_cpu)), 0),
            num(median(&pick(|r| r.sink_cpu)), 0),
            num(median(&pick(|r| r.others_cores)), 2),
        ]);
        let short: Vec<u64> = runs_of
            .iter()
            .map(|r| r.delivered)
            .filter(|d| *d < records)
            .collect();
        if !short.is_empty() {
            table.note(format!(
                "{}: {} run(s) timed out short of {records} events (delivered {short:?}); their \
                 rates cover what arrived",
                contender.label(),
                short.len()
            ));
        }
    }
    table.note(format!(
        "Broker: {}. Sink: axum in the bench process answering 202 (same sink for every consumer). \
         Each run: its own consumer group from earliest, session.timeout.ms={}.",
        broker.kind.describe(),
        crate::bridge::SESSION_TIMEOUT_MS
    ));
    if broker.kind == BrokerKind::Tansu {
        table.note(TANSU_CAVEAT);
    }
    table.note(
        "events/s first→last: from the first to the last arrival at the sink; from spawn: from \
         process start (includes start-up and the group join). CPU: utime+stime of the consumer \
         process from /proc/PID/stat (steady = after the first arrival). Peak RSS: VmHWM. \
         vs baseline: ratio of median events/s first→last. Broker CPU: tansu's process (n/a for \
         the mock, which runs in the bench process). Bench CPU: the bench process, i.e. the sink \
         (plus the mock cluster when used). Others' load: CPU the rest of this shared machine used \
         during the run (machine busy time from /proc/stat less ours), in cores out of nproc.",
    );
    table.note(format!(
        "Median of {} run(s) (up to --repeats while the section stays within {} s); 'runs' \
         lists each.",
        probes.len(),
        BUDGET.as_secs()
    ));
    table
}
