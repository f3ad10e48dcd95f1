//! A sink that records when each event arrived and when its answer was sent, answering 202
//! after a delay chosen per partition. The shared `common::Sink` records arrivals only; the drain tests
//! must tell an answered request from one that was still waiting when the bridge went away.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Router;
use tokio::sync::watch;

/// One event as this sink saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub partition: i32,
    pub offset: i64,
    pub arrived: Instant,
    /// When the handler finished waiting and handed back its 202; `None` while waiting or
    /// when the connection went away first (the handler is then dropped).
    pub answered: Option<Instant>,
}

struct Shared {
    default_delay: Mutex<Duration>,
    partition_delay: Mutex<HashMap<i32, Duration>>,
    seen: Mutex<Vec<Seen>>,
    /// Bumped on every arrival and answer; waiters watch it.
    changes: watch::Sender<u64>,
}

pub struct AckSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl AckSink {
    pub async fn start(delay: Duration) -> AckSink {
        let shared = Arc::new(Shared {
            default_delay: Mutex::new(delay),
            partition_delay: Mutex::new(HashMap::new()),
            seen: Mutex::new(Vec::new()),
            changes: watch::channel(0).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind ack sink");
        let addr = listener.local_addr().expect("ack sink address");
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("ack sink on {addr} failed: {e}");
            }
        });
        AckSink {
            addr,
            shared,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Delay for every partition without its own.
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.default_delay.lock().unwrap() = delay;
        self.shared.partition_delay.lock().unwrap().clear();
    }

    pub fn set_partition_delay(&self, partition: i32, delay: Duration) {
        self.shared
            .partition_delay
            .lock()
            .unwrap()
            .insert(partition, delay);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was seen; panics with `what` and the log after
    /// `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Seen]) -> bool,
    ) -> Vec<Seen> {
        let mut changes = self.shared.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.seen();
            if done(&seen) {
                return seen;
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                panic!("ack sink: {what} not within {timeout:?}; seen: {seen:#?}");
            }
        }
    }
}

impl Drop for AckSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(State(shared): State<Arc<Shared>>, headers: http::HeaderMap) -> http::StatusCode {
    let header = |name: &str| -> i64 {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    let (partition, offset) = (
        header("ce-knativekafkapartition") as i32,
        header("ce-knativekafkaoffset"),
    );
    let delay = shared
        .partition_delay
        .lock()
        .unwrap()
        .get(&partition)
        .copied()
        .unwrap_or(*shared.default_delay.lock().unwrap());
    let index = {
        let mut seen = shared.seen.lock().unwrap();
        seen.push(Seen {
            partition,
            offset,
            arrived: Instant::now(),
            answered: None,
        });
        seen.len() - 1
    };
    shared.changes.send_modify(|n| *n += 1);
    tokio::time::sleep(delay).await;
    shared.seen.lock().unwrap()[index].answered = Some(Instant::now());
    shared.changes.send_modify(|n| *n += 1);
    http::StatusCode::ACCEPTED
}

/// Offsets of one partition in arrival order.
pub fn offsets_of(seen: &[Seen], partition: i32) -> Vec<i64> {
    seen.iter()
        .filter(|s| s.partition == partition)
        .map(|s| s.offset)
        .collect()
}
