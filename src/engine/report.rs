//! The per-resource status the data plane reports on `GET /status`, and the controller reads to
//! set its resources' conditions: which contract revision runs, and for each source, channel and
//! subscriber the generation running and whether it is ready.
//!
//! These types are the wire format both sides share: public, serde in both directions, camelCase.
//! Fields are only ever added (with defaults), never renamed.
//!
//! - a source is ready when its consumers have joined their group and hold partitions;
//! - a channel is ready when its topic exists and its ingress route serves;
//! - a subscriber is ready when its group's offsets are initialised and its consumer holds
//!   partitions.

use serde::{Deserialize, Serialize};

use super::plan::ResourceId;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The revision of the contract applied last (0 when running from files).
    pub revision: u64,
    #[serde(default)]
    pub sources: Vec<SourceReport>,
    #[serde(default)]
    pub channels: Vec<ChannelReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceReport {
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    pub ready: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelReport {
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    pub ready: bool,
    #[serde(default)]
    pub subscribers: Vec<SubscriberReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriberReport {
    pub uid: String,
    pub generation: i64,
    pub ready: bool,
}

impl Report {
    /// The status of source `id`, if it runs.
    pub fn source(&self, id: &ResourceId) -> Option<&SourceReport> {
        self.sources
            .iter()
            .find(|s| s.namespace == id.namespace && s.name == id.name)
    }

    /// The status of channel `id`, if it runs.
    pub fn channel(&self, id: &ResourceId) -> Option<&ChannelReport> {
        self.channels
            .iter()
            .find(|c| c.namespace == id.namespace && c.name == id.name)
    }
}

impl ChannelReport {
    /// The status of the subscriber with `uid`, if it runs.
    pub fn subscriber(&self, uid: &str) -> Option<&SubscriberReport> {
        self.subscribers.iter().find(|s| s.uid == uid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_and_lookups() {
        let report = Report {
            revision: 3,
            sources: vec![SourceReport {
                namespace: "ns".into(),
                name: "s".into(),
                generation: 2,
                ready: true,
            }],
            channels: vec![ChannelReport {
                namespace: "ns".into(),
                name: "c".into(),
                generation: 4,
                ready: false,
                subscribers: vec![SubscriberReport {
                    uid: "u1".into(),
                    generation: 1,
                    ready: false,
                }],
            }],
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "revision": 3,
                "sources": [{"namespace": "ns", "name": "s", "generation": 2, "ready": true}],
                "channels": [{"namespace": "ns", "name": "c", "generation": 4, "ready": false,
                    "subscribers": [{"uid": "u1", "generation": 1, "ready": false}]}],
            })
        );
        assert_eq!(serde_json::from_value::<Report>(json).unwrap(), report);
        let channel = report.channel(&ResourceId::new("ns", "c")).unwrap();
        assert_eq!(channel.subscriber("u1").map(|s| s.generation), Some(1));
        assert!(report.source(&ResourceId::new("ns", "c")).is_none());
        assert!(report.source(&ResourceId::new("ns", "s")).unwrap().ready);
    }
}
