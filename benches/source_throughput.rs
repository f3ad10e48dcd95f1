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
#[path = "source_throughput/bridge.rs"]
mod bridge;
#[path = "source_throughput/broker.rs"]
mod broker;
#[path = "source_throughput/cost.rs"]
mod cost;
#[path = "source_throughput/drain.rs"]
mod drain;
#[path = "source_throughput/idle.rs"]
mod idle;
#[path = "source_throughput/latency.rs"]
mod latency;
#[path = "source_throughput/probe.rs"]
mod probe;
#[path = "source_throughput/process.rs"]
mod process;
#[path = "source_throughput/produce.rs"]
mod produce;
#[path = "source_throughput/report.rs"]
mod report;
#[path = "source_throughput/sink.rs"]
mod sink;
#[path = "source_throughput/startup.rs"]
mod startup;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};

use crate::broker::{Broker, BrokerKind};

/// Group session timeout for the bridge and the baseline alike: joins take about half of it.
pub const SESSION_TIMEOUT_MS: &str = "6000";

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
        return self_check();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Without `--bench` (`cargo test --benches`), check the pure helpers and stop: the benchmark
/// itself needs a broker and minutes.
fn self_check() -> ExitCode {
    let checks: [(&str, fn()); 5] = [
        ("process", process::self_check),
        ("sink", sink::self_check),
        ("produce", produce::self_check),
        ("report", report::self_check),
        ("bridge", bridge::self_check),
    ];
    for (name, check) in checks {
        check();
        println!("check {name} ... ok");
    }
    println!("source_throughput: {} passed, 0 failed", checks.len());
    ExitCode::SUCCESS
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let started = Instant::now();
    let target = target_dir()?;
    let work = target.join("bench-work");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let bridge_bin = std::env::var_os("KAFKA_BRIDGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kafka-bridge")));
    if !bridge_bin.exists() {
        bail!(
            "{} is missing: run cargo build --release",
            bridge_bin.display()
        );
    }
    let python = if settings.sections.contains(&Section::Drain) {
        baseline::ensure_venv(&target).await?
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
    // Writing to a String cannot fail.
    let _ = writeln!(
        markdown,
        "Whole bench: {:.0} s; load average at the end {}.",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    println!("{markdown}");
    let report = target.join("bench-report.md");
    std::fs::write(&report, &markdown).with_context(|| format!("writing {}", report.display()))?;
    eprintln!("report written to {}", report.display());
    Ok(())
}

fn header(broker: BrokerKind) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "# kafka-bridge KafkaSource benchmark\n\n\
         - date: {}\n- machine: {cores} cores (nproc), {}, load average at start {load}\n\
         - kafka-bridge commit: {commit}\n- broker: {}\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        process::cpu_model(),
        broker.describe()
    )
}

/// The 1, 5 and 15 minute load averages: how busy the shared machine was.
fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `<target>/<profile>/deps/<bench exe>` → `<target>`.
fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench executable")?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .with_context(|| format!("no target directory above {}", exe.display()))
}

/// A loopback port that was free a moment ago (the child binds it soon after).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    listener.local_addr().context("reading the free port")
}
