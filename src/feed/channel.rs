//! One KafkaChannel -> one [`ChannelPlan`]: Knative's defaults and validation, applied once.
//!
//! The topic is `knative-messaging-kafka.NS.NAME`; each subscriber gets its own consumer group
//! `kafka.NS.CHANNEL.UID` and a delivery made of its own fields over the channel's. Knative's
//! KafkaChannel dispatches every subscriber in order (one event in flight per partition) and
//! offers no setting for it, so neither do we. Pure apart from the [`Lookup`] (dead-letter sink
//! refs); the cluster connection comes resolved from [`channel_config`](super::channel_config).

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::plan::{ChannelPlan, KafkaConnection, Ordering, ResourceId, SubscriberPlan};
use crate::resources::kafka_channel::{
    DEFAULT_NUM_PARTITIONS, DEFAULT_REPLICATION_FACTOR, DEFAULT_RETENTION_DURATION,
};
use crate::resources::{KafkaChannel, SubscriberSpec};

use super::delivery::DeliveryFields;
use super::resolve::{resource_id, FieldError, Lookup};
use super::{duration, target};

/// Prefix of every channel topic (Knative's default `channels.topic.template`).
pub const TOPIC_PREFIX: &str = "knative-messaging-kafka";

/// The channel's topic: `knative-messaging-kafka.NS.NAME`.
pub fn channel_topic(channel: &ResourceId) -> String {
    format!("{TOPIC_PREFIX}.{}.{}", channel.namespace, channel.name)
}

/// A subscriber's consumer group: `kafka.NS.CHANNEL.UID`.
pub fn subscriber_consumer_group(channel: &ResourceId, uid: &str) -> String {
    format!("kafka.{}.{}.{uid}", channel.namespace, channel.name)
}

/// Resolves and validates one KafkaChannel, whose cluster is `kafka`.
pub fn channel_plan(
    channel: &KafkaChannel,
    kafka: KafkaConnection,
    lookup: &impl Lookup,
) -> Result<ChannelPlan, FieldError> {
    let id = resource_id(&channel.metadata)?;
    let spec = &channel.spec;
    let ns = id.namespace.as_str();

    let num_partitions = positive_or_default(
        spec.num_partitions,
        DEFAULT_NUM_PARTITIONS,
        "spec.numPartitions",
    )?;
    let replication_factor = positive_or_default(
        spec.replication_factor,
        DEFAULT_REPLICATION_FACTOR,
        "spec.replicationFactor",
    )?;
    let retention = retention(spec.retention_duration.as_deref())?;
    let channel_delivery = spec
        .delivery
        .as_ref()
        .map(|d| DeliveryFields::parse(d, "spec.delivery", ns, lookup))
        .transpose()?
        .unwrap_or_default();

    let mut first_index: HashMap<&str, usize> = HashMap::new();
    let mut subscribers = Vec::with_capacity(spec.subscribers.len());
    for (index, subscriber) in spec.subscribers.iter().enumerate() {
        let plan = subscriber_plan(&id, index, subscriber, &channel_delivery, lookup)?;
        if let Some(uid) = subscriber.uid.as_deref() {
            if let Some(first) = first_index.insert(uid, index) {
                return Err(FieldError::new(
                    format!("spec.subscribers[{index}].uid"),
                    format!(
                        "{uid:?} is also the uid of spec.subscribers[{first}]; uids are unique"
                    ),
                ));
            }
        }
        subscribers.push(Arc::new(plan));
    }

    Ok(ChannelPlan {
        topic: channel_topic(&id),
        id,
        generation: channel.metadata.generation.unwrap_or(0),
        kafka,
        num_partitions,
        replication_factor,
        retention,
        subscribers,
    })
}

fn subscriber_plan(
    channel: &ResourceId,
    index: usize,
    spec: &SubscriberSpec,
    channel_delivery: &DeliveryFields,
    lookup: &impl Lookup,
) -> Result<SubscriberPlan, FieldError> {
    let field = format!("spec.subscribers[{index}]");
    let at = |name: &str| format!("{field}.{name}");
    let Some(uid) = spec.uid.as_deref().filter(|u| !u.is_empty()) else {
        return Err(FieldError::new(
            at("uid"),
            "required: the subscriber's consumer group is named after it",
        ));
    };
    let (subscriber_uri, reply_uri) = (non_blank(&spec.subscriber_uri), non_blank(&spec.reply_uri));
    if subscriber_uri.is_none() && reply_uri.is_none() {
        return Err(FieldError::new(
            field,
            "expected at least one of subscriberUri and replyUri, got neither",
        ));
    }
    for (audience, name) in [
        (&spec.subscriber_audience, "subscriberAudience"),
        (&spec.reply_audience, "replyAudience"),
    ] {
        if audience.as_deref().is_some_and(|a| !a.is_empty()) {
            // OIDC tokens need a cluster's token service; standalone delivery sends none.
            tracing::warn!(
                "{field}.{name} is set but OIDC authentication is not supported; ignored"
            );
        }
    }
    let subscriber = subscriber_uri
        .map(|uri| {
            target::absolute(
                uri,
                spec.subscriber_ca_certs.as_deref(),
                &at("subscriberUri"),
            )
        })
        .transpose()?;
    let reply = reply_uri
        .map(|uri| target::absolute(uri, spec.reply_ca_certs.as_deref(), &at("replyUri")))
        .transpose()?;
    let own_delivery = spec
        .delivery
        .as_ref()
        .map(|d| DeliveryFields::parse(d, &at("delivery"), &channel.namespace, lookup))
        .transpose()?
        .unwrap_or_default();

    Ok(SubscriberPlan {
        uid: uid.to_owned(),
        generation: spec.generation.unwrap_or(0),
        subscriber,
        reply,
        delivery: own_delivery.or(channel_delivery).policy(),
        consumer_group: subscriber_consumer_group(channel, uid),
        ordering: Ordering::Ordered,
    })
}

fn non_blank(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| !t.trim().is_empty())
}

/// Knative's defaulting of the topic counts: absent or zero means the default.
fn positive_or_default<T>(value: Option<T>, default: T, field: &str) -> Result<T, FieldError>
where
    T: Copy + Default + PartialOrd + Display,
{
    match value {
        None => Ok(default),
        Some(v) if v == T::default() => Ok(default),
        Some(v) if v > T::default() => Ok(v),
        Some(v) => Err(FieldError::new(
            field,
            format!("{v} must be greater than zero"),
        )),
    }
}

/// `spec.retentionDuration`; absent or empty means seven days.
fn retention(given: Option<&str>) -> Result<Duration, FieldError> {
    const FIELD: &str = "spec.retentionDuration";
    let text = given
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(DEFAULT_RETENTION_DURATION);
    let retention = duration::parse(text).map_err(|e| FieldError::new(FIELD, e.to_string()))?;
    // Knative lets zero through; Kafka would then delete events before subscribers read them.
    if retention.is_zero() {
        return Err(FieldError::new(FIELD, "must be greater than zero"));
    }
    Ok(retention)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_and_consumer_group_names() {
        let id = ResourceId::new("ns", "orders");
        assert_eq!(channel_topic(&id), "knative-messaging-kafka.ns.orders");
        assert_eq!(
            subscriber_consumer_group(&id, "2f9b5e8e-deb6-11e8-9f32-f2801f1b9fd1"),
            "kafka.ns.orders.2f9b5e8e-deb6-11e8-9f32-f2801f1b9fd1"
        );
    }

    #[test]
    fn topic_counts_default_when_absent_or_zero() {
        let cases: [(Option<i32>, Result<i32, &str>); 5] = [
            (None, Ok(1)),
            (Some(0), Ok(1)),
            (Some(1), Ok(1)),
            (Some(12), Ok(12)),
            (Some(-3), Err("-3 must be greater than zero")),
        ];
        for (given, want) in cases {
            let got = positive_or_default(given, 1, "spec.numPartitions");
            let want = want.map_err(|p| FieldError::new("spec.numPartitions", p));
            assert_eq!(got, want, "{given:?}");
        }
        assert_eq!(positive_or_default(Some(3i16), 1, "f"), Ok(3));
        assert!(positive_or_default(Some(i16::MIN), 1, "f").is_err());
    }

    #[test]
    fn retention_parses_iso8601_with_a_seven_day_default() {
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let cases = [
            (None, Ok(hours(168))),
            (Some(""), Ok(hours(168))),
            (Some("PT168H"), Ok(hours(168))),
            (Some("P7D"), Ok(hours(168))),
            (Some("PT1H30M"), Ok(Duration::from_secs(5400))),
            (Some("PT0.5S"), Ok(Duration::from_millis(500))),
            (Some("PT0S"), Err("must be greater than zero")),
            (Some("7 days"), Err("is not an ISO-8601 duration")),
            (Some("-P1D"), Err("is negative")),
        ];
        for (given, want) in cases {
            match (retention(given), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{given:?}"),
                (Err(err), Err(problem)) => {
                    assert_eq!(err.field, "spec.retentionDuration");
                    assert!(err.problem.contains(problem), "{given:?}: {err}");
                }
                (got, want) => panic!("{given:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
