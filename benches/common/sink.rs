//! The sink every consumer under test POSTs to: an axum server in the bench process that answers
//! 202 to anything, counts arrivals, remembers the first and last arrival, and, when a body starts
//! with a production timestamp (16 ASCII digits of Unix microseconds), records the end-to-end
//! latency. It does no other work, so the consumer is what is measured; it runs in the bench
//! process for every contender alike.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::serve::ListenerExt as _;
use axum::Router;
use tokio::sync::oneshot;

/// Latency samples kept per phase; far above what a 10 s phase at 20k events/s produces.
const MAX_SAMPLES: usize = 1_000_000;
const TIMESTAMP_DIGITS: usize = 16;
const NONE: u64 = u64::MAX;

struct Counters {
    epoch: Instant,
    count: AtomicU64,
    first_ns: AtomicU64,
    last_ns: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

pub struct Sink {
    pub url: String,
    pub addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
}

impl Sink {
    pub async fn start() -> anyhow::Result<Self> {
        let counters = Arc::new(Counters {
            epoch: Instant::now(),
            count: AtomicU64::new(0),
            first_ns: AtomicU64::new(NONE),
            last_ns: AtomicU64::new(NONE),
            latencies_us: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .context("binding the sink")?;
        let addr = listener.local_addr().context("sink address")?;
        // A fast sink answers at once: no Nagle delay on small responses.
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                eprintln!("  sink: TCP_NODELAY: {error}");
            }
        });
        let app = Router::new().fallback(receive).with_state(counters.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                // Either a send or a dropped sender means stop.
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                eprintln!("  sink stopped with an error: {error}");
            }
        });
        Ok(Self {
            url: format!("http://{addr}/"),
            addr,
            counters,
            stop: Some(stop),
        })
    }

    pub fn count(&self) -> u64 {
        self.counters.count.load(Ordering::Relaxed)
    }

    /// First and last arrival, once something has arrived.
    pub fn window(&self) -> Option<(Instant, Instant)> {
        let first = self.counters.first_ns.load(Ordering::Relaxed);
        let last = self.counters.last_ns.load(Ordering::Relaxed);
        (first != NONE && last != NONE).then(|| {
            (
                self.counters.epoch + Duration::from_nanos(first),
                self.counters.epoch + Duration::from_nanos(last),
            )
        })
    }

    /// Latency samples so far, leaving none behind for the next phase.
    pub fn take_latencies(&self) -> Vec<u64> {
        match self.counters.latencies_us.lock() {
            Ok(mut samples) => std::mem::take(&mut *samples),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may have stopped already; nothing is left to tell then.
            let _ = stop.send(());
        }
    }
}

async fn receive(State(counters): State<Arc<Counters>>, body: Bytes) -> StatusCode {
    let now_ns = u64::try_from(counters.epoch.elapsed().as_nanos()).unwrap_or(NONE - 1);
    // Only the first arrival may set `first`; `last` keeps the latest (fetch_max: arrivals on
    // different connections finish out of order).
    let _ = counters
        .first_ns
        .compare_exchange(NONE, now_ns, Ordering::Relaxed, Ordering::Relaxed);
    counters
        .last_ns
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(if last == NONE {
                now_ns
            } else {
                last.max(now_ns)
            })
        })
        .ok();
    if let Some(produced_us) = parse_timestamp(&body) {
        let latency = unix_micros().saturating_sub(produced_us);
        if let Ok(mut samples) = counters.latencies_us.lock() {
            if samples.len() < MAX_SAMPLES {
                samples.push(latency);
            }
        }
    }
    counters.count.fetch_add(1, Ordering::Relaxed);
    StatusCode::ACCEPTED
}

pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A record value that starts with the time it was produced, padded to `size` bytes.
pub fn timestamped_value(size: usize) -> Vec<u8> {
    let mut value = format!("{:0width$}", unix_micros(), width = TIMESTAMP_DIGITS).into_bytes();
    value.resize(size.max(TIMESTAMP_DIGITS), b' ');
    value
}

pub fn parse_timestamp(body: &[u8]) -> Option<u64> {
    let digits = body.get(..TIMESTAMP_DIGITS)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Checks of the pure helpers, run by `cargo test --benches` (see each bench's main).
pub fn self_check() {
    let cases: [(&[u8], Option<u64>); 4] = [
        (b"0001700000000000 padding", Some(1_700_000_000_000)),
        (b"1700000000000000", Some(1_700_000_000_000_000)),
        (b"170000000000000", None),
        (b"xxxxxxxxxxxxxxxxxxxxxxxx", None),
    ];
    for (body, want) in cases {
        assert_eq!(parse_timestamp(body), want, "{body:?}");
    }
    let value = timestamped_value(1024);
    assert_eq!(value.len(), 1024);
    let stamped = parse_timestamp(&value).unwrap_or(0);
    assert!(unix_micros().saturating_sub(stamped) < 1_000_000);
}
