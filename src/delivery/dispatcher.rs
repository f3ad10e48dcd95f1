//! Delivers one encoded event to one subscriber with Knative's semantics: retries with backoff,
//! a per-attempt timeout, then the dead-letter sink. Where Knative gives up and commits, this
//! goes further: `Retry-After` is honoured (bounded by the policy), and an event whose dead-letter
//! sink also fails is never dropped; the whole delivery is retried in rounds, visibly through
//! [`DeliveryObserver::stalled`], until it settles or is cancelled.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::client::{Client, Clients};
use super::dead_letter::dead_letter_message;
use super::observer::{DeliveryObserver, Leg};
use super::policy::{DeliveryPolicy, Target};
use super::response::{classify, Failure, Response, Verdict};
use super::DeliveryError;
use crate::event::HttpMessage;

/// Response bodies are read up to this size; the rest is discarded (see [`Response::truncated`]),
/// so one misbehaving sink cannot exhaust memory.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Bounds on the wait between rounds of a stalled delivery: at least this much even with a zero
/// backoff delay (no busy loop against a dead sink), at most this much so recovery is noticed soon.
const ROUND_WAIT_MIN: Duration = Duration::from_millis(100);
const ROUND_WAIT_MAX: Duration = Duration::from_secs(30);

const KN_NAMESPACE: HeaderName = HeaderName::from_static("kn-namespace");
const PREFER: HeaderName = HeaderName::from_static("prefer");
const PREFER_REPLY: HeaderValue = HeaderValue::from_static("reply");

/// Where and how one event is delivered.
#[derive(Debug, Clone)]
pub struct Subscriber {
    target: Target,
    policy: DeliveryPolicy,
    /// The target's and the dead-letter sink's URLs as request URIs, parsed once here rather
    /// than per request.
    target_uri: Uri,
    dead_letter_uri: Option<Uri>,
    /// Sent as `Kn-Namespace`; kept as a header value so no request re-validates it.
    namespace: HeaderValue,
}

impl Subscriber {
    pub fn new(
        target: Target,
        policy: DeliveryPolicy,
        namespace: &str,
    ) -> Result<Self, DeliveryError> {
        let namespace = HeaderValue::from_str(namespace)
            .map_err(|_| DeliveryError::InvalidNamespace(namespace.to_owned()))?;
        let target_uri = request_uri(&target.url)?;
        let dead_letter_uri = policy
            .dead_letter
            .as_ref()
            .map(|t| request_uri(&t.url))
            .transpose()?;
        Ok(Self {
            target,
            policy,
            target_uri,
            dead_letter_uri,
            namespace,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn policy(&self) -> &DeliveryPolicy {
        &self.policy
    }

    /// The dead-letter sink, with its request URI.
    fn dead_letter(&self) -> Option<(&Target, &Uri)> {
        self.policy
            .dead_letter
            .as_ref()
            .zip(self.dead_letter_uri.as_ref())
    }

    pub fn namespace(&self) -> &str {
        // Built from a &str in `new`, so always UTF-8.
        self.namespace.to_str().unwrap_or_default()
    }
}

/// `url` as a request URI. The fragment is dropped: it is never sent.
fn request_uri(url: &Url) -> Result<Uri, DeliveryError> {
    let without_fragment = match url.fragment() {
        Some(_) => &url[..url::Position::AfterQuery],
        None => url.as_str(),
    };
    Uri::try_from(without_fragment).map_err(|_| DeliveryError::InvalidUrl(url.clone()))
}

/// How a delivery settled.
#[derive(Debug)]
pub enum Outcome {
    /// The subscriber answered 2xx. Its response may carry a reply event.
    Delivered { response: Response },
    /// The subscriber failed and the dead-letter sink accepted the event. `status` is the
    /// subscriber's last failing status, `None` for a transport failure.
    DeadLettered { status: Option<StatusCode> },
    /// The subscriber failed and there is no dead-letter sink: the event is lost (Knative semantics).
    Dropped { reason: DropReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A status that is never retried (400, 401, 403, 3xx, ...).
    Rejected { status: StatusCode },
    /// Every attempt failed; `status` is the last one's, `None` for a transport failure.
    RetriesExhausted { status: Option<StatusCode> },
}

/// The result of [`Dispatcher::deliver`].
#[derive(Debug)]
pub struct Delivery {
    pub outcome: Outcome,
    /// Attempts made after a failed one, over both legs and every round.
    pub retries: u32,
    /// Rounds that failed at the dead-letter sink too before this one settled.
    pub stalled_rounds: u32,
}

/// The delivery was cancelled before it settled: the event must not be considered handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("delivery cancelled")]
pub struct Cancelled;

/// Sends events to subscribers. Cheap to clone: clones share the connection pools.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    clients: Arc<Clients>,
}

impl Dispatcher {
    /// A dispatcher with empty pools; TLS is set up on the first `https` target.
    pub fn new() -> Self {
        Self {
            clients: Arc::new(Clients::new()),
        }
    }

    /// Builds (and caches) the client for `target` now, so a bad `CACerts` is reported when the
    /// configuration is loaded rather than on the first event.
    pub fn check_target(&self, target: &Target) -> Result<(), DeliveryError> {
        self.clients.for_target(target).map(drop)
    }

    /// Delivers `message` to `subscriber`, retrying and dead-lettering per its policy, until the
    /// delivery settles or `cancel` fires. Any 2xx response is accepted as it is.
    pub async fn deliver(
        &self,
        subscriber: &Subscriber,
        message: &HttpMessage,
        cancel: &CancellationToken,
        observer: &dyn DeliveryObserver,
    ) -> Result<Delivery, Cancelled> {
        self.deliver_accepting(subscriber, message, cancel, observer, &AcceptAll)
            .await
    }

    /// Like [`Dispatcher::deliver`], with `accept` judging each 2xx response of the subscriber
    /// (e.g. forwarding its reply): when it fails, the attempt counts as failed and is retried,
    /// then dead-lettered, like any other failure.
    pub async fn deliver_accepting(
        &self,
        subscriber: &Subscriber,
        message: &HttpMessage,
        cancel: &CancellationToken,
        observer: &dyn DeliveryObserver,
        accept: &dyn AcceptResponse,
    ) -> Result<Delivery, Cancelled> {
        let mut run = Run {
            clients: &self.clients,
            subscriber,
            cancel,
            observer,
            accept,
            retries: 0,
        };
        let mut stalled_rounds = 0;
        // Ends only by settling or by cancellation: with a dead-letter sink configured an event is
        // never given up, and each round waits at least ROUND_WAIT_MIN.
        loop {
            let failure = match run
                .send(
                    Leg::Subscriber,
                    (&subscriber.target, &subscriber.target_uri),
                    message,
                )
                .await?
            {
                Ok(response) => {
                    return Ok(run.settle(Outcome::Delivered { response }, stalled_rounds))
                }
                Err(failure) => failure,
            };
            let status = failure.status();
            let Some((dead_letter, dead_letter_uri)) = subscriber.dead_letter() else {
                let reason = match (failure.verdict(), status) {
                    (Verdict::Reject, Some(status)) => DropReason::Rejected { status },
                    _ => DropReason::RetriesExhausted { status },
                };
                // Debug, not warn: a sink rejecting every event would flood the log at
                // event rate; the caller counts drops from the outcome.
                tracing::debug!(subscriber = %subscriber.target.url, ?reason, "event dropped: no dead-letter sink");
                return Ok(run.settle(Outcome::Dropped { reason }, stalled_rounds));
            };
            let letter = dead_letter_message(message, &subscriber.target.url, &failure);
            drop(failure);
            match run
                .send(Leg::DeadLetter, (dead_letter, dead_letter_uri), &letter)
                .await?
            {
                Ok(_) => return Ok(run.settle(Outcome::DeadLettered { status }, stalled_rounds)),
                Err(dls_failure) => {
                    stalled_rounds = stalled_rounds.saturating_add(1);
                    let wait = round_wait(&subscriber.policy, stalled_rounds);
                    tracing::warn!(
                        subscriber = %subscriber.target.url,
                        dead_letter = %dead_letter.url,
                        status = ?dls_failure.status(),
                        rounds = stalled_rounds,
                        ?wait,
                        "dead-letter sink failed too; keeping the event and retrying the delivery"
                    );
                    observer.stalled(stalled_rounds);
                    run.sleep(wait).await?;
                }
            }
        }
    }
}

impl Default for Dispatcher {
    fn default() -> Self {
        Self::new()
    }
}

/// The wait before the next round of a stalled delivery: the policy's backoff, within bounds.
fn round_wait(policy: &DeliveryPolicy, round: u32) -> Duration {
    policy.backoff(round).clamp(ROUND_WAIT_MIN, ROUND_WAIT_MAX)
}

/// Judges a subscriber's 2xx response before the delivery counts as done.
pub trait AcceptResponse: Send + Sync {
    fn accept<'a>(
        &'a self,
        response: &'a Response,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), Failure>>;
}

/// Accepts every 2xx response (a source's sink: replies are discarded).
pub struct AcceptAll;

impl AcceptResponse for AcceptAll {
    fn accept<'a>(
        &'a self,
        _response: &'a Response,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(Accepted)
    }
}

/// An answer that is ready at once. A unit struct, so boxing it allocates nothing: this runs for
/// every event a source delivers.
struct Accepted;

impl Future for Accepted {
    type Output = Result<(), Failure>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(()))
    }
}

/// One delivery in progress.
struct Run<'a> {
    clients: &'a Clients,
    subscriber: &'a Subscriber,
    cancel: &'a CancellationToken,
    observer: &'a dyn DeliveryObserver,
    accept: &'a dyn AcceptResponse,
    retries: u32,
}

impl Run<'_> {
    fn settle(&self, outcome: Outcome, stalled_rounds: u32) -> Delivery {
        Delivery {
            outcome,
            retries: self.retries,
            stalled_rounds,
        }
    }

    /// Sends to one target with the policy's retries: `retry: N` means up to N+1 attempts, fewer
    /// when a status is not worth retrying.
    async fn send(
        &mut self,
        leg: Leg,
        (target, uri): (&Target, &Uri),
        message: &HttpMessage,
    ) -> Result<Result<Response, Failure>, Cancelled> {
        let policy = &self.subscriber.policy;
        let client = match self.clients.for_target(target) {
            Ok(client) => client,
            // Retrying cannot fix a bad CA bundle, so no attempts are made; the failure still goes
            // to the dead-letter sink (or drops the event) like any unreachable target.
            Err(err) => {
                return Ok(Err(Failure::Transport {
                    timeout: false,
                    message: error_chain(&err),
                }))
            }
        };
        let mut retry = 0;
        // Bounded: `retry` grows each pass and the loop ends at policy.retry.
        loop {
            let started = Instant::now();
            let request = attempt(
                &client,
                uri,
                message,
                &self.subscriber.namespace,
                policy.timeout,
            );
            let result = self.cancellable(request).await?;
            let failure = match result {
                Ok(response) if classify(response.status) == Verdict::Success => {
                    self.observer
                        .attempt(leg, Some(response.status), started.elapsed());
                    if leg == Leg::DeadLetter {
                        return Ok(Ok(response));
                    }
                    match self
                        .cancellable(self.accept.accept(&response, self.cancel))
                        .await?
                    {
                        Ok(()) => return Ok(Ok(response)),
                        Err(failure) => failure,
                    }
                }
                Ok(response) => Failure::Status(response),
                Err(failure) => failure,
            };
            self.observer
                .attempt(leg, failure.status(), started.elapsed());
            if failure.verdict() == Verdict::Reject || retry >= policy.retry {
                return Ok(Err(failure));
            }
            retry += 1;
            let wait = policy.wait_before(retry, failure.retry_after(SystemTime::now()));
            tracing::debug!(url = %target.url, ?leg, status = ?failure.status(), retry, ?wait, "retrying");
            drop(failure);
            self.retries += 1;
            self.observer.retry(leg);
            self.sleep(wait).await?;
        }
    }

    async fn cancellable<T>(&self, work: impl Future<Output = T>) -> Result<T, Cancelled> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(Cancelled),
            out = work => Ok(out),
        }
    }

    async fn sleep(&self, wait: Duration) -> Result<(), Cancelled> {
        self.cancellable(tokio::time::sleep(wait)).await
    }
}

/// One POST of `message` to `uri`, with `timeout` covering the answer and its body.
async fn attempt(
    client: &Client,
    uri: &Uri,
    message: &HttpMessage,
    namespace: &HeaderValue,
    timeout: Option<Duration>,
) -> Result<Response, Failure> {
    let mut request = http::Request::new(Full::new(message.body.clone()));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri.clone();
    // Sized up front so adding our two headers and the client's `host` never regrows the map;
    // names and values are reference-counted, so copying them does not copy their bytes.
    let headers = request.headers_mut();
    headers.reserve(message.headers.len() + 3);
    for (name, value) in &message.headers {
        headers.append(name.clone(), value.clone());
    }
    headers.insert(PREFER, PREFER_REPLY);
    headers.insert(KN_NAMESPACE, namespace.clone());
    let deadline = timeout.map(|t| Instant::now() + t);
    let response = within(deadline, client.request(request))
        .await
        .ok_or_else(|| Failure::Transport {
            timeout: true,
            message: "timed out waiting for the response".into(),
        })?
        .map_err(|err| Failure::Transport {
            timeout: false,
            message: error_chain(&err),
        })?;
    Ok(read_response(response, deadline).await)
}

/// `work`'s output, or `None` when `deadline` passed first.
async fn within<T>(deadline: Option<Instant>, work: impl Future<Output = T>) -> Option<T> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), work).await.ok(),
        None => Some(work.await),
    }
}

/// Reads the response, its body up to [`BODY_LIMIT`]. A body that fails midway (reset, timeout)
/// keeps what arrived and is marked truncated: the status already decided the outcome, and
/// retrying a 2xx would deliver the event twice.
async fn read_response(
    response: http::Response<hyper::body::Incoming>,
    deadline: Option<Instant>,
) -> Response {
    let (parts, mut incoming) = response.into_parts();
    let status = parts.status;
    let mut body = Body::default();
    let mut truncated = false;
    // Bounded: each pass adds a frame until the limit, or ends.
    loop {
        let frame = match within(deadline, incoming.frame()).await {
            Some(Some(Ok(frame))) => frame,
            Some(None) => break,
            Some(Some(Err(err))) => {
                tracing::debug!(%status, error = %error_chain(&err), "response body cut short");
                truncated = true;
                break;
            }
            None => {
                tracing::debug!(%status, "response body timed out");
                truncated = true;
                break;
            }
        };
        // Trailers carry no body bytes.
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if body.len() + chunk.len() > BODY_LIMIT {
            body.push(chunk.slice(..BODY_LIMIT - body.len()));
            truncated = true;
            break;
        }
        body.push(chunk);
    }
    Response {
        status,
        headers: parts.headers,
        body: body.into_bytes(),
        truncated,
    }
}

/// A body that costs no copy when it arrives in one chunk, the common case for small responses.
#[derive(Default)]
enum Body {
    #[default]
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::One(b) => b.len(),
            Body::Many(b) => b.len(),
        }
    }

    fn push(&mut self, chunk: Bytes) {
        *self = match std::mem::take(self) {
            Body::Empty => Body::One(chunk),
            Body::One(first) => {
                let mut all = BytesMut::with_capacity(first.len() + chunk.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&chunk);
                Body::Many(all)
            }
            Body::Many(mut all) => {
                all.extend_from_slice(&chunk);
                Body::Many(all)
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::One(b) => b,
            Body::Many(b) => b.freeze(),
        }
    }
}

/// An error with its causes, `a: b: c`: the client's own message alone ("client error
/// (Connect)") hides the useful part ("Connection refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    // Bounded by the depth of the cause chain, which is finite; capped anyway.
    for _ in 0..16 {
        let Some(cause) = source else { break };
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::policy::BackoffPolicy;

    #[test]
    fn round_wait_is_bounded() {
        let policy = |ms| DeliveryPolicy {
            backoff_policy: BackoffPolicy::Exponential,
            backoff_delay: Duration::from_millis(ms),
            ..DeliveryPolicy::source_default()
        };
        assert_eq!(round_wait(&policy(0), 1), ROUND_WAIT_MIN);
        assert_eq!(round_wait(&policy(300), 1), Duration::from_millis(600));
        assert_eq!(round_wait(&policy(300), 40), ROUND_WAIT_MAX);
    }

    #[test]
    fn body_joins_chunks() {
        let mut body = Body::default();
        assert_eq!(body.len(), 0);
        body.push(Bytes::from_static(b"ab"));
        assert!(matches!(body, Body::One(_)));
        body.push(Bytes::from_static(b"cd"));
        body.push(Bytes::from_static(b"e"));
        assert_eq!(body.len(), 5);
        assert_eq!(body.into_bytes(), Bytes::from_static(b"abcde"));
    }

    #[test]
    fn request_uris_keep_path_and_query_and_drop_the_fragment() {
        let cases = [
            (
                "http://sink.ns.svc.cluster.local",
                "http://sink.ns.svc.cluster.local/",
            ),
            (
                "http://127.0.0.1:8080/a/b?x=1&y=2",
                "http://127.0.0.1:8080/a/b?x=1&y=2",
            ),
            ("https://sink/path#fragment", "https://sink/path"),
            ("http://sink/p?q=1#f", "http://sink/p?q=1"),
            ("http://[::1]:9/", "http://[::1]:9/"),
        ];
        for (url, want) in cases {
            let uri = request_uri(&Url::parse(url).unwrap()).unwrap();
            assert_eq!(uri.to_string(), want, "{url}");
        }
    }

    #[test]
    fn namespace_must_be_a_header_value() {
        let target = Target::new(Url::parse("http://a/").unwrap());
        let ok =
            Subscriber::new(target.clone(), DeliveryPolicy::source_default(), "team-a").unwrap();
        assert_eq!(ok.namespace(), "team-a");
        assert!(Subscriber::new(target, DeliveryPolicy::source_default(), "bad\nname").is_err());
    }
}
