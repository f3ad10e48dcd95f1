//! KafkaChannel benchmark: kafka-bridge's channel ingress against a naive Python ingress, and the
//! channel end to end, side by side in one run.
//!
//! ```text
//! cargo bench --bench channel_throughput
//! cargo bench --bench channel_throughput -- [--repeats N] [--only ingress,e2e,cost]
//!     [--contenders yardstick,bridge,baseline] [--requests N]
//! ```
//!
//! Sections: ingress accepted events/s with p50/p99 latency at 1, 64 and 256 concurrent clients
//! (kafka-bridge, the naive baseline, and a yardstick: the same load generator against a trivial
//! server), end-to-end delivery to one and to four subscribers, and the CPU cost per ingress
//! request in-process against librdkafka's mock cluster (`cost`, not run unless named: it needs
//! neither tansu nor the bridge binary). Results go to stdout as
//! markdown and to `<target dir>/channel-bench-report.md`; each process's log and YAML to
//! `<target dir>/channel-bench-work/`.
//!
//! Needs: tansu at ~/.cargo/bin/tansu (or $TANSU_BIN) and python3 with venv (the baseline's venv
//! is created under the target dir on first use, from PyPI). The bridge is the `kafka-bridge`
//! binary cargo builds for this bench (release profile), or $KAFKA_BRIDGE_BIN; $BENCH_BRIDGE_ARGS
//! adds arguments to every bridge for experiments. Run without `--bench` (as `cargo test
//! --benches` does) it only checks its own helpers.

#[path = "common/bridge.rs"]
mod bridge;
// Shared with the source bench, which uses the mock cluster this bench does not.
#[allow(dead_code)]
#[path = "common/broker.rs"]
mod broker;
#[path = "channel_throughput/contenders.rs"]
mod contenders;
#[path = "channel_throughput/cost.rs"]
mod cost;
#[path = "channel_throughput/e2e.rs"]
mod e2e;
#[path = "common/harness.rs"]
mod harness;
#[path = "common/host.rs"]
mod host;
#[path = "channel_throughput/http1.rs"]
mod http1;
#[path = "channel_throughput/ingress.rs"]
mod ingress;
#[path = "channel_throughput/load.rs"]
mod load;
#[path = "common/meter.rs"]
mod meter;
#[allow(dead_code)]
#[path = "common/process.rs"]
mod process;
#[path = "common/report.rs"]
mod report;
// Shared with the source bench, which also times arrivals by a stamp in the body.
#[path = "channel_throughput/request.rs"]
mod request;
#[allow(dead_code)]
#[path = "common/sink.rs"]
mod sink;
#[path = "common/venv.rs"]
mod venv;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::broker::{Broker, BrokerKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Ingress,
    EndToEnd,
    Cost,
}

impl Section {
    /// Sections run by default; `cost` runs only when named.
    const DEFAULT: [Section; 2] = [Self::Ingress, Self::EndToEnd];
    const ALL: [Section; 3] = [Self::Ingress, Self::EndToEnd, Self::Cost];

    fn parse(raw: &str) -> anyhow::Result<Self> {
        match raw {
            "ingress" => Ok(Self::Ingress),
            "e2e" => Ok(Self::EndToEnd),
            "cost" => Ok(Self::Cost),
            other => bail!("unknown section {other:?}: use ingress, e2e, cost"),
        }
    }
}

pub struct Settings {
    pub repeats: usize,
    /// Who the ingress section measures (all by default; fewer for quick tuning runs).
    pub contenders: Vec<ingress::Contender>,
    /// Measured requests of the cost section.
    pub requests: u64,
    sections: Vec<Section>,
    bench_mode: bool,
}

impl Settings {
    fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut settings = Self {
            repeats: 3,
            contenders: ingress::Contender::ALL.to_vec(),
            requests: 20_000,
            sections: Section::DEFAULT.to_vec(),
            bench_mode: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--bench" => settings.bench_mode = true,
                "--repeats" => settings.repeats = value()?.parse().context("--repeats")?,
                "--requests" => settings.requests = value()?.parse().context("--requests")?,
                "--only" => {
                    settings.sections = value()?
                        .split(',')
                        .map(Section::parse)
                        .collect::<anyhow::Result<_>>()?;
                }
                "--contenders" => {
                    settings.contenders = value()?
                        .split(',')
                        .map(ingress::Contender::parse)
                        .collect::<anyhow::Result<_>>()?;
                }
                other => bail!("unknown argument {other:?}"),
            }
        }
        if settings.repeats == 0 || settings.requests == 0 {
            bail!("--repeats and --requests must be at least 1");
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
        return harness::self_check("channel_throughput", &CHECKS);
    }
    harness::block_on(run(settings))
}

/// The pure helpers checked without `--bench`.
const CHECKS: [(&str, fn()); 5] = [
    ("http1", http1::self_check),
    ("request", request::self_check),
    ("contenders", contenders::self_check),
    ("process", process::self_check),
    ("report", report::self_check),
];

async fn run(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let target = host::target_dir()?;
    let work = host::fresh_work_dir(&target, "channel-bench-work")?;
    // Only the cost section runs without tansu and the bridge binary.
    let processes = settings.sections.iter().any(|s| *s != Section::Cost);
    let bridge_bin = if processes {
        host::bridge_binary()?
    } else {
        PathBuf::new()
    };
    let python = if settings.sections.contains(&Section::Ingress)
        && settings.contenders.contains(&ingress::Contender::Naive)
    {
        venv::ensure_venv(&target).await?
    } else {
        PathBuf::new()
    };
    let broker_kind = if processes {
        BrokerKind::Tansu
    } else {
        BrokerKind::Mock
    };
    let mut markdown = host::header(
        "kafka-bridge KafkaChannel benchmark",
        &[format!("broker: {}", broker_kind.describe())],
    );
    let broker = if processes {
        let broker = Broker::start(BrokerKind::Tansu, &work).await?;
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
    for section in Section::ALL {
        if !bench.settings.sections.contains(&section) {
            continue;
        }
        let table = match (section, &broker) {
            // Blocks this thread while its own threads run: nothing else runs meanwhile.
            (Section::Cost, _) => cost::run(bench.settings.requests),
            (Section::Ingress, Some(broker)) => ingress::run(&bench, broker).await,
            (Section::EndToEnd, Some(broker)) => e2e::run(&bench, broker).await,
            (_, None) => bail!("no broker was started"),
        }
        .with_context(|| format!("{section:?} section"))?;
        let rendered = table.render();
        eprintln!("\n{rendered}");
        markdown.push_str(&rendered);
    }
    harness::finish_report(markdown, started, &target, "channel-bench-report.md")
}
