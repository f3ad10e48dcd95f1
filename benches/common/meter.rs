//! CPU accounting over one measured run: what the contender, the broker and the bench process
//! used, and what the rest of this shared machine took meanwhile, so a reader can tell a slow
//! contender from a busy machine.

use std::time::{Duration, Instant};

use crate::broker::Broker;
use crate::process::{self, Proc};

/// Readings at the start of a run.
pub struct Meter {
    started: Instant,
    contender: Option<Duration>,
    broker: Option<Duration>,
    bench: Option<Duration>,
    machine: Option<Duration>,
}

/// CPU used over a run. `None`: not measurable (e.g. no separate contender process).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub wall: Duration,
    pub contender: Option<Duration>,
    pub broker: Option<Duration>,
    pub bench: Option<Duration>,
    /// Cores the rest of the machine kept busy, on average.
    pub others_cores: f64,
}

impl Meter {
    /// `contender`: the process under test, when it has its own.
    pub fn start(contender: Option<&Proc>, broker: &Broker) -> Self {
        Self {
            started: Instant::now(),
            contender: contender.and_then(|p| p.cpu().ok()),
            broker: broker.cpu(),
            bench: process::self_cpu(),
            machine: process::machine_busy(),
        }
    }

    pub fn stop(&self, contender: Option<&Proc>, broker: &Broker) -> Usage {
        let wall = self.started.elapsed();
        let since = |before: Option<Duration>, after: Option<Duration>| match (before, after) {
            (Some(before), Some(after)) => Some(after.saturating_sub(before)),
            _ => None,
        };
        let contender = since(self.contender, contender.and_then(|p| p.cpu().ok()));
        let broker = since(self.broker, broker.cpu());
        let bench = since(self.bench, process::self_cpu());
        let others_cores = match since(self.machine, process::machine_busy()) {
            Some(busy) => {
                let ours = [contender, broker, bench].into_iter().flatten().sum();
                busy.saturating_sub(ours).as_secs_f64() / wall.as_secs_f64().max(1e-9)
            }
            None => f64::NAN,
        };
        Usage {
            wall,
            contender,
            broker,
            bench,
            others_cores,
        }
    }
}

/// CPU milliseconds per 10k events; NaN when not measured.
pub fn per_10k(cpu: Option<Duration>, events: u64) -> f64 {
    match cpu {
        Some(cpu) if events > 0 => cpu.as_secs_f64() * 1e3 * 1e4 / events as f64,
        _ => f64::NAN,
    }
}

/// CPU as a percentage of one core over the run; NaN when not measured.
pub fn percent_of_core(cpu: Option<Duration>, wall: Duration) -> f64 {
    match cpu {
        Some(cpu) => cpu.as_secs_f64() * 100.0 / wall.as_secs_f64().max(1e-9),
        None => f64::NAN,
    }
}
