//! Reconciling a KafkaChannel, purely: [`desired`] computes the cluster connection, the plan,
//! the topic and the channel's Service from the channel and what was read for it; the controller
//! applies them (creating the topic, applying the Service, publishing the plan) and [`status`]
//! turns the outcome and the data plane's report into the status to write.
//!
//! Conditions follow Knative's KafkaChannel (`ConfigurationReady`, `TopicReady`,
//! `ChannelServiceReady`, `Addressable`) plus `DispatcherReady`, as Knative's consolidated channel
//! had: the data plane serves the channel's ingress route. Subscribers are reported one by one in
//! `status.subscribers[]`, ready only once the data plane runs that subscriber's generation.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::engine::plan::{ChannelPlan, KafkaConnection};
use crate::feed::channel::channel_plan;
use crate::feed::channel_config::{self, CONFIG_MAP_NAME, CONFIG_MAP_NAMESPACE};
use crate::feed::resolve::{delivery_policy, resource_id, FieldError};
use crate::kafka::topics::TopicSpec;
use crate::resources::kafka_channel::KafkaChannelStatus;
use crate::resources::{Addressable, ConfigMap, KafkaChannel, SubscriberStatus};

use super::conditions::{ConditionSet, Mark, FALSE, TRUE, UNKNOWN};
use super::lookup::Fetched;
use super::observed::{Observed, RunningResource};

pub const CONFIGURATION_READY: &str = "ConfigurationReady";
pub const TOPIC_READY: &str = "TopicReady";
pub const CHANNEL_SERVICE_READY: &str = "ChannelServiceReady";
pub const ADDRESSABLE: &str = "Addressable";
pub const DISPATCHER_READY: &str = "DispatcherReady";
pub const CONDITIONS: ConditionSet = ConditionSet {
    dependents: &[
        CONFIGURATION_READY,
        TOPIC_READY,
        CHANNEL_SERVICE_READY,
        ADDRESSABLE,
        DISPATCHER_READY,
    ],
};
/// Label on the Services the controller makes, so they are found and never mistaken for a user's.
pub const CHANNEL_LABEL: &str = "messaging.knative.dev/channel";

/// Where channel Services point: the data plane's ingress Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressService {
    pub name: String,
    pub namespace: String,
    pub cluster_domain: String,
}

impl IngressService {
    fn host(&self) -> String {
        format!(
            "{}.{}.svc.{}",
            self.name, self.namespace, self.cluster_domain
        )
    }
}

/// What a KafkaChannel should have.
#[derive(Debug, Clone)]
pub struct ChannelDesired {
    /// The cluster from `kafka-channel-config`, or what is wrong with that config.
    pub connection: Result<KafkaConnection, String>,
    /// The plan for the data plane; absent when the config or the spec is invalid.
    pub plan: Result<ChannelPlan, FieldError>,
    /// `NAME-kn-channel`: an ExternalName Service to the ingress, owned by the channel.
    pub service: Service,
    /// `http://NAME-kn-channel.NS.svc.CLUSTER_DOMAIN`.
    pub address: String,
}

impl ChannelDesired {
    pub fn topic(&self) -> Option<TopicSpec> {
        self.plan.as_ref().ok().map(|plan| TopicSpec {
            name: plan.topic.clone(),
            partitions: plan.num_partitions,
            replication_factor: plan.replication_factor,
            retention: plan.retention,
        })
    }
}

/// What applying [`ChannelDesired`] did; `None` where it was not attempted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub topic: Option<Result<(), String>>,
    pub service: Option<Result<(), String>>,
}

pub fn desired(
    channel: &KafkaChannel,
    config_map: Option<&ConfigMap>,
    fetched: &Fetched,
    ingress: &IngressService,
) -> ChannelDesired {
    let connection = match config_map {
        None => Err(format!(
            "ConfigMap {CONFIG_MAP_NAMESPACE}/{CONFIG_MAP_NAME} not found"
        )),
        Some(cm) => channel_config::kafka_connection(cm, fetched).map_err(|e| e.to_string()),
    };
    let plan = match &connection {
        Ok(conn) => channel_plan(channel, conn.clone(), fetched),
        Err(problem) => Err(FieldError::new("kafka-channel-config", problem.clone())),
    };
    let name = channel.metadata.name.clone().unwrap_or_default();
    let namespace = channel.metadata.namespace.clone().unwrap_or_default();
    let service_name = format!("{name}-kn-channel");
    ChannelDesired {
        connection,
        plan,
        address: format!(
            "http://{service_name}.{namespace}.svc.{}",
            ingress.cluster_domain
        ),
        service: Service {
            metadata: ObjectMeta {
                name: Some(service_name),
                namespace: Some(namespace),
                labels: Some(BTreeMap::from([(CHANNEL_LABEL.to_owned(), name.clone())])),
                owner_references: Some(vec![owner_reference(channel)]),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("ExternalName".into()),
                external_name: Some(ingress.host()),
                ..ServiceSpec::default()
            }),
            status: None,
        },
    }
}

fn owner_reference(channel: &KafkaChannel) -> OwnerReference {
    OwnerReference {
        api_version: crate::resources::kafka_channel::API_VERSION.into(),
        kind: crate::resources::kafka_channel::KIND.into(),
        name: channel.metadata.name.clone().unwrap_or_default(),
        uid: channel.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The status to write after applying `desired`.
pub fn status(
    channel: &KafkaChannel,
    fetched: &Fetched,
    desired: &ChannelDesired,
    applied: &Applied,
    observed: &Observed<RunningResource>,
    now: &str,
) -> KafkaChannelStatus {
    let current = channel.status.clone().unwrap_or_default();
    let generation = channel.metadata.generation.unwrap_or(0);
    let config = match &desired.connection {
        Ok(_) => Mark::ok(),
        Err(problem) => Mark::failed("InvalidConfiguration", problem.clone()),
    };
    let not_attempted =
        || Mark::unknown("NotAttempted", "waiting for a valid configuration and spec");
    let topic = match &applied.topic {
        None => not_attempted(),
        Some(Ok(())) => Mark::ok(),
        Some(Err(e)) => Mark::failed("TopicCreationFailed", e.clone()),
    };
    let service = match &applied.service {
        None => not_attempted(),
        Some(Ok(())) => Mark::ok(),
        Some(Err(e)) => Mark::failed("ChannelServiceFailed", e.clone()),
    };
    let addressable = match &applied.service {
        Some(Ok(())) => Mark::ok(),
        _ => Mark::unknown("NoService", "the address needs the channel's Service"),
    };
    let dispatcher = match (&desired.connection, &desired.plan) {
        (Err(_), _) => not_attempted(),
        (Ok(_), Err(e)) => Mark::failed("InvalidSpec", e.to_string()),
        (Ok(_), Ok(_)) => super::source::deployed_mark(observed, generation),
    };
    let conditions = CONDITIONS.apply(
        &current.conditions,
        &[
            (CONFIGURATION_READY, config),
            (TOPIC_READY, topic),
            (CHANNEL_SERVICE_READY, service),
            (ADDRESSABLE, addressable.clone()),
            (DISPATCHER_READY, dispatcher),
        ],
        now,
    );
    let address = (addressable.status == TRUE).then(|| Addressable {
        name: Some("http".into()),
        url: Some(desired.address.clone()),
        ..Addressable::default()
    });
    let dead_letter = resource_id(&channel.metadata)
        .ok()
        .and_then(|id| delivery_policy(channel.spec.delivery.as_ref(), &id.namespace, fetched).ok())
        .and_then(|policy| policy.dead_letter);
    KafkaChannelStatus {
        observed_generation: Some(generation),
        conditions,
        addresses: address.iter().cloned().collect(),
        address,
        subscribers: subscriber_statuses(channel, desired, observed),
        dead_letter_sink_uri: dead_letter.as_ref().map(|t| t.url.to_string()),
        dead_letter_sink_ca_certs: dead_letter.and_then(|t| t.ca_certs),
        ..current
    }
}

/// One entry per subscriber in the spec: ready once the data plane runs its generation and its
/// consumer is ready; False with the problem when its own spec entry is invalid.
fn subscriber_statuses(
    channel: &KafkaChannel,
    desired: &ChannelDesired,
    observed: &Observed<RunningResource>,
) -> Vec<SubscriberStatus> {
    channel
        .spec
        .subscribers
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let uid = spec.uid.clone().unwrap_or_default();
            let generation = spec.generation.unwrap_or(0);
            let own_field = format!("spec.subscribers[{index}]");
            let (ready, message) = match (&desired.plan, observed) {
                (Err(e), _) if e.field.starts_with(&own_field) => (FALSE, Some(e.to_string())),
                (Err(_), _) => (UNKNOWN, Some("the channel is not ready".to_owned())),
                (Ok(_), Observed::Running(r)) => {
                    match r.subscribers.iter().find(|s| s.uid == uid) {
                        Some(s) if s.generation == generation && s.ready => (TRUE, None),
                        Some(s) if s.generation == generation => (
                            UNKNOWN,
                            Some("initialising its consumer group's offsets".to_owned()),
                        ),
                        _ => (
                            UNKNOWN,
                            Some(format!(
                                "waiting for the data plane to run generation {generation}"
                            )),
                        ),
                    }
                }
                (Ok(_), Observed::Absent) => (
                    UNKNOWN,
                    Some("waiting for the data plane to run the channel".to_owned()),
                ),
                (Ok(_), Observed::Unavailable(reason)) => (
                    UNKNOWN,
                    Some(format!("cannot read the data plane's status: {reason}")),
                ),
            };
            SubscriberStatus {
                uid: Some(uid),
                observed_generation: Some(generation),
                ready: Some(ready.to_owned()),
                message,
                auth: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::conditions::READY;
    use crate::controller::observed::RunningSubscriber;
    use crate::resources::status::Condition;

    fn ingress() -> IngressService {
        IngressService {
            name: "kafka-bridge-ingress".into(),
            namespace: "knative-eventing".into(),
            cluster_domain: "cluster.local".into(),
        }
    }

    fn channel(extra: &str) -> KafkaChannel {
        serde_yaml_ng::from_str(&format!(
            r#"
metadata: {{name: ch, namespace: ns, uid: c-uid, generation: 2}}
spec:
  numPartitions: 3
  retentionDuration: PT1H
  delivery: {{deadLetterSink: {{uri: "http://dls.ns.svc.cluster.local"}}}}
  subscribers:
    - {{uid: u1, generation: 1, subscriberUri: "http://one"}}
    - {{uid: u2, generation: 5, subscriberUri: "http://two"}}
{extra}"#
        ))
        .unwrap()
    }

    fn config() -> ConfigMap {
        serde_yaml_ng::from_str("data: {bootstrap.servers: \"kafka:9092\"}").unwrap()
    }

    fn running(
        generation: i64,
        ready: bool,
        subs: &[(&str, i64, bool)],
    ) -> Observed<RunningResource> {
        Observed::Running(RunningResource {
            generation,
            ready,
            subscribers: subs
                .iter()
                .map(|(uid, generation, ready)| RunningSubscriber {
                    uid: (*uid).into(),
                    generation: *generation,
                    ready: *ready,
                })
                .collect(),
        })
    }

    fn applied_ok() -> Applied {
        Applied {
            topic: Some(Ok(())),
            service: Some(Ok(())),
        }
    }

    fn condition<'a>(status: &'a KafkaChannelStatus, ty: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == ty).unwrap()
    }

    #[test]
    fn desired_topic_and_service_follow_the_spec() {
        let c = channel("");
        let fetched = Fetched::new("cluster.local");
        let d = desired(&c, Some(&config()), &fetched, &ingress());
        let topic = d.topic().unwrap();
        assert_eq!(topic.name, "knative-messaging-kafka.ns.ch");
        assert_eq!((topic.partitions, topic.replication_factor), (3, 1));
        assert_eq!(topic.retention, std::time::Duration::from_secs(3600));
        assert_eq!(d.address, "http://ch-kn-channel.ns.svc.cluster.local");
        let svc = serde_json::to_value(&d.service).unwrap();
        assert_eq!(svc["metadata"]["name"], "ch-kn-channel");
        assert_eq!(svc["metadata"]["namespace"], "ns");
        assert_eq!(svc["spec"]["type"], "ExternalName");
        assert_eq!(
            svc["spec"]["externalName"],
            "kafka-bridge-ingress.knative-eventing.svc.cluster.local"
        );
        let owner = &svc["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], "c-uid");
        assert_eq!(owner["kind"], "KafkaChannel");
        assert_eq!(owner["controller"], true);
    }

    #[test]
    fn a_running_channel_is_ready_with_address_and_subscribers() {
        let c = channel("");
        let fetched = Fetched::new("cluster.local");
        let d = desired(&c, Some(&config()), &fetched, &ingress());
        let observed = running(2, true, &[("u1", 1, true), ("u2", 4, true)]);
        let s = status(&c, &fetched, &d, &applied_ok(), &observed, "now");
        assert_eq!(condition(&s, READY).status, TRUE, "{:?}", s.conditions);
        assert_eq!(
            s.address.as_ref().and_then(|a| a.url.as_deref()),
            Some("http://ch-kn-channel.ns.svc.cluster.local")
        );
        assert_eq!(s.addresses.len(), 1);
        assert_eq!(
            s.dead_letter_sink_uri.as_deref(),
            Some("http://dls.ns.svc.cluster.local/")
        );
        let subs: Vec<_> = s
            .subscribers
            .iter()
            .map(|s| {
                (
                    s.uid.as_deref().unwrap(),
                    s.observed_generation.unwrap(),
                    s.ready.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            subs,
            [("u1", 1, TRUE), ("u2", 5, UNKNOWN)],
            "u2 runs an older generation"
        );
    }

    #[test]
    fn each_failure_has_its_condition() {
        let fetched = Fetched::new("cluster.local");
        let c = channel("");
        let good = desired(&c, Some(&config()), &fetched, &ingress());
        let ready = running(2, true, &[]);
        let no_config = desired(&c, None, &fetched, &ingress());
        let s = status(&c, &fetched, &no_config, &Applied::default(), &ready, "now");
        let cfg = condition(&s, CONFIGURATION_READY);
        assert_eq!(
            (cfg.status.as_str(), cfg.reason.as_deref()),
            (FALSE, Some("InvalidConfiguration"))
        );
        assert!(cfg
            .message
            .as_deref()
            .unwrap()
            .contains("kafka-channel-config not found"));
        assert_eq!(
            condition(&s, READY).reason.as_deref(),
            Some("InvalidConfiguration")
        );
        assert!(s.address.is_none());

        let topic_failed = Applied {
            topic: Some(Err("broker down".into())),
            service: Some(Ok(())),
        };
        let s = status(&c, &fetched, &good, &topic_failed, &ready, "now");
        assert_eq!(
            condition(&s, TOPIC_READY).reason.as_deref(),
            Some("TopicCreationFailed")
        );
        assert_eq!(condition(&s, READY).status, FALSE);

        let service_failed = Applied {
            topic: Some(Ok(())),
            service: Some(Err("forbidden".into())),
        };
        let s = status(&c, &fetched, &good, &service_failed, &ready, "now");
        assert_eq!(condition(&s, CHANNEL_SERVICE_READY).status, FALSE);
        assert_eq!(condition(&s, ADDRESSABLE).status, UNKNOWN);

        let s = status(&c, &fetched, &good, &applied_ok(), &Observed::Absent, "now");
        assert_eq!(
            condition(&s, DISPATCHER_READY).reason.as_deref(),
            Some("Deploying")
        );
        assert!(s
            .subscribers
            .iter()
            .all(|s| s.ready.as_deref() == Some(UNKNOWN)));
    }

    #[test]
    fn an_invalid_subscriber_is_reported_on_its_own_entry() {
        let c = channel("    - {uid: u3, generation: 1, subscriberUri: \"not a url\"}");
        let fetched = Fetched::new("cluster.local");
        let d = desired(&c, Some(&config()), &fetched, &ingress());
        let s = status(&c, &fetched, &d, &applied_ok(), &Observed::Absent, "now");
        let third = &s.subscribers[2];
        assert_eq!(third.ready.as_deref(), Some(FALSE));
        assert!(
            third
                .message
                .as_deref()
                .unwrap()
                .starts_with("spec.subscribers[2]"),
            "{third:?}"
        );
        assert_eq!(s.subscribers[0].ready.as_deref(), Some(UNKNOWN));
        assert_eq!(
            condition(&s, DISPATCHER_READY).reason.as_deref(),
            Some("InvalidSpec")
        );
    }
}
