//! A real HTTP sink on 127.0.0.1 for the delivery tests: it answers with a programmed sequence of
//! replies (status, headers, body, delay) and records every request it receives.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio_util::sync::CancellationToken;
use url::Url;

/// One programmed answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    delay: Duration,
}

impl Reply {
    pub fn status(code: u16) -> Self {
        Self {
            status: StatusCode::from_u16(code).unwrap(),
            headers: Vec::new(),
            body: Bytes::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        ));
        self
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Waits this long before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as the sink saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The client's address: the same one on two requests means the connection was reused.
    pub peer: SocketAddr,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

#[derive(Debug)]
struct Sink {
    /// Replies still to give; the last one is repeated forever.
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
}

/// The server runs until dropped.
pub struct TestServer {
    pub url: Url,
    sink: Arc<Sink>,
    stop: CancellationToken,
}

impl TestServer {
    /// Answers with `replies` in order, then repeats the last one; no replies means 202 always.
    pub async fn start(replies: impl IntoIterator<Item = Reply>) -> Self {
        let mut script: VecDeque<Reply> = replies.into_iter().collect();
        if script.is_empty() {
            script.push_back(Reply::status(202));
        }
        let sink = Arc::new(Sink {
            script: Mutex::new(script),
            requests: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/sink", listener.local_addr().unwrap())).unwrap();
        let router = axum::Router::new()
            .fallback(answer)
            .with_state(sink.clone());
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            axum::serve(listener, service)
                .with_graceful_shutdown(shutdown)
                .await
        });
        Self { url, sink, stop }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.sink.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.sink.requests.lock().unwrap().len()
    }

    /// Replaces whatever is left of the script: from now on, always `reply`.
    pub fn answer_from_now(&self, reply: Reply) {
        *self.sink.script.lock().unwrap() = VecDeque::from([reply]);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn answer(
    State(sink): State<Arc<Sink>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    sink.requests.lock().unwrap().push(Recorded {
        peer,
        headers,
        body,
        at: Instant::now(),
    });
    let reply = {
        let mut script = sink.script.lock().unwrap();
        if script.len() > 1 {
            script.pop_front().unwrap()
        } else {
            script.front().cloned().unwrap()
        }
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = axum::response::Response::new(axum::body::Body::from(reply.body));
    *response.status_mut() = reply.status;
    response.headers_mut().extend(reply.headers);
    response
}

/// A URL nothing listens on: the port was just bound and released.
pub fn refused_url() -> Url {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap()
}

/// Gaps between consecutive requests, to check the waits between attempts.
pub fn gaps(requests: &[Recorded]) -> Vec<Duration> {
    requests
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect()
}
