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

fn produce_histogram() -> Histogram {
    // 0.25 ms .. ~16 s: an acknowledged produce on a healthy cluster takes a few milliseconds;
    // the tail reaches message.timeout.ms when the cluster is down.
    Histogram::new(exponential_buckets(0.00025, 2.0, 17))
}

pub struct Metrics {
    registry: Registry,
    ingress_events: Family<ResourceLabels, Counter>,
    ingress_produce_latency: Family<ResourceLabels, Histogram, fn() -> Histogram>,
    delivered: Family<ResourceLabels, Counter>,
    failed: Family<ResourceLabels, Counter>,
    dead_lettered: Family<ResourceLabels, Counter>,
    retries: Family<ResourceLabels, Counter>,
    stalled: Family<ResourceLabels, Counter>,
    latency: Family<ResourceLabels, Histogram, fn() -> Histogram>,
    lag: Family<ResourceLabels, Gauge>,
    assigned: Family<ResourceLabels, Gauge>,
    partitions_stalled: Family<ResourceLabels, Gauge>,
    contract_errors: Counter,
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
        let partitions_stalled = Family::default();
        let ingress_events = Family::default();
        let contract_errors = Counter::default();
        registry.register(
            "contract_errors",
            "Data-plane contracts that could not be read or were malformed; the previous plan \
             keeps running",
            contract_errors.clone(),
        );
        let ingress_produce_latency =
            Family::new_with_constructor(produce_histogram as fn() -> Histogram);
        registry.register(
            "ingress_events",
            "Requests to a channel's ingress, by the HTTP status they were answered with",
            ingress_events.clone(),
        );
        registry.register(
            "ingress_produce_latency_seconds",
            "Time from handing an event to the Kafka producer to the broker's acknowledgement",
            ingress_produce_latency.clone(),
        );
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
        registry.register(
            "consumer_partitions_stalled",
            "Assigned partitions with records waiting (or not fetching) while nothing moved for 30 s",
            partitions_stalled.clone(),
        );
        Self {
            registry,
            ingress_events,
            ingress_produce_latency,
            delivered,
            failed,
            dead_lettered,
            retries,
            stalled,
            latency,
            lag,
            assigned,
            partitions_stalled,
            contract_errors,
        }
    }

    /// Counts contracts the data plane rejected.
    pub fn contract_errors(&self) -> &Counter {
        &self.contract_errors
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
            partitions_stalled: self.partitions_stalled.get_or_create(&labels).clone(),
        }
    }

    /// The handle for one channel's ingress series, one counter per status the ingress answers a
    /// routed request with.
    pub fn ingress(&self, kind: &str, id: &ResourceId) -> IngressMetrics {
        let labels: ResourceLabels = vec![
            ("kind", kind.to_string()),
            ("namespace", id.namespace.clone()),
            ("name", id.name.clone()),
        ];
        let events = |code: &'static str| {
            let mut labels = labels.clone();
            labels.push(("code", code.to_string()));
            self.ingress_events.get_or_create(&labels).clone()
        };
        IngressMetrics {
            accepted: events("202"),
            invalid: events("400"),
            too_large: events("413"),
            unavailable: events("503"),
            produce_latency: self.ingress_produce_latency.get_or_create(&labels).clone(),
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
    pub partitions_stalled: Gauge,
}

/// One channel's ingress series.
#[derive(Clone, Debug)]
pub struct IngressMetrics {
    /// 202: stored in Kafka.
    pub accepted: Counter,
    /// 400: not a CloudEvent.
    pub invalid: Counter,
    /// 413: body over the limit.
    pub too_large: Counter,
    /// 503: the produce failed or timed out.
    pub unavailable: Counter,
    pub produce_latency: Histogram,
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

    #[test]
    fn ingress_series_carry_the_status_code() {
        let metrics = Metrics::new();
        let handle = metrics.ingress("KafkaChannel", &ResourceId::new("ns1", "ch1"));
        handle.accepted.inc();
        handle.unavailable.inc();
        handle.unavailable.inc();
        handle.produce_latency.observe(0.001);
        let text = metrics.encode();
        for want in [
            r#"kafka_bridge_ingress_events_total{kind="KafkaChannel",namespace="ns1",name="ch1",code="202"} 1"#,
            r#"kafka_bridge_ingress_events_total{kind="KafkaChannel",namespace="ns1",name="ch1",code="400"} 0"#,
            r#"kafka_bridge_ingress_events_total{kind="KafkaChannel",namespace="ns1",name="ch1",code="503"} 2"#,
            r#"kafka_bridge_ingress_produce_latency_seconds_count{kind="KafkaChannel",namespace="ns1",name="ch1"} 1"#,
        ] {
            assert!(text.contains(want), "{want} not in {text}");
        }
    }
}
