//! Prometheus metrics. Each resource gets a [`ResourceMetrics`] handle of typed counters, built
//! once when it starts, so the hot path only does atomic adds and never formats label strings.

use std::fmt;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::engine::plan::ResourceId;

/// Identifies the resource (and, for channels, the subscriber) a series belongs to:
/// `kind`, `namespace`, `name`, and `subscriber` where there is one.
pub type ResourceLabels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~65 s: loopback sinks answer in well under a millisecond, slow ones in seconds.
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

pub struct Metrics {
    registry: Registry,
    delivered: Family<ResourceLabels, Counter>,
    failed: Family<ResourceLabels, Counter>,
    dead_lettered: Family<ResourceLabels, Counter>,
    retries: Family<ResourceLabels, Counter>,
    stalled: Family<ResourceLabels, Counter>,
    latency: Family<ResourceLabels, Histogram, fn() -> Histogram>,
    lag: Family<ResourceLabels, Gauge>,
    assigned: Family<ResourceLabels, Gauge>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kafka_bridge");
        let delivered = Family::default();
        let failed = Family::default();
        let dead_lettered = Family::default();
        let retries = Family::default();
        let stalled = Family::default();
        let latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let lag = Family::default();
        let assigned = Family::default();
        registry.register(
            "events_delivered",
            "Events accepted by their sink or subscriber (2xx)",
            delivered.clone(),
        );
        registry.register(
            "events_failed",
            "Events given up after their last retry with no dead-letter sink configured",
            failed.clone(),
        );
        registry.register(
            "events_dead_lettered",
            "Events accepted by the dead-letter sink",
            dead_lettered.clone(),
        );
        registry.register(
            "delivery_retries",
            "Delivery attempts after the first",
            retries.clone(),
        );
        registry.register(
            "delivery_stalled",
            "Rounds in which both the sink and the dead-letter sink failed; the event is retried, \
             so a rising value means a partition is stuck",
            stalled.clone(),
        );
        registry.register(
            "event_dispatch_latency_seconds",
            "Time from the first attempt to the event being settled",
            latency.clone(),
        );
        registry.register(
            "consumer_lag",
            "Records not yet settled in the assigned partitions",
            lag.clone(),
        );
        registry.register(
            "consumer_assigned_partitions",
            "Partitions assigned to this process",
            assigned.clone(),
        );
        Self {
            registry,
            delivered,
            failed,
            dead_lettered,
            retries,
            stalled,
            latency,
            lag,
            assigned,
        }
    }

    /// The handle for one resource's series; cheap to clone and share between tasks.
    pub fn resource(&self, kind: &str, id: &ResourceId) -> ResourceMetrics {
        self.handle(vec![
            ("kind", kind.to_string()),
            ("namespace", id.namespace.clone()),
            ("name", id.name.clone()),
        ])
    }

    /// The handle for one subscriber of a channel.
    pub fn subscriber(&self, kind: &str, id: &ResourceId, uid: &str) -> ResourceMetrics {
        self.handle(vec![
            ("kind", kind.to_string()),
            ("namespace", id.namespace.clone()),
            ("name", id.name.clone()),
            ("subscriber", uid.to_string()),
        ])
    }

    fn handle(&self, labels: ResourceLabels) -> ResourceMetrics {
        ResourceMetrics {
            delivered: self.delivered.get_or_create(&labels).clone(),
            failed: self.failed.get_or_create(&labels).clone(),
            dead_lettered: self.dead_lettered.get_or_create(&labels).clone(),
            retries: self.retries.get_or_create(&labels).clone(),
            stalled: self.stalled.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
            lag: self.lag.get_or_create(&labels).clone(),
            assigned: self.assigned.get_or_create(&labels).clone(),
        }
    }

    /// The Prometheus text exposition of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// One resource's series.
#[derive(Clone, Debug)]
pub struct ResourceMetrics {
    pub delivered: Counter,
    pub failed: Counter,
    pub dead_lettered: Counter,
    pub retries: Counter,
    pub stalled: Counter,
    pub latency: Histogram,
    pub lag: Gauge,
    pub assigned: Gauge,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_resource_labels() {
        let metrics = Metrics::new();
        let handle = metrics.resource("KafkaSource", &ResourceId::new("ns1", "src1"));
        handle.delivered.inc();
        handle.delivered.inc();
        let sub = metrics.subscriber("KafkaChannel", &ResourceId::new("ns1", "ch"), "u1");
        sub.delivered.inc();
        handle.latency.observe(0.002);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"kafka_bridge_events_delivered_total{kind="KafkaSource",namespace="ns1",name="src1"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains("kafka_bridge_event_dispatch_latency_seconds_count"),
            "{text}"
        );
    }
}
