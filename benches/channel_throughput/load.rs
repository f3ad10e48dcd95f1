//! The load generator: N clients, each on its own keep-alive connection, sending the same request
//! in a closed loop (the next one as soon as the answer is in) for a warm-up and then a measured
//! window. Only requests sent and answered within the window count, so the rate is a steady
//! state; the warm-up opens connections and fills the ingress's producer pipeline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinSet;

use crate::http1::Connection;
use crate::report::percentile;

/// Longest wait for one answer before the client counts an error and reconnects.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Latency samples kept per client; far above what one client answers in a window.
const MAX_SAMPLES_PER_CLIENT: usize = 2_000_000;

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub clients: usize,
    pub warm_up: Duration,
    pub window: Duration,
}

/// What the clients saw over the measured window (and the whole run, for counting deliveries).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// 202s answered within the window.
    pub accepted: u64,
    /// 202s over the whole run, warm-up included: what the channel must deliver.
    pub accepted_total: u64,
    /// Other statuses and failed exchanges within the whole run.
    pub errors: u64,
    pub window: Duration,
    /// Latency of each request within the window, µs, sorted.
    pub latencies_us: Vec<u32>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.accepted as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// A latency percentile in ms; NaN when nothing was answered.
    pub fn latency_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let sorted: Vec<u64> = self.latencies_us.iter().map(|us| u64::from(*us)).collect();
        percentile(&sorted, p) as f64 / 1e3
    }
}

#[derive(Default)]
struct ClientOutcome {
    accepted: u64,
    accepted_total: u64,
    errors: u64,
    latencies_us: Vec<u32>,
    first_error: Option<String>,
}

/// Runs `load` against `addr` with `request` (a whole HTTP/1.1 request, keep-alive).
pub async fn run(addr: SocketAddr, request: Arc<[u8]>, load: Load) -> anyhow::Result<Outcome> {
    // Connect everyone first, so the window does not time the handshakes.
    let mut connections = Vec::with_capacity(load.clients);
    for _ in 0..load.clients {
        connections.push(Connection::open(addr).await?);
    }
    let start = Instant::now();
    let window_start = start + load.warm_up;
    let end = window_start + load.window;
    let mut clients = JoinSet::new();
    for connection in connections {
        clients.spawn(client(
            addr,
            connection,
            Arc::clone(&request),
            window_start,
            end,
        ));
    }
    let mut outcome = Outcome {
        window: load.window,
        ..Outcome::default()
    };
    let mut first_error = None;
    while let Some(done) = clients.join_next().await {
        let done = done.context("a client task failed")?;
        outcome.accepted += done.accepted;
        outcome.accepted_total += done.accepted_total;
        outcome.errors += done.errors;
        outcome.latencies_us.extend(done.latencies_us);
        first_error = first_error.or(done.first_error);
    }
    if let Some(error) = first_error {
        eprintln!(
            "  {} error(s) at {} clients, the first: {error}",
            outcome.errors, load.clients
        );
    }
    outcome.latencies_us.sort_unstable();
    Ok(outcome)
}

async fn client(
    addr: SocketAddr,
    mut connection: Connection,
    request: Arc<[u8]>,
    window_start: Instant,
    end: Instant,
) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let result = connection.send(&request, ANSWER_TIMEOUT).await;
        let answered = Instant::now();
        let in_window = sent >= window_start && answered <= end;
        match result {
            Ok(202) => {
                outcome.accepted_total += 1;
                if in_window {
                    outcome.accepted += 1;
                    if outcome.latencies_us.len() < MAX_SAMPLES_PER_CLIENT {
                        let us = (answered - sent).as_micros();
                        outcome
                            .latencies_us
                            .push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                }
            }
            Ok(status) => {
                outcome.errors += 1;
                outcome
                    .first_error
                    .get_or_insert_with(|| format!("status {status}"));
            }
            Err(error) => {
                outcome.errors += 1;
                outcome
                    .first_error
                    .get_or_insert_with(|| format!("{error:#}"));
                connection.closed = true;
            }
        }
        if connection.closed {
            match Connection::open(addr).await {
                Ok(fresh) => connection = fresh,
                Err(error) => {
                    outcome
                        .first_error
                        .get_or_insert_with(|| format!("{error:#}"));
                    break;
                }
            }
        }
    }
    outcome
}
