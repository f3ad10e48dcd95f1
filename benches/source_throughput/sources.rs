//! The KafkaSource YAML the source bench feeds the bridge, as a user writes it, one source per
//! document.

use std::fmt::Write as _;
use std::path::Path;

use crate::bridge::Bridge;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    Ordered,
    Unordered,
}

impl Ordering {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ordered => "ordered",
            Self::Unordered => "unordered",
        }
    }
}

/// One KafkaSource: reads `topic` as `group` from the earliest offset into `sink`.
pub struct Source<'a> {
    pub name: String,
    pub topic: &'a str,
    pub group: String,
    pub ordering: Ordering,
    pub sink: &'a str,
}

/// The sources as one multi-document YAML file, as `kubectl apply -f` would take it.
pub fn kafka_sources_yaml(bootstrap: &str, sources: &[Source<'_>]) -> String {
    let mut yaml = String::new();
    for source in sources {
        // Writing to a String cannot fail.
        let _ = write!(
            yaml,
            "---\n\
             apiVersion: sources.knative.dev/v1beta1\n\
             kind: KafkaSource\n\
             metadata:\n  name: {name}\n  namespace: bench\n\
             spec:\n\
             \x20 bootstrapServers:\n    - {bootstrap}\n\
             \x20 topics:\n    - {topic}\n\
             \x20 consumerGroup: {group}\n\
             \x20 initialOffset: earliest\n\
             \x20 ordering: {ordering}\n\
             \x20 sink:\n    uri: {sink}\n",
            name = source.name,
            topic = source.topic,
            group = source.group,
            ordering = source.ordering.as_str(),
            sink = source.sink,
        );
    }
    yaml
}

/// Starts a bridge on `sources`, written to `<work>/<label>.yaml`.
pub fn spawn(
    binary: &Path,
    work: &Path,
    label: &str,
    bootstrap: &str,
    sources: &[Source<'_>],
) -> anyhow::Result<Bridge> {
    Bridge::spawn(
        binary,
        work,
        label,
        &kafka_sources_yaml(bootstrap, sources),
        &[],
    )
}

/// Checks of the YAML rendering, run by `cargo test --bench source_throughput` (see main).
pub fn self_check() {
    let sources = [Source {
        name: "s0".into(),
        topic: "t",
        group: "g0".into(),
        ordering: Ordering::Unordered,
        sink: "http://127.0.0.1:1/",
    }];
    let yaml = kafka_sources_yaml("127.0.0.1:9092", &sources);
    let want = "---\napiVersion: sources.knative.dev/v1beta1\nkind: KafkaSource\nmetadata:\n  \
                name: s0\n  namespace: bench\nspec:\n  bootstrapServers:\n    - 127.0.0.1:9092\n  \
                topics:\n    - t\n  consumerGroup: g0\n  initialOffset: earliest\n  \
                ordering: unordered\n  sink:\n    uri: http://127.0.0.1:1/\n";
    assert_eq!(yaml, want);
}
