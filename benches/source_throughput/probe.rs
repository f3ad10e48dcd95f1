//! Yardsticks in the bench process: a plain rdkafka consumer that drains a topic with no HTTP at
//! all (how fast the broker can feed a consumer: if a bridge comes close to it, the broker is the
//! bottleneck), one that only joins a group (how much of the bridge's time to ready is the join),
//! and an HTTP client with no Kafka (how fast the sink can go).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt as _;
use kafka_bridge::delivery::{DeliveryPolicy, Dispatcher, Subscriber, Target};
use kafka_bridge::event::HttpMessage;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::Message as _;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::broker::client_config;
use crate::cost::count_delivered;

pub struct RawDrain {
    pub count: u64,
    pub started: Instant,
    pub first: Instant,
    pub last: Instant,
}

fn consumer_config(bootstrap: &str, group: &str) -> rdkafka::ClientConfig {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", crate::bridge::SESSION_TIMEOUT_MS);
    config
}

fn consumer(bootstrap: &str, group: &str) -> anyhow::Result<BaseConsumer> {
    consumer_config(bootstrap, group)
        .create()
        .context("creating the probe consumer")
}

/// Reads `expected` records of `topic` from the start, doing nothing with them.
pub async fn raw_drain(
    bootstrap: &str,
    topic: &str,
    group: &str,
    expected: u64,
    timeout: Duration,
) -> anyhow::Result<RawDrain> {
    let (bootstrap, topic, group) = (bootstrap.to_owned(), topic.to_owned(), group.to_owned());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let consumer = consumer(&bootstrap, &group)?;
        consumer
            .subscribe(&[topic.as_str()])
            .context("subscribing")?;
        let deadline = started + timeout;
        let mut count = 0;
        let mut first = None;
        let mut last = started;
        while count < expected && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    // Touch the payload as a consumer would, so nothing is optimised away.
                    std::hint::black_box(message.payload().map(<[u8]>::len));
                    last = Instant::now();
                    first.get_or_insert(last);
                    count += 1;
                }
                Some(Err(error)) => eprintln!("  probe consumer: {error}"),
                None => {}
            }
        }
        let Some(first) = first else {
            bail!("the probe consumer read nothing from {topic} within {timeout:?}");
        };
        Ok(RawDrain {
            count,
            started,
            first,
            last,
        })
    })
    .await
    .context("probe task")?
}

/// Time from creating a consumer to it holding partitions of `topic`.
pub async fn join_time(
    bootstrap: &str,
    topic: &str,
    group: &str,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let (bootstrap, topic, group) = (bootstrap.to_owned(), topic.to_owned(), group.to_owned());
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let consumer = consumer(&bootstrap, &group)?;
        consumer
            .subscribe(&[topic.as_str()])
            .context("subscribing")?;
        while started.elapsed() < timeout {
            // Polling serves the group protocol; the topic is empty, so nothing is returned.
            if let Some(Err(error)) = consumer.poll(Duration::from_millis(5)) {
                eprintln!("  join probe: {error}");
            }
            let assigned = consumer
                .assignment()
                .map(|list| list.count() > 0)
                .unwrap_or(false);
            if assigned {
                return Ok(started.elapsed());
            }
        }
        bail!("the join probe got no partitions of {topic} within {timeout:?}")
    })
    .await
    .context("join probe task")?
}

/// POSTs `count` 1 KiB events to `sink`, `in_flight` at a time, through the bridge's own
/// dispatcher in the bench process: the HTTP side of a delivery with no Kafka at all (client and
/// sink share the bench process, so this understates the sink's capacity rather than
/// overstating it).
pub async fn http_only(sink: &str, count: u64, in_flight: usize) -> anyhow::Result<f64> {
    let dispatcher = Dispatcher::new();
    let target = Target::new(Url::parse(sink).context("sink URL")?);
    let subscriber = Subscriber::new(target, DeliveryPolicy::source_default(), "bench")?;
    let cancel = CancellationToken::new();
    let body = bytes::Bytes::from(vec![b'x'; 1024]);
    let started = Instant::now();
    let deliveries = futures::stream::iter(0..count)
        .map(|n| {
            let mut headers = http::HeaderMap::with_capacity(4);
            for (name, value) in [
                ("ce-specversion", "1.0".to_owned()),
                ("ce-id", n.to_string()),
                ("ce-source", "bench".to_owned()),
                ("ce-type", "bench".to_owned()),
            ] {
                if let Ok(value) = http::HeaderValue::try_from(value) {
                    headers.insert(name, value);
                }
            }
            let message = HttpMessage {
                headers,
                body: body.clone(),
            };
            let (dispatcher, subscriber, cancel) = (&dispatcher, &subscriber, &cancel);
            async move { dispatcher.deliver(subscriber, &message, cancel, &()).await }
        })
        .buffer_unordered(in_flight);
    let delivered = count_delivered(deliveries).await?;
    Ok(delivered as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// A plain rdkafka consumer reading a latency topic alongside the bridge (its own group), noting
/// production-to-consumption latency with no HTTP: the part of the bridge's latency that the
/// producer, the broker and the fetch account for.
pub struct LatencyProbe {
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<u64>>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl LatencyProbe {
    pub fn start(bootstrap: &str, topic: &str, group: &str) -> anyhow::Result<Self> {
        let mut config = consumer_config(bootstrap, group);
        // The bridge's own setting: librdkafka's default (500 ms) would compare a slower fetch.
        config.set("fetch.wait.max.ms", "100");
        let consumer: BaseConsumer = config.create().context("creating the latency probe")?;
        consumer.subscribe(&[topic]).context("subscribing")?;
        let stop = Arc::new(AtomicBool::new(false));
        let assigned = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (stop_flag, assigned_flag, sink) = (stop.clone(), assigned.clone(), samples.clone());
        let task = tokio::task::spawn_blocking(move || {
            while !stop_flag.load(Ordering::Relaxed) {
                match consumer.poll(Duration::from_millis(20)) {
                    Some(Ok(message)) => {
                        let stamped = message.payload().and_then(crate::sink::parse_timestamp);
                        if let (Some(stamped), Ok(mut samples)) = (stamped, sink.lock()) {
                            samples.push(crate::sink::unix_micros().saturating_sub(stamped));
                        }
                    }
                    Some(Err(error)) => eprintln!("  latency probe: {error}"),
                    None => {}
                }
                if !assigned_flag.load(Ordering::Relaxed) {
                    let any = consumer
                        .assignment()
                        .map(|l| l.count() > 0)
                        .unwrap_or(false);
                    assigned_flag.store(any, Ordering::Relaxed);
                }
            }
            Ok(())
        });
        Ok(Self {
            stop,
            assigned,
            samples,
            task,
        })
    }

    pub async fn wait_assigned(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.assigned.load(Ordering::Relaxed) {
            if Instant::now() > deadline {
                bail!("the latency probe got no partitions within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Samples so far, leaving none behind for the next phase.
    pub fn take(&self) -> Vec<u64> {
        match self.samples.lock() {
            Ok(mut samples) => std::mem::take(&mut *samples),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.context("latency probe task")?
    }
}
