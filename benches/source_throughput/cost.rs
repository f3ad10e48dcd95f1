//! Cost: CPU per event of the source path alone, without Kafka: each stored record is mapped to a
//! CloudEvent, encoded for HTTP and delivered to a 202 sink, with the KafkaSource handler's own
//! calls (`Mapper::message_to_http`, `Dispatcher::deliver`), as the consumer worker makes them.
//!
//! The delivering side runs on one thread with a current-thread runtime and the sink on another,
//! so the delivering thread's CPU time is the bridge's share alone. CPU time on a shared machine
//! still varies by some percent; for a repeatable figure run it under callgrind
//! (`--separate-threads=yes`) at two record counts and divide the difference in the `cost-client`
//! thread's instructions by the difference in records (README, "Performance").

use std::time::Duration;

use anyhow::{bail, Context};
use futures::{Stream, StreamExt as _};
use kafka_bridge::delivery::{
    Cancelled, Delivery, DeliveryPolicy, Dispatcher, Outcome, Subscriber, Target,
};
use kafka_bridge::engine::plan::{
    InitialOffset, KafkaConnection, KeyType, Ordering, ResourceId, SourcePlan,
};
use kafka_bridge::event::Mapper;
use rdkafka::message::OwnedMessage;
use rdkafka::Timestamp;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::process::{current_thread, thread_cpu};
use crate::report::{num, Table};
use crate::sink::Sink;

const TOPIC: &str = "drain";
const PARTITIONS: i32 = 8;
const RECORD_SIZE: usize = 1024;
/// Deliveries in flight at once, as the unordered source runs many partitions' records together.
const IN_FLIGHT: usize = 64;
/// Records delivered before measuring: connections opened, pools and allocator warmed up.
const WARM_UP: u64 = 1_000;

/// What one pass measured on the delivering thread.
struct Measured {
    events: u64,
    client_cpu: Duration,
    sink_cpu: Duration,
}

/// Maps and delivers `records` records (after a warm-up) and reports CPU per event.
pub fn run(records: u64) -> anyhow::Result<Table> {
    let measured = measure(records)?;
    let per_event = |cpu: Duration| cpu.as_secs_f64() * 1e6 / measured.events as f64;
    let mut table = Table::new(
        "Source path cost: map + encode + deliver to an in-process 202 sink, no Kafka",
        &["thread", "CPU µs / event", "events"],
    );
    table.row(vec![
        "delivering (kafka-bridge code)".into(),
        num(per_event(measured.client_cpu), 1),
        measured.events.to_string(),
    ]);
    table.row(vec![
        "sink (axum, answers 202)".into(),
        num(per_event(measured.sink_cpu), 1),
        measured.events.to_string(),
    ]);
    table.note(format!(
        "{RECORD_SIZE}-byte records without key or headers, {IN_FLIGHT} in flight, after \
         {WARM_UP} warm-up events; thread CPU time (user + system), so the kernel's loopback TCP \
         is included."
    ));
    Ok(table)
}

fn measure(records: u64) -> anyhow::Result<Measured> {
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sink = std::thread::Builder::new()
        .name("cost-sink".into())
        .spawn(move || -> anyhow::Result<Duration> {
            let runtime = current_thread()?;
            runtime.block_on(async move {
                let sink = Sink::start().await?;
                let started = thread_cpu();
                // The receiver waits for this; if it is gone there is no one to serve.
                let _ = url_tx.send(sink.url.clone());
                // A dropped sender also means stop.
                let _ = stop_rx.await;
                drop(sink);
                Ok(thread_cpu().saturating_sub(started))
            })
        })
        .context("starting the sink thread")?;
    let url = url_rx
        .recv_timeout(Duration::from_secs(10))
        .context("the sink did not start")?;
    let client = std::thread::Builder::new()
        .name("cost-client".into())
        .spawn(move || -> anyhow::Result<(Duration, u64)> {
            let runtime = current_thread()?;
            runtime.block_on(deliver_all(&url, records))
        })
        .context("starting the delivering thread")?;
    let client = client.join();
    // Either a send or a dropped receiver; the sink stops in both cases.
    let _ = stop_tx.send(());
    let sink_cpu = match sink.join() {
        Ok(result) => result?,
        Err(_) => bail!("the sink thread panicked"),
    };
    let (client_cpu, events) = match client {
        Ok(result) => result?,
        Err(_) => bail!("the delivering thread panicked"),
    };
    Ok(Measured {
        events,
        client_cpu,
        sink_cpu,
    })
}

/// Delivers the warm-up, then `records` measured events; returns this thread's CPU time over the
/// measured ones.
async fn deliver_all(url: &str, records: u64) -> anyhow::Result<(Duration, u64)> {
    let plan = plan(url)?;
    let mapper = Mapper::new(&plan);
    let dispatcher = Dispatcher::new();
    let subscriber = Subscriber::new(plan.sink.clone(), plan.delivery.clone(), "bench")?;
    let cancel = CancellationToken::new();
    let stored = stored_records();
    let deliver_one = |n: u64| {
        let record = &stored[(n % stored.len() as u64) as usize];
        let (mapper, dispatcher, subscriber, cancel) = (&mapper, &dispatcher, &subscriber, &cancel);
        async move {
            // What the consumer worker does to every record, librdkafka's copy in hand.
            let message = mapper.message_to_http(record);
            dispatcher.deliver(subscriber, &message, cancel, &()).await
        }
    };
    let run = |range: std::ops::Range<u64>| {
        count_delivered(
            futures::stream::iter(range)
                .map(deliver_one)
                .buffer_unordered(IN_FLIGHT),
        )
    };
    run(0..WARM_UP).await?;
    let started = thread_cpu();
    let delivered = run(WARM_UP..WARM_UP + records).await?;
    Ok((thread_cpu().saturating_sub(started), delivered))
}

/// Runs `deliveries` to the end and counts them; an event not delivered is an error.
pub async fn count_delivered(
    deliveries: impl Stream<Item = Result<Delivery, Cancelled>>,
) -> anyhow::Result<u64> {
    let mut deliveries = std::pin::pin!(deliveries);
    let mut delivered = 0u64;
    while let Some(delivery) = deliveries.next().await {
        match delivery {
            Ok(d) if matches!(d.outcome, Outcome::Delivered { .. }) => delivered += 1,
            Ok(d) => bail!("an event was not delivered: {:?}", d.outcome),
            Err(cancelled) => bail!("{cancelled}"),
        }
    }
    Ok(delivered)
}

fn plan(sink: &str) -> anyhow::Result<SourcePlan> {
    Ok(SourcePlan {
        id: ResourceId::new("bench", "cost"),
        generation: 1,
        kafka: KafkaConnection::plaintext("127.0.0.1:9"),
        topics: vec![TOPIC.to_owned()],
        consumer_group: "cost".to_owned(),
        initial_offset: InitialOffset::Earliest,
        consumers: 1,
        ordering: Ordering::Unordered,
        sink: Target::new(Url::parse(sink).context("sink URL")?),
        delivery: DeliveryPolicy::source_default(),
        ce_overrides: Default::default(),
        key_type: KeyType::default(),
    })
}

/// Records as the drain's topic holds them: 1 KiB values over 8 partitions, no key or headers.
fn stored_records() -> Vec<OwnedMessage> {
    (0..PARTITIONS)
        .map(|partition| {
            OwnedMessage::new(
                Some(vec![b'x'; RECORD_SIZE]),
                None,
                TOPIC.to_owned(),
                Timestamp::CreateTime(1_700_000_000_000),
                partition,
                1_000,
                None,
            )
        })
        .collect()
}
