//! Start-up: time from spawning the bridge (one source) to /healthz answering and to /readyz 200.
//! /readyz waits for the consumer group join, so a plain rdkafka consumer's join is timed alone
//! as well; the difference is the bridge's own start-up.

use std::time::Duration;

use crate::broker::Broker;
use crate::report::{median, num, runs, Table};
use crate::sink::Sink;
use crate::sources::{self, Ordering, Source};
use crate::{probe, Bench};

const TOPIC: &str = "startup";
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub async fn run(bench: &Bench, broker: &Broker) -> anyhow::Result<Table> {
    broker.create_topic(TOPIC, 1).await?;
    let sink = Sink::start().await?;
    let (mut healthz, mut readyz, mut joins) = (Vec::new(), Vec::new(), Vec::new());
    for repeat in 0..bench.settings.repeats {
        let label = format!("startup-{repeat}");
        let source = Source {
            name: label.clone(),
            topic: TOPIC,
            group: label.clone(),
            ordering: Ordering::Unordered,
            sink: &sink.url,
        };
        let mut bridge = sources::spawn(
            &bench.bridge_bin,
            &bench.work,
            &label,
            &broker.bootstrap,
            &[source],
        )?;
        let timed = async {
            let health = bridge.wait_for("/healthz", HEALTH_TIMEOUT).await?;
            let ready = bridge.wait_for("/readyz", READY_TIMEOUT).await?;
            anyhow::Ok((health, ready))
        }
        .await;
        bridge.stop().await;
        let (health, ready) = timed?;
        let join = probe::join_time(
            &broker.bootstrap,
            TOPIC,
            &format!("startup-probe-{repeat}"),
            READY_TIMEOUT,
        )
        .await?;
        eprintln!(
            "startup #{repeat}: /healthz {:.0} ms, /readyz {:.0} ms, join alone {:.0} ms",
            ms(health),
            ms(ready),
            ms(join)
        );
        healthz.push(ms(health));
        readyz.push(ms(ready));
        joins.push(ms(join));
    }
    let own: Vec<f64> = readyz.iter().zip(&joins).map(|(r, j)| r - j).collect();
    let mut table = Table::new(
        "Start-up: kafka-bridge, one source",
        &["measure", "ms (median)", "runs"],
    );
    table.row(vec![
        "spawn → /healthz 200".into(),
        num(median(&healthz), 0),
        runs(&healthz, 0),
    ]);
    table.row(vec![
        "spawn → /readyz 200 (includes the group join)".into(),
        num(median(&readyz), 0),
        runs(&readyz, 0),
    ]);
    table.row(vec![
        "group join alone (plain rdkafka consumer in the bench)".into(),
        num(median(&joins), 0),
        runs(&joins, 0),
    ]);
    table.row(vec![
        "/readyz minus join (the bridge's own share, estimate)".into(),
        num(median(&own), 0),
        runs(&own, 0),
    ]);
    table.note(format!(
        "Fresh consumer group each run; session.timeout.ms={} for both. The endpoints are polled \
         every 2 ms. Broker: {} (how long a join takes depends on the broker: Kafka itself holds a \
         new group's first join for group.initial.rebalance.delay.ms, 3 s by default).",
        crate::bridge::SESSION_TIMEOUT_MS,
        broker.kind.describe()
    ));
    Ok(table)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
