//! Idle footprint: one bridge process running 1, then 100, KafkaSources on one quiet topic (one
//! consumer group each), measured once every source holds partitions (/readyz 200).

use std::time::Duration;

use crate::bridge::Bridge;
use crate::broker::Broker;
use crate::report::{num, Table};
use crate::sink::Sink;
use crate::sources::{self, Ordering, Source};
use crate::Bench;

const TOPIC: &str = "idle";
const SOURCE_COUNTS: [usize; 2] = [1, 100];
const READY_TIMEOUT: Duration = Duration::from_secs(120);
const SETTLE: Duration = Duration::from_secs(3);
const CPU_WINDOW: Duration = Duration::from_secs(5);

pub async fn run(bench: &Bench, broker: &Broker) -> anyhow::Result<Table> {
    broker.create_topic(TOPIC, 1).await?;
    let sink = Sink::start().await?;
    let mut table = Table::new(
        "Idle: one bridge process, N KafkaSources, nothing to consume",
        &[
            "sources",
            "spawn → /readyz s",
            "RSS MiB",
            "peak RSS MiB",
            "RSS per added source MiB",
            "threads",
            "idle CPU % of a core",
        ],
    );
    let mut first: Option<(usize, f64)> = None;
    for count in SOURCE_COUNTS {
        let label = format!("idle-{count}");
        let sources: Vec<Source<'_>> = (0..count)
            .map(|i| Source {
                name: format!("idle-{count}-{i}"),
                topic: TOPIC,
                group: format!("idle-{count}-{i}"),
                ordering: Ordering::Unordered,
                sink: &sink.url,
            })
            .collect();
        let mut bridge = sources::spawn(
            &bench.bridge_bin,
            &bench.work,
            &label,
            &broker.bootstrap,
            &sources,
        )?;
        let measured = measure(&mut bridge).await;
        bridge.stop().await;
        let (ready, memory, cpu_percent) = measured?;
        eprintln!(
            "idle: {count} source(s) ready in {:.1} s, RSS {:.1} MiB, {} threads",
            ready.as_secs_f64(),
            memory.rss_kib as f64 / 1024.0,
            memory.threads
        );
        let rss = memory.rss_kib as f64 / 1024.0;
        // What each source beyond the first costs, against the smallest run.
        let per_added = match first {
            Some((base_count, base_rss)) if count > base_count => {
                (rss - base_rss) / (count - base_count) as f64
            }
            _ => f64::NAN,
        };
        first.get_or_insert((count, rss));
        table.row(vec![
            count.to_string(),
            num(ready.as_secs_f64(), 1),
            num(rss, 1),
            num(memory.hwm_kib as f64 / 1024.0, 1),
            num(per_added, 2),
            memory.threads.to_string(),
            num(cpu_percent, 1),
        ]);
    }
    table.note(format!(
        "One topic, 1 partition, one consumer group per source. RSS (VmRSS) and threads read \
         {} s after /readyz; idle CPU over the following {} s. One run each. Broker: {}.",
        SETTLE.as_secs(),
        CPU_WINDOW.as_secs(),
        broker.kind.describe()
    ));
    Ok(table)
}

async fn measure(bridge: &mut Bridge) -> anyhow::Result<(Duration, crate::process::Memory, f64)> {
    let ready = bridge.wait_for("/readyz", READY_TIMEOUT).await?;
    tokio::time::sleep(SETTLE).await;
    let memory = bridge.proc.memory()?;
    let before = bridge.proc.cpu()?;
    tokio::time::sleep(CPU_WINDOW).await;
    let cpu = bridge.proc.cpu()?.saturating_sub(before);
    bridge.proc.ensure_running()?;
    Ok((
        ready,
        memory,
        cpu.as_secs_f64() * 100.0 / CPU_WINDOW.as_secs_f64(),
    ))
}
