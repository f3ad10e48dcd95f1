//! Delivery against real HTTP sinks on 127.0.0.1: retries, waits, timeouts, dead letters, stalls
//! and cancellation, observed from both the sink's and the caller's side.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use tokio_util::sync::CancellationToken;
use url::Url;

use super::test_server::{gaps, refused_url, Reply, TestServer};
use super::*;
use crate::event::HttpMessage;

/// No test delivery may take longer than this.
const TEST_BOUND: Duration = Duration::from_secs(15);

fn message() -> HttpMessage {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "partition:0/offset:42"),
        ("ce-source", "/apis/v1/namespaces/ns/kafkasources/src#topic"),
        ("ce-type", "dev.knative.kafka.event"),
        ("ce-key", "k%C3%A9"),
        ("content-type", "application/json"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    HttpMessage {
        headers,
        body: Bytes::from_static(b"{\"hello\":\"world\"}"),
    }
}

fn policy(retry: u32, backoff_policy: BackoffPolicy, backoff_ms: u64) -> DeliveryPolicy {
    DeliveryPolicy {
        retry,
        backoff_policy,
        backoff_delay: Duration::from_millis(backoff_ms),
        timeout: Some(Duration::from_secs(5)),
        retry_after_max: None,
        dead_letter: None,
    }
}

fn subscriber(url: &Url, policy: DeliveryPolicy) -> Subscriber {
    Subscriber::new(Target::new(url.clone()), policy, "team-a").unwrap()
}

/// What the caller's observer saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Attempt(Leg, Option<u16>),
    Retry(Leg),
    Stalled(u32),
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>);

impl Recorder {
    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

impl DeliveryObserver for Recorder {
    fn attempt(&self, leg: Leg, status: Option<StatusCode>, latency: Duration) {
        assert!(latency < TEST_BOUND);
        self.0
            .lock()
            .unwrap()
            .push(Seen::Attempt(leg, status.map(|s| s.as_u16())));
    }
    fn retry(&self, leg: Leg) {
        self.0.lock().unwrap().push(Seen::Retry(leg));
    }
    fn stalled(&self, rounds: u32) {
        self.0.lock().unwrap().push(Seen::Stalled(rounds));
    }
}

/// Delivers with a dispatcher of its own (fresh connection pools); [`deliver_with`] shares one.
async fn deliver_observed(subscriber: &Subscriber, observer: &Recorder) -> Delivery {
    deliver_with(&Dispatcher::new(), subscriber, observer).await
}

async fn deliver_with(
    dispatcher: &Dispatcher,
    subscriber: &Subscriber,
    observer: &Recorder,
) -> Delivery {
    let cancel = CancellationToken::new();
    let message = message();
    let delivery = dispatcher.deliver(subscriber, &message, &cancel, observer);
    tokio::time::timeout(TEST_BOUND, delivery)
        .await
        .expect("delivery took too long")
        .expect("not cancelled")
}

async fn deliver(subscriber: &Subscriber) -> Delivery {
    deliver_observed(subscriber, &Recorder::default()).await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn delivers_the_message_with_prefer_and_namespace_headers() {
    let sink = TestServer::start([Reply::status(200).header("x-answer", "yes").body("ok")]).await;
    let observer = Recorder::default();
    let delivery = deliver_observed(
        &subscriber(&sink.url, policy(3, BackoffPolicy::Linear, 1)),
        &observer,
    )
    .await;

    let Outcome::Delivered { response } = delivery.outcome else {
        panic!("{delivery:?}")
    };
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(header(&response.headers, "x-answer"), Some("yes"));
    assert_eq!(response.body, Bytes::from_static(b"ok"));
    assert!(!response.truncated);
    assert_eq!((delivery.retries, delivery.stalled_rounds), (0, 0));
    assert_eq!(observer.seen(), [Seen::Attempt(Leg::Subscriber, Some(200))]);

    let requests = sink.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    for (name, value) in &message().headers {
        assert_eq!(sent.headers.get(name), Some(value), "{name}");
    }
    assert_eq!(header(&sent.headers, "prefer"), Some("reply"));
    assert_eq!(header(&sent.headers, "kn-namespace"), Some("team-a"));
    assert_eq!(sent.body, message().body);
}

#[tokio::test]
async fn retry_n_means_n_plus_one_attempts_then_drop() {
    let sink = TestServer::start([Reply::status(500)]).await;
    let observer = Recorder::default();
    let delivery = deliver_observed(
        &subscriber(&sink.url, policy(3, BackoffPolicy::Linear, 1)),
        &observer,
    )
    .await;

    let status = Some(StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        matches!(delivery.outcome, Outcome::Dropped { reason: DropReason::RetriesExhausted { status: s } } if s == status)
    );
    assert_eq!(sink.count(), 4);
    assert_eq!(delivery.retries, 3);
    let attempt = Seen::Attempt(Leg::Subscriber, Some(500));
    let retry = Seen::Retry(Leg::Subscriber);
    assert_eq!(
        observer.seen(),
        [&attempt, &retry, &attempt, &retry, &attempt, &retry, &attempt].map(Clone::clone)
    );
}

#[tokio::test]
async fn never_retries_a_rejecting_status() {
    for code in [400, 401, 403, 413, 302] {
        let sink =
            TestServer::start([Reply::status(code).header("location", "http://127.0.0.1:1/")])
                .await;
        let delivery = deliver(&subscriber(&sink.url, policy(5, BackoffPolicy::Linear, 1))).await;
        let want = StatusCode::from_u16(code).unwrap();
        assert!(
            matches!(delivery.outcome, Outcome::Dropped { reason: DropReason::Rejected { status } } if status == want),
            "{code}: {delivery:?}"
        );
        assert_eq!((sink.count(), delivery.retries), (1, 0), "{code}");
    }
}

#[tokio::test]
async fn retries_retryable_statuses_until_success() {
    for code in [404, 408, 409, 429, 500, 502, 503, 504] {
        let sink =
            TestServer::start([Reply::status(code), Reply::status(code), Reply::status(202)]).await;
        let delivery = deliver(&subscriber(&sink.url, policy(5, BackoffPolicy::Linear, 1))).await;
        assert!(
            matches!(delivery.outcome, Outcome::Delivered { ref response } if response.status == 202),
            "{code}"
        );
        assert_eq!((sink.count(), delivery.retries), (3, 2), "{code}");
    }
}

#[tokio::test]
async fn retries_connection_refused() {
    let url = refused_url();
    let observer = Recorder::default();
    let delivery = deliver_observed(
        &subscriber(&url, policy(2, BackoffPolicy::Linear, 1)),
        &observer,
    )
    .await;
    assert!(matches!(
        delivery.outcome,
        Outcome::Dropped {
            reason: DropReason::RetriesExhausted { status: None }
        }
    ));
    assert_eq!(delivery.retries, 2);
    let attempts = observer
        .seen()
        .iter()
        .filter(|s| **s == Seen::Attempt(Leg::Subscriber, None))
        .count();
    assert_eq!(attempts, 3);
}

/// Asserts each gap between requests is at least the expected wait and not absurdly longer.
fn assert_waits(sink: &TestServer, want_ms: &[u64]) {
    let gaps = gaps(&sink.requests());
    assert_eq!(gaps.len(), want_ms.len(), "{gaps:?}");
    for (gap, want) in gaps.iter().zip(want_ms) {
        let want = Duration::from_millis(*want);
        assert!(
            *gap >= want && *gap < want + Duration::from_millis(1500),
            "gap {gap:?}, want {want:?}"
        );
    }
}

#[tokio::test]
async fn linear_backoff_waits_delay_times_n() {
    let sink = TestServer::start([Reply::status(503)]).await;
    deliver(&subscriber(&sink.url, policy(3, BackoffPolicy::Linear, 40))).await;
    assert_waits(&sink, &[40, 80, 120]);
}

#[tokio::test]
async fn exponential_backoff_waits_delay_times_two_to_the_n() {
    let sink = TestServer::start([Reply::status(503)]).await;
    deliver(&subscriber(
        &sink.url,
        policy(3, BackoffPolicy::Exponential, 20),
    ))
    .await;
    assert_waits(&sink, &[40, 80, 160]);
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let sink = TestServer::start([
        Reply::status(429).header("retry-after", "1"),
        Reply::status(202),
    ])
    .await;
    let delivery = deliver(&subscriber(&sink.url, policy(2, BackoffPolicy::Linear, 1))).await;
    assert!(matches!(delivery.outcome, Outcome::Delivered { .. }));
    assert_waits(&sink, &[1000]);
}

#[tokio::test]
async fn bounds_retry_after_by_retry_after_max() {
    let sink = TestServer::start([
        Reply::status(503).header("retry-after", "30"),
        Reply::status(202),
    ])
    .await;
    let mut p = policy(2, BackoffPolicy::Linear, 1);
    p.retry_after_max = Some(Duration::from_millis(150));
    let delivery = deliver(&subscriber(&sink.url, p)).await;
    assert!(matches!(delivery.outcome, Outcome::Delivered { .. }));
    assert_waits(&sink, &[150]);
}

#[tokio::test]
async fn ignores_retry_after_on_other_statuses() {
    let sink = TestServer::start([
        Reply::status(500).header("retry-after", "30"),
        Reply::status(202),
    ])
    .await;
    let delivery = deliver(&subscriber(&sink.url, policy(2, BackoffPolicy::Linear, 1))).await;
    assert!(matches!(delivery.outcome, Outcome::Delivered { .. }));
    assert_waits(&sink, &[1]);
}

#[tokio::test]
async fn times_out_each_attempt() {
    let sink = TestServer::start([Reply::status(202).delay(Duration::from_secs(10))]).await;
    let mut p = policy(1, BackoffPolicy::Linear, 1);
    p.timeout = Some(Duration::from_millis(100));
    let started = Instant::now();
    let delivery = deliver(&subscriber(&sink.url, p)).await;
    assert!(matches!(
        delivery.outcome,
        Outcome::Dropped {
            reason: DropReason::RetriesExhausted { status: None }
        }
    ));
    assert_eq!(sink.count(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(200)
            && started.elapsed() < Duration::from_secs(3)
    );
}

fn with_dead_letter(subscriber_url: &Url, dead_letter_url: &Url, retry: u32) -> Subscriber {
    let mut p = policy(retry, BackoffPolicy::Linear, 1);
    p.dead_letter = Some(Target::new(dead_letter_url.clone()));
    subscriber(subscriber_url, p)
}

#[tokio::test]
async fn dead_letter_gets_the_event_and_error_extensions() {
    let failing = Reply::status(503)
        .header("kne-reason", "queue full")
        .header("kne-Id", "hijack")
        .body("busy");
    let sink = TestServer::start([failing]).await;
    let dls = TestServer::start([]).await;
    let observer = Recorder::default();
    let delivery = deliver_observed(&with_dead_letter(&sink.url, &dls.url, 1), &observer).await;

    assert!(
        matches!(delivery.outcome, Outcome::DeadLettered { status: Some(s) } if s == 503),
        "{delivery:?}"
    );
    assert_eq!((sink.count(), dls.count(), delivery.retries), (2, 1, 1));
    let letter = &dls.requests()[0];
    assert_eq!(letter.body, message().body);
    for (name, value) in &message().headers {
        assert_eq!(letter.headers.get(name), Some(value), "{name}");
    }
    assert_eq!(header(&letter.headers, "ce-knativeerrorcode"), Some("503"));
    assert_eq!(
        header(&letter.headers, "ce-knativeerrordest"),
        Some(sink.url.as_str())
    );
    let data = base64::engine::general_purpose::STANDARD.encode("busy");
    assert_eq!(
        header(&letter.headers, "ce-knativeerrordata"),
        Some(data.as_str())
    );
    assert_eq!(header(&letter.headers, "ce-reason"), Some("queue%20full"));
    assert_eq!(header(&letter.headers, "prefer"), Some("reply"));
    assert_eq!(header(&letter.headers, "kn-namespace"), Some("team-a"));
    assert_eq!(
        observer.seen().last(),
        Some(&Seen::Attempt(Leg::DeadLetter, Some(202)))
    );
}

#[tokio::test]
async fn rejected_event_goes_straight_to_the_dead_letter_sink() {
    let sink = TestServer::start([Reply::status(400)]).await;
    let dls = TestServer::start([]).await;
    let delivery = deliver(&with_dead_letter(&sink.url, &dls.url, 5)).await;
    assert!(matches!(delivery.outcome, Outcome::DeadLettered { status: Some(s) } if s == 400));
    assert_eq!((sink.count(), dls.count()), (1, 1));
    let letter = &dls.requests()[0];
    assert_eq!(header(&letter.headers, "ce-knativeerrorcode"), Some("400"));
    assert_eq!(header(&letter.headers, "ce-knativeerrordata"), None);
}

#[tokio::test]
async fn unreachable_subscriber_is_dead_lettered_with_code_500() {
    let dls = TestServer::start([]).await;
    let delivery = deliver(&with_dead_letter(&refused_url(), &dls.url, 1)).await;
    assert!(matches!(
        delivery.outcome,
        Outcome::DeadLettered { status: None }
    ));
    let letter = &dls.requests()[0];
    assert_eq!(header(&letter.headers, "ce-knativeerrorcode"), Some("500"));
    let data = header(&letter.headers, "ce-knativeerrordata").unwrap();
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    assert!(
        data.starts_with(b"dispatch error: "),
        "{}",
        String::from_utf8_lossy(&data)
    );
}

#[tokio::test]
async fn keeps_retrying_whole_rounds_while_the_dead_letter_sink_fails() {
    let sink = TestServer::start([Reply::status(500)]).await;
    let dls = TestServer::start([Reply::status(503)]).await;
    let subscriber = with_dead_letter(&sink.url, &dls.url, 1);
    let observer = Recorder::default();
    let dispatcher = Dispatcher::new();
    let cancel = CancellationToken::new();

    let recover = async {
        // Bounded poll: let two rounds fail, then bring the dead-letter sink back.
        for _ in 0..200 {
            if observer.seen().contains(&Seen::Stalled(2)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        dls.answer_from_now(Reply::status(202));
    };
    let message = message();
    let delivery = dispatcher.deliver(&subscriber, &message, &cancel, &observer);
    let (delivery, ()) =
        tokio::time::timeout(TEST_BOUND, async { tokio::join!(delivery, recover) })
            .await
            .unwrap();
    let delivery = delivery.unwrap();

    assert!(
        matches!(delivery.outcome, Outcome::DeadLettered { status: Some(s) } if s == 500),
        "{delivery:?}"
    );
    assert!(delivery.stalled_rounds >= 2);
    let stalls: Vec<_> = observer
        .seen()
        .into_iter()
        .filter(|s| matches!(s, Seen::Stalled(_)))
        .collect();
    assert_eq!(
        stalls,
        (1..=delivery.stalled_rounds)
            .map(Seen::Stalled)
            .collect::<Vec<_>>()
    );
    // Every round retried the subscriber (2 attempts) before the dead-letter sink.
    assert_eq!(sink.count(), 2 * (delivery.stalled_rounds as usize + 1));
    assert_eq!(dls.count(), 2 * delivery.stalled_rounds as usize + 1);
}

#[tokio::test]
async fn cancellation_interrupts_an_attempt() {
    let sink = TestServer::start([Reply::status(202).delay(Duration::from_secs(10))]).await;
    let subscriber = subscriber(&sink.url, policy(3, BackoffPolicy::Linear, 1));
    let dispatcher = Dispatcher::new();
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let cancel_soon = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    };
    let message = message();
    let (result, ()) = tokio::join!(
        dispatcher.deliver(&subscriber, &message, &cancel, &()),
        cancel_soon
    );
    assert!(matches!(result, Err(Cancelled)));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn cancellation_interrupts_a_backoff_wait() {
    let sink = TestServer::start([Reply::status(500)]).await;
    let subscriber = subscriber(&sink.url, policy(3, BackoffPolicy::Linear, 10_000));
    let dispatcher = Dispatcher::new();
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let cancel_soon = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    };
    let message = message();
    let (result, ()) = tokio::join!(
        dispatcher.deliver(&subscriber, &message, &cancel, &()),
        cancel_soon
    );
    assert!(matches!(result, Err(Cancelled)));
    assert_eq!(sink.count(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn cancelled_before_start_sends_nothing() {
    let sink = TestServer::start([]).await;
    let cancel = CancellationToken::new();
    cancel.cancel();
    let dispatcher = Dispatcher::new();
    let result = dispatcher
        .deliver(
            &subscriber(&sink.url, policy(0, BackoffPolicy::Linear, 1)),
            &message(),
            &cancel,
            &(),
        )
        .await;
    assert!(matches!(result, Err(Cancelled)));
    assert_eq!(sink.count(), 0);
}

#[tokio::test]
async fn response_bodies_are_capped() {
    let sink = TestServer::start([Reply::status(200).body(vec![b'x'; BODY_LIMIT + 100])]).await;
    let delivery = deliver(&subscriber(&sink.url, policy(0, BackoffPolicy::Linear, 1))).await;
    let Outcome::Delivered { response } = delivery.outcome else {
        panic!("{delivery:?}")
    };
    assert!(response.truncated);
    assert_eq!(response.body.len(), BODY_LIMIT);
}

#[test]
fn delivery_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let dispatcher = Dispatcher::new();
    let subscriber = subscriber(
        &Url::parse("http://127.0.0.1:1/").unwrap(),
        policy(0, BackoffPolicy::Linear, 1),
    );
    let (message, cancel) = (message(), CancellationToken::new());
    assert_send(&dispatcher.deliver(&subscriber, &message, &cancel, &()));
}

#[tokio::test]
async fn reuses_one_connection_across_deliveries_and_failed_attempts() {
    let sink = TestServer::start([Reply::status(500).body("retry me"), Reply::status(202)]).await;
    let subscriber = subscriber(&sink.url, policy(1, BackoffPolicy::Linear, 1));
    let dispatcher = Dispatcher::new();
    let clone = dispatcher.clone();
    for _ in 0..10 {
        deliver_with(&dispatcher, &subscriber, &Recorder::default()).await;
        deliver_with(&clone, &subscriber, &Recorder::default()).await;
    }
    let requests = sink.requests();
    assert_eq!(requests.len(), 21);
    let peers: std::collections::HashSet<_> = requests.iter().map(|r| r.peer).collect();
    assert_eq!(peers.len(), 1, "{peers:?}");
}
