//! A real HTTP server standing in for an event sink (or dead-letter sink, or reply target).
//!
//! It records every request (method, path, headers, body, arrival instant, the status it chose)
//! and answers by a [`Plan`] that a test can change while the bridge runs: a fixed status or a
//! sequence of statuses then a default, a fixed or seeded-random delay, a `Retry-After` header on
//! failures, and a response body and headers. Waiting for requests is event-driven (a watch
//! channel on the request count) and always bounded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::Router;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Bodies larger than this are refused (the tests never send more).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// One request as the sink saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// 0 for the first request the sink received.
    pub index: usize,
    pub method: Method,
    /// Path and query, e.g. `/ns/name?x=1`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the request reached the handler.
    pub at: Instant,
    /// The status the sink answered with.
    pub status: u16,
}

impl Request {
    /// The header's value as a string (`None` when absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as UTF-8; panics when it is not.
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("request body is UTF-8")
    }
}

/// How long the sink waits before answering each request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delay {
    None,
    Fixed(Duration),
    /// Uniform in `min..=max`, from a generator seeded with `seed` when the plan is set, so a
    /// run is reproducible given the same arrival order.
    Random {
        min: Duration,
        max: Duration,
        seed: u64,
    },
}

/// How the sink answers. Build with [`Plan::status`] or [`Plan::sequence`] and chained setters.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Statuses for the first requests after the plan is set, in order.
    sequence: Vec<u16>,
    /// The status once `sequence` is used up.
    default: u16,
    delay: Delay,
    retry_after: Option<String>,
    body: Option<Bytes>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Plan {
    /// Always answer `status`.
    pub fn status(status: u16) -> Plan {
        Plan::sequence([], status)
    }

    /// Answer `statuses` in order to the next requests, then `then` to every later one.
    pub fn sequence(statuses: impl IntoIterator<Item = u16>, then: u16) -> Plan {
        let sequence: Vec<u16> = statuses.into_iter().collect();
        for status in sequence.iter().chain([&then]) {
            assert!(
                StatusCode::from_u16(*status).is_ok(),
                "plan status {status} is not an HTTP status"
            );
        }
        Plan {
            sequence,
            default: then,
            delay: Delay::None,
            retry_after: None,
            body: None,
            headers: Vec::new(),
        }
    }

    /// Wait `delay` before every answer.
    pub fn delay(mut self, delay: Duration) -> Plan {
        self.delay = Delay::Fixed(delay);
        self
    }

    /// Wait a seeded-random time in `min..=max` before every answer.
    pub fn random_delay(mut self, min: Duration, max: Duration, seed: u64) -> Plan {
        assert!(min <= max, "random_delay: min {min:?} > max {max:?}");
        self.delay = Delay::Random { min, max, seed };
        self
    }

    /// Add `Retry-After: value` to every non-2xx answer.
    pub fn retry_after(mut self, value: &str) -> Plan {
        self.retry_after = Some(value.to_string());
        self
    }

    /// Answer with this body (every answer).
    pub fn body(mut self, body: impl Into<Bytes>) -> Plan {
        self.body = Some(body.into());
        self
    }

    /// Add this header to every answer.
    pub fn header(mut self, name: &str, value: &str) -> Plan {
        let name = HeaderName::try_from(name).expect("valid header name");
        let value = HeaderValue::try_from(value).expect("valid header value");
        self.headers.push((name, value));
        self
    }
}

/// The plan in force and where the sink is in it.
struct Active {
    plan: Plan,
    /// Requests answered under this plan (indexes `plan.sequence`).
    served: usize,
    /// splitmix64 state for random delays.
    rng: u64,
}

impl Active {
    fn new(plan: Plan) -> Active {
        let rng = match plan.delay {
            Delay::Random { seed, .. } => seed,
            _ => 0,
        };
        Active {
            plan,
            served: 0,
            rng,
        }
    }

    /// The status and delay for the next request.
    fn next(&mut self) -> (u16, Duration) {
        let status = self
            .plan
            .sequence
            .get(self.served)
            .copied()
            .unwrap_or(self.plan.default);
        self.served += 1;
        let delay = match self.plan.delay {
            Delay::None => Duration::ZERO,
            Delay::Fixed(delay) => delay,
            Delay::Random { min, max, .. } => {
                let span = (max - min).as_micros() as u64;
                let draw = splitmix64(&mut self.rng) % (span + 1);
                min + Duration::from_micros(draw)
            }
        };
        (status, delay)
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Shared {
    active: Mutex<Active>,
    requests: Mutex<Vec<Request>>,
    /// Number of requests received; waiters watch it.
    count: watch::Sender<usize>,
}

/// A running sink on 127.0.0.1; stops when dropped.
pub struct Sink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Sink {
    /// A sink that answers 202 Accepted to everything.
    pub async fn start() -> Sink {
        Sink::with_plan(Plan::status(202)).await
    }

    pub async fn with_plan(plan: Plan) -> Sink {
        let shared = Arc::new(Shared {
            active: Mutex::new(Active::new(plan)),
            requests: Mutex::new(Vec::new()),
            count: watch::channel(0).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink on 127.0.0.1");
        let addr = listener.local_addr().expect("sink address");
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                // Either a stop request or the Sink being dropped ends the server.
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                eprintln!("sink on {addr} failed: {e}");
            }
        });
        Sink {
            addr,
            shared,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT` + `path` (which starts with `/`).
    pub fn url_for(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn count(&self) -> usize {
        *self.shared.count.borrow()
    }

    /// Replaces the plan; its status sequence starts from its beginning with the next request.
    pub fn set_plan(&self, plan: Plan) {
        *self.shared.active.lock().unwrap_or_else(|e| e.into_inner()) = Active::new(plan);
    }

    /// Waits until at least `n` requests have arrived and returns all of them; panics, listing
    /// what arrived, after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Request> {
        match self.try_wait_for(n, timeout).await {
            Ok(requests) => requests,
            Err(requests) => panic!(
                "sink {} expected {n} requests within {timeout:?}, got {}: {:#?}",
                self.addr,
                requests.len(),
                requests
                    .iter()
                    .map(|r| format!("#{} {} {} -> {}", r.index, r.method, r.path, r.status))
                    .collect::<Vec<_>>()
            ),
        }
    }

    /// Like [`Sink::wait_for`], returning `Err(what arrived)` on timeout instead of panicking
    /// (for asserting that nothing more comes).
    pub async fn try_wait_for(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Request>, Vec<Request>> {
        let mut count = self.shared.count.subscribe();
        let reached = tokio::time::timeout(timeout, count.wait_for(|c| *c >= n)).await;
        match reached {
            Ok(Ok(_)) => Ok(self.requests()),
            // The sender lives in `self.shared`, so the channel cannot close while we wait.
            Ok(Err(_)) | Err(_) => Err(self.requests()),
        }
    }

    /// Stops accepting connections and closes idle ones (in-flight answers finish), waiting at
    /// most 5 s. Useful to make the sink unreachable mid-test.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(()); // the server may have ended already
        }
        if let Some(server) = self.server.take() {
            if tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
            {
                eprintln!("sink on {} did not stop within 5s", self.addr);
            }
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: axum::extract::Request) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => body,
        Err(e) => {
            eprintln!("sink: reading request body failed: {e}");
            Bytes::new()
        }
    };
    let (status, delay, plan) = {
        let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
        let (status, delay) = active.next();
        (status, delay, active.plan.clone())
    };
    {
        let mut requests = shared.requests.lock().unwrap_or_else(|e| e.into_inner());
        let index = requests.len();
        requests.push(Request {
            index,
            method: parts.method,
            path: parts
                .uri
                .path_and_query()
                .map(|pq| pq.as_str().to_string())
                .unwrap_or_else(|| "/".to_string()),
            headers: parts.headers,
            body,
            at,
            status,
        });
        shared.count.send_replace(requests.len());
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    respond(&plan, status)
}

fn respond(plan: &Plan, status: u16) -> Response {
    let status = StatusCode::from_u16(status).expect("checked when the plan was built");
    let mut response = Response::new(axum::body::Body::from(
        plan.body.clone().unwrap_or_default(),
    ));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in &plan.headers {
        headers.append(name.clone(), value.clone());
    }
    if let Some(retry_after) = &plan.retry_after {
        if !status.is_success() {
            let value = HeaderValue::try_from(retry_after.as_str()).expect("valid Retry-After");
            headers.insert(http::header::RETRY_AFTER, value);
        }
    }
    response
}
