//! The data-plane contract: the plan the controller resolves from a cluster's KafkaSources and
//! KafkaChannels, written as JSON into the Secret `kafka-bridge-contract` (key `contract.json`)
//! and read by `kafka-bridge dataplane` from the mounted file.
//!
//! The JSON is a [`Plan`] (camelCase fields, durations as whole milliseconds in `...Ms` fields,
//! see [`plan`](super::plan)) plus a `revision` the controller increases on every change and the
//! data plane reports back in its status:
//!
//! ```json
//! {"revision": 7, "sources": [{"id": {"namespace": "ns", "name": "s"}, "generation": 2, ...}],
//!  "channels": [...]}
//! ```
//!
//! Unknown fields are ignored, so a newer controller can add some without breaking an older data
//! plane. Reading checks what the engine relies on and JSON cannot express: unique resources and
//! subscribers, and non-empty topic lists.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::plan::Plan;

/// Where the controller's Secret is mounted in the data plane's pod.
pub const DEFAULT_PATH: &str = "/etc/kafka-bridge/contract/contract.json";
/// The Secret the controller writes, and its key.
pub const SECRET_NAME: &str = "kafka-bridge-contract";
pub const SECRET_KEY: &str = "contract.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// Increases with every contract the controller writes.
    pub revision: u64,
    #[serde(flatten)]
    pub plan: Plan,
}

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("at {path}: {problem}")]
    Field { path: String, problem: String },
    #[error("{0}")]
    Invalid(String),
}

/// Only the revision, read before the plan so each part's errors carry their own path.
#[derive(Deserialize)]
struct Revision {
    revision: u64,
}

impl Contract {
    pub fn new(revision: u64, plan: Plan) -> Self {
        Self { revision, plan }
    }

    /// Parses and checks a contract.
    pub fn from_json(bytes: &[u8]) -> Result<Contract, ContractError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(ContractError::Json)?;
        if !value.is_object() {
            return Err(ContractError::Invalid(
                "the contract is not a JSON object".into(),
            ));
        }
        let Revision { revision } = at_path(&value)?;
        // The plan is read from the same object on its own: through `flatten` the field paths of
        // its errors would be lost.
        let plan: Plan = at_path(&value)?;
        check(&plan)?;
        Ok(Contract { revision, plan })
    }

    /// The JSON the controller writes (indented: it is read by people too, with `kubectl`).
    pub fn to_json(&self) -> Vec<u8> {
        // Every map in a plan has string keys and no field serialises fallibly.
        serde_json::to_vec_pretty(self).expect("a contract always serialises to JSON")
    }
}

fn at_path<'de, T: Deserialize<'de>>(value: &'de serde_json::Value) -> Result<T, ContractError> {
    serde_path_to_error::deserialize(value).map_err(|e| ContractError::Field {
        path: e.path().to_string(),
        problem: e.inner().to_string(),
    })
}

/// What the engine keys its running resources by must be unique; a source needs topics.
fn check(plan: &Plan) -> Result<(), ContractError> {
    let mut sources = BTreeSet::new();
    for (index, source) in plan.sources.iter().enumerate() {
        if !sources.insert(&source.id) {
            return Err(ContractError::Invalid(format!(
                "sources[{index}]: KafkaSource {} appears more than once",
                source.id
            )));
        }
        if source.topics.is_empty() || source.topics.iter().any(String::is_empty) {
            return Err(ContractError::Invalid(format!(
                "sources[{index}].topics: KafkaSource {} needs non-empty topic names",
                source.id
            )));
        }
    }
    let mut channels = BTreeSet::new();
    for (index, channel) in plan.channels.iter().enumerate() {
        if !channels.insert(&channel.id) {
            return Err(ContractError::Invalid(format!(
                "channels[{index}]: KafkaChannel {} appears more than once",
                channel.id
            )));
        }
        let mut uids = BTreeSet::new();
        for (sub_index, sub) in channel.subscribers.iter().enumerate() {
            if !uids.insert(&sub.uid) {
                return Err(ContractError::Invalid(format!(
                    "channels[{index}].subscribers[{sub_index}]: uid {:?} of KafkaChannel {} \
                     appears more than once",
                    sub.uid, channel.id
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use url::Url;

    use super::*;
    use crate::delivery::policy::{BackoffPolicy, DeliveryPolicy, Target};
    use crate::engine::plan::{
        ChannelPlan, InitialOffset, KafkaConnection, KeyType, Ordering, ResourceId, SourcePlan,
        SubscriberPlan,
    };

    fn target(url: &str) -> Target {
        Target::new(Url::parse(url).unwrap())
    }

    fn source() -> SourcePlan {
        SourcePlan {
            id: ResourceId::new("ns", "src"),
            generation: 3,
            kafka: KafkaConnection {
                bootstrap_servers: "k1:9092,k2:9092".into(),
                properties: BTreeMap::from([("security.protocol".into(), "SASL_SSL".into())]),
            },
            topics: vec!["t1".into(), "t2".into()],
            consumer_group: "g".into(),
            initial_offset: InitialOffset::Earliest,
            consumers: 2,
            ordering: Ordering::Unordered,
            sink: Target {
                url: Url::parse("https://sink.example/p").unwrap(),
                ca_certs: Some("PEM".into()),
            },
            delivery: DeliveryPolicy {
                retry: 2,
                backoff_policy: BackoffPolicy::Linear,
                backoff_delay: Duration::from_millis(250),
                timeout: None,
                retry_after_max: Some(Duration::ZERO),
                dead_letter: Some(target("http://dl.example/")),
            },
            ce_overrides: BTreeMap::from([("team".into(), "a".into())]),
            key_type: KeyType::ByteArray,
        }
    }

    fn subscriber(uid: &str) -> SubscriberPlan {
        SubscriberPlan {
            uid: uid.into(),
            generation: 1,
            subscriber: Some(target("http://sub.example/")),
            reply: None,
            delivery: DeliveryPolicy::source_default(),
            consumer_group: format!("kafka.ns.ch.{uid}"),
            ordering: Ordering::Ordered,
        }
    }

    fn channel(uids: &[&str]) -> ChannelPlan {
        ChannelPlan {
            id: ResourceId::new("ns", "ch"),
            generation: 5,
            kafka: KafkaConnection::plaintext("k:9092"),
            topic: "knative-messaging-kafka.ns.ch".into(),
            num_partitions: 4,
            replication_factor: 1,
            retention: Duration::from_secs(7 * 24 * 3600),
            subscribers: uids.iter().map(|u| Arc::new(subscriber(u))).collect(),
        }
    }

    fn contract() -> Contract {
        Contract::new(
            9,
            Plan {
                sources: vec![Arc::new(source())],
                channels: vec![Arc::new(channel(&["u1", "u2"]))],
            },
        )
    }

    #[test]
    fn round_trips() {
        let contract = contract();
        assert_eq!(Contract::from_json(&contract.to_json()).unwrap(), contract);
        let empty = Contract::new(0, Plan::default());
        assert_eq!(Contract::from_json(&empty.to_json()).unwrap(), empty);
        assert_eq!(
            Contract::from_json(br#"{"revision": 4}"#).unwrap(),
            Contract::new(4, Plan::default()),
            "absent lists are empty"
        );
    }

    /// The wire format is what the controller and the data plane agree on: pinned here.
    #[test]
    fn wire_format() {
        let json: serde_json::Value = serde_json::from_slice(&contract().to_json()).unwrap();
        assert_eq!(json["revision"], 9);
        assert_eq!(
            json["sources"][0],
            serde_json::json!({
                "id": {"namespace": "ns", "name": "src"},
                "generation": 3,
                "kafka": {
                    "bootstrapServers": "k1:9092,k2:9092",
                    "properties": {"security.protocol": "SASL_SSL"},
                },
                "topics": ["t1", "t2"],
                "consumerGroup": "g",
                "initialOffset": "earliest",
                "consumers": 2,
                "ordering": "unordered",
                "sink": {"url": "https://sink.example/p", "caCerts": "PEM"},
                "delivery": {
                    "retry": 2,
                    "backoffPolicy": "linear",
                    "backoffDelayMs": 250,
                    "retryAfterMaxMs": 0,
                    "deadLetter": {"url": "http://dl.example/"},
                },
                "ceOverrides": {"team": "a"},
                "keyType": "byte-array",
            })
        );
        let channel = &json["channels"][0];
        assert_eq!(channel["retentionMs"], 604_800_000u64);
        assert_eq!(channel["numPartitions"], 4);
        assert_eq!(channel["generation"], 5);
        assert_eq!(channel["subscribers"][1]["uid"], "u2");
        assert_eq!(channel["subscribers"][1]["consumerGroup"], "kafka.ns.ch.u2");
        assert_eq!(channel["subscribers"][1]["delivery"]["timeoutMs"], 600_000);
    }

    #[test]
    fn defaults_for_optional_fields() {
        let json = br#"{"revision": 1, "sources": [{
            "id": {"namespace": "ns", "name": "s"},
            "kafka": {"bootstrapServers": "k:9092"},
            "topics": ["t"], "consumerGroup": "g", "initialOffset": "latest", "consumers": 1,
            "ordering": "ordered", "sink": {"url": "http://s/"},
            "delivery": {"retry": 0, "backoffPolicy": "exponential", "backoffDelayMs": 100}
        }]}"#;
        let contract = Contract::from_json(json).unwrap();
        let source = &contract.plan.sources[0];
        assert_eq!(source.generation, 0);
        assert_eq!(source.key_type, KeyType::String);
        assert!(source.ce_overrides.is_empty() && source.kafka.properties.is_empty());
        assert_eq!(source.delivery.timeout, None);
    }

    #[test]
    fn errors_name_the_problem() {
        let mut bad_url = serde_json::to_value(contract()).unwrap();
        bad_url["channels"][0]["subscribers"][1]["subscriber"]["url"] = "not a url".into();
        let mut no_revision = serde_json::to_value(contract()).unwrap();
        no_revision.as_object_mut().unwrap().remove("revision");
        let mut bad_enum = serde_json::to_value(contract()).unwrap();
        bad_enum["sources"][0]["ordering"] = "sideways".into();
        let mut dup_source = contract();
        dup_source.plan.sources.push(Arc::new(source()));
        let dup_uid = Contract::new(
            1,
            Plan {
                sources: vec![],
                channels: vec![Arc::new(channel(&["u1", "u1"]))],
            },
        );
        let mut no_topics = contract();
        Arc::make_mut(&mut no_topics.plan.sources[0]).topics.clear();
        let json = |v: serde_json::Value| serde_json::to_vec(&v).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{\"revision\": 1,".to_vec(), "not valid JSON: EOF"),
            (b"[]".to_vec(), "not a JSON object"),
            (json(no_revision), "missing field `revision`"),
            (
                json(bad_url),
                "at channels[0].subscribers[1].subscriber.url: \"not a url\" is not a URL",
            ),
            (json(bad_enum), "at sources[0].ordering: unknown variant `sideways`"),
            (
                dup_source.to_json(),
                "sources[1]: KafkaSource ns/src appears more than once",
            ),
            (
                dup_uid.to_json(),
                "channels[0].subscribers[1]: uid \"u1\" of KafkaChannel ns/ch appears more than once",
            ),
            (no_topics.to_json(), "sources[0].topics: KafkaSource ns/src"),
        ];
        for (bytes, want) in cases {
            let error = Contract::from_json(&bytes).unwrap_err().to_string();
            assert!(error.contains(want), "{error:?} does not contain {want:?}");
        }
    }
}
