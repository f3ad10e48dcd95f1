//! Producing the bench's records from the bench process: a fast batched bulk load before the drain
//! runs, and paced production for the latency runs. Records go round-robin over the partitions so
//! every partition carries the same load. Both run on a blocking thread (rdkafka's producer API
//! here is synchronous).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};

use crate::sink::timestamped_value;

const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Counts failed deliveries; the bench refuses to measure a topic with holes.
#[derive(Clone, Default)]
struct Failures(Arc<AtomicU64>);

impl ClientContext for Failures {}

impl ProducerContext for Failures {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub struct Produced {
    pub count: u64,
    pub elapsed: Duration,
}

impl Produced {
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Produces `count` records of `size` bytes as fast as the broker takes them, with `config`
/// (the broker's producer settings) plus batching.
pub async fn bulk(
    mut config: ClientConfig,
    topic: &str,
    partitions: i32,
    count: u64,
    size: usize,
) -> anyhow::Result<Produced> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        config
            .set("linger.ms", "20")
            .set("batch.size", "1000000")
            .set("queue.buffering.max.kbytes", "262144");
        let failures = Failures::default();
        let producer: BaseProducer<Failures> = config
            .create_with_context(failures.clone())
            .context("creating the producer")?;
        let value = vec![b'x'; size];
        let started = Instant::now();
        for n in 0..count {
            send(&producer, &topic, partition_of(n, partitions), &value)?;
        }
        finish(&producer, &failures, count, started)
    })
    .await
    .context("producer task")?
}

/// Produces timestamped records of `size` bytes at `rate` per second for `duration`. Each value
/// starts with its production time (see `sink`), stamped just before the record is handed to the
/// client, so the latency measured includes the producer's own batching (linger.ms=5,
/// librdkafka's default).
pub async fn paced(
    mut config: ClientConfig,
    topic: &str,
    partitions: i32,
    rate: u64,
    duration: Duration,
    size: usize,
) -> anyhow::Result<Produced> {
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        config.set("linger.ms", "5");
        let failures = Failures::default();
        let producer: BaseProducer<Failures> = config
            .create_with_context(failures.clone())
            .context("creating the producer")?;
        let total = rate * duration.as_secs();
        let started = Instant::now();
        // The schedule is absolute (record n is due at n / rate), so a late tick catches up
        // instead of drifting; a tick every 500 us keeps bursts small at 20k/s.
        let deadline = started + duration + Duration::from_secs(5);
        let mut sent = 0;
        while sent < total && Instant::now() < deadline {
            let due = due_by(started.elapsed(), rate).min(total);
            while sent < due {
                let value = timestamped_value(size);
                send(&producer, &topic, partition_of(sent, partitions), &value)?;
                sent += 1;
            }
            producer.poll(Duration::ZERO);
            std::thread::sleep(Duration::from_micros(500));
        }
        finish(&producer, &failures, sent, started)
    })
    .await
    .context("producer task")?
}

fn send(
    producer: &BaseProducer<Failures>,
    topic: &str,
    partition: i32,
    value: &[u8],
) -> anyhow::Result<()> {
    // A full local queue is backpressure: serve delivery reports and try again, a bounded number
    // of times so a stuck broker fails the bench instead of hanging it.
    for _ in 0..10_000 {
        let record: BaseRecord<'_, (), [u8]> =
            BaseRecord::to(topic).partition(partition).payload(value);
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                _,
            )) => {
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => bail!("producing to {topic}: {error}"),
        }
    }
    bail!("producing to {topic}: the local queue stayed full for 100 s")
}

fn finish(
    producer: &BaseProducer<Failures>,
    failures: &Failures,
    count: u64,
    started: Instant,
) -> anyhow::Result<Produced> {
    producer
        .flush(FLUSH_TIMEOUT)
        .context("flushing the producer")?;
    let failed = failures.0.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} of {count} records were not acknowledged by the broker");
    }
    Ok(Produced {
        count,
        elapsed: started.elapsed(),
    })
}

fn partition_of(n: u64, partitions: i32) -> i32 {
    let partitions = u64::try_from(partitions.max(1)).unwrap_or(1);
    i32::try_from(n % partitions).unwrap_or(0)
}

fn due_by(elapsed: Duration, rate: u64) -> u64 {
    u64::try_from(elapsed.as_micros() * u128::from(rate) / 1_000_000).unwrap_or(u64::MAX)
}

/// Checks of the pure helpers, run by `cargo test --bench source_throughput` (see main).
pub fn self_check() {
    let cases = [
        (0, 8, 0),
        (7, 8, 7),
        (8, 8, 0),
        (13, 8, 5),
        (5, 1, 0),
        (5, 0, 0),
    ];
    for (n, partitions, want) in cases {
        assert_eq!(partition_of(n, partitions), want, "{n} over {partitions}");
    }
    let cases = [
        (0, 5_000, 0),
        (1_000, 5_000, 5),
        (1_000_000, 20_000, 20_000),
    ];
    for (elapsed_us, rate, want) in cases {
        assert_eq!(due_by(Duration::from_micros(elapsed_us), rate), want);
    }
}
