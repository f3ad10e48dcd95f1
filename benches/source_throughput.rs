//! KafkaSource benchmark: kafka-bridge against a naive Python bridge, side by side in one run.
//!
//! ```text
//! cargo bench --bench source_throughput
//! cargo bench --bench source_throughput -- [--broker tansu|mock] [--repeats N]
//!     [--latency-repeats N] [--records N] [--only drain,latency,idle,startup,cost]
//! ```
//!
//! Sections: drain throughput (bridge unordered, ordered, the baseline, plus yardsticks: a plain
//! rdkafka consumer for the broker and an HTTP client for the sink), latency under paced load,
//! idle footprint with 1 and 100 sources, start-up time, and the CPU cost per event of the source
//! path in-process, without Kafka (`cost`, not run unless named: it needs no broker). Results go to stdout as markdown and
//! to `<target dir>/bench-report.md`; each process's log and YAML to `<target dir>/bench-work/`.
//!
//! Broker: tansu, a real broker in its own process (memory storage). `--broker mock` uses
//! librdkafka's mock cluster in the bench process instead; it keeps only 5 MiB per partition
//! (too little for the drain's 100k records of 1 KiB) and scans its log linearly on every fetch
//! (it becomes the bottleneck under paced load), so it is for quick experiments.
//!
//! Needs: tansu at ~/.cargo/bin/tansu (or $TANSU_BIN) and python3 with venv (the baseline's venv
//! is created under the target dir on first use, from PyPI). The bridge is the `kafka-bridge`
//! binary cargo builds for this bench (release profile), or $KAFKA_BRIDGE_BIN; $BENCH_BRIDGE_ARGS
//! adds arguments to every bridge for experiments. Run without `--bench` (as `cargo test
//! --benches` does) it only checks its own helpers.

#[path = "source_throughput/baseline.rs"]
mod baseline;
// Shared with the channel bench, which also reads the ingress address.
#[allow(dead_code)]
#[path = "common/bridge.rs"]
mod bridge;
#[path = "common/broker.rs"]
mod broker;
#[path = "source_throughput/cost.rs"]
mod cost;
#[path = "source_throughput/drain.rs"]
mod drain;
#[path = "common/harness.rs"]
mod harness;
#[path = "common/host.rs"]
mod host;
#[path = "source_throughput/idle.rs"]
mod idle;
#[path = "source_throughput/latency.rs"]
mod latency;
#[path = "source_throughput/probe.rs"]
mod probe;
#[path = "common/process.rs"]
mod process;
#[path = "source_throughput/produce.rs"]
mod produce;
#[path = "common/report.rs"]
mod report;
// Shared with the channel bench, which also needs the sink's socket address.
#[allow(dead_code)]
#[path = "common/sink.rs"]
mod sink;
#[path = "source_throughput/sources.rs"]
mod sources;
#[path = "source_throughput/startup.rs"]
mod startup;
#[path = "common/venv.rs"]
mod venv;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::broker::{Broker, BrokerKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Drain,
    Latency,
    Idle,
    Startup,
    Cost,
}

impl Section {
    /// Sections run by default; `cost` runs only when named.
    const DEFAULT: [Section; 4] = [Self::Drain, Self::Latency, Self::Idle, Self::Startup];
    const ALL: [Section; 5] = [
        Self::Drain,
        Self::Latency,
        Self::Idle,
        Self::Startup,
        Self::Cost,
    ];

    fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw {
            "drain" => Ok(Self::Drain),
            "latency" => Ok(Self::Latency),
            "idle" => Ok(Self::Idle),
            "startup" => Ok(Self::Startup),
            "cost" => Ok(Self::Cost),
            other => bail!("unknown section {other:?}: use drain, latency, idle, startup, cost"),
        }
    }
}

pub struct Settings {
    pub broker: BrokerKind,
    pub repeats: usize,
    pub latency_repeats: usize,
    pub records: u64,
    sections: Vec<Section>,
    bench_mode: bool,
}

impl Settings {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut settings = Self {
            broker: BrokerKind::Tansu,
            repeats: 3,
            latency_repeats: 2,
            records: 100_000,
            sections: Section::DEFAULT.to_vec(),
            bench_mode: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--bench" => settings.bench_mode = true,
                "--broker" => settings.broker = BrokerKind::parse(value()?)?,
                "--repeats" => settings.repeats = value()?.parse().context("--repeats")?,
                "--latency-repeats" => {
                    settings.latency_repeats = value()?.parse().context("--latency-repeats")?;
                }
                "--records" => settings.records = value()?.parse().context("--records")?,
                "--only" => {
                    settings.sections = value()?
                        .split(',')
                        .map(Section::parse)
                        .collect::<anyhow::Result<_>>()?;
                }
                other => bail!("unknown argument {other:?}"),
            }
        }
        if settings.repeats == 0 || settings.latency_repeats == 0 || settings.records < 2 {
            bail!("--repeats and --latency-repeats must be at least 1, --records at least 2");
        }
        Ok(settings)
    }
}

/// What every section needs.
pub struct Bench {
    pub bridge_bin: PathBuf,
    pub python: PathBuf,
    pub work: PathBuf,
    pub settings: Settings,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings = match Settings::parse(&args) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    if !settings.bench_mode {
        // `cargo test --benches`: the benchmark itself needs a broker and minutes.
        return harness::self_check("source_throughput", &CHECKS);
    }
    harness::block_on(run(settings))
}

/// The pure helpers checked without `--bench`.
const CHECKS: [(&str, fn()); 5] = [
    ("process", process::self_check),
    ("sink", sink::self_check),
    ("produce", produce::self_check),
    ("report", report::self_check),
    ("sources", sources::self_check),
];

async fn run(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let target = host::target_dir()?;
    let work = host::fresh_work_dir(&target, "bench-work")?;
    let bridge_bin = host::bridge_binary()?;
    let python = if settings.sections.contains(&Section::Drain) {
        venv::ensure_venv(&target).await?
    } else {
        PathBuf::new()
    };
    let header = header(settings.broker);
    let broker = if settings.sections.iter().any(|s| *s != Section::Cost) {
        let broker = Broker::start(settings.broker, &work).await?;
        eprintln!("broker: {} at {}", broker.kind.describe(), broker.bootstrap);
        Some(broker)
    } else {
        None
    };
    let bench = Bench {
        bridge_bin,
        python,
        work,
        settings,
    };
    let mut markdown = header;
    for section in Section::ALL {
        if !bench.settings.sections.contains(&section) {
            continue;
        }
        let table = match (section, &broker) {
            // Blocks this thread while its own two threads run: nothing else runs meanwhile.
            (Section::Cost, _) => cost::run(bench.settings.records),
            (Section::Drain, Some(broker)) => drain::run(&bench, broker).await,
            (Section::Latency, Some(broker)) => latency::run(&bench, broker).await,
            (Section::Idle, Some(broker)) => idle::run(&bench, broker).await,
            (Section::Startup, Some(broker)) => startup::run(&bench, broker).await,
            (_, None) => bail!("no broker was started"),
        }
        .with_context(|| format!("{section:?} section"))?;
        let rendered = table.render();
        eprintln!("\n{rendered}");
        markdown.push_str(&rendered);
    }
    harness::finish_report(markdown, started, &target, "bench-report.md")
}

fn header(broker: BrokerKind) -> String {
    host::header(
        "kafka-bridge KafkaSource benchmark",
        &[format!("broker: {}", broker.describe())],
    )
}
