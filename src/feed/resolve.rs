//! One KafkaSource -> one [`SourcePlan`]: Knative's defaults and validation, applied once.
//!
//! Pure apart from the [`Lookup`] it is given for Secrets and sink references, so every feed
//! (files standalone, a cluster's objects) resolves sources the same way.

use std::collections::BTreeMap;
use std::fmt;

use uuid::Uuid;

use crate::engine::plan::{
    InitialOffset, KafkaConnection, KeyType, Ordering, ResourceId, SourcePlan,
};
use crate::resources::kafka_source::{CONSUMER_GROUP_PREFIX, KEY_TYPE_LABEL};
use crate::resources::{self, Addressable, KReference};

use super::{net, target};

// Kept here too: sources and other feeds reach delivery resolution through this module.
pub use super::delivery::delivery_policy;

/// Namespace when `metadata.namespace` is absent, as `kubectl apply` would use.
pub const DEFAULT_NAMESPACE: &str = "default";

/// What resolution needs from outside the source itself.
pub trait Lookup {
    /// The decoded values (`data` and `stringData` merged) of Secret `namespace/name`.
    fn secret(&self, namespace: &str, name: &str) -> Option<&BTreeMap<String, Vec<u8>>>;

    /// The address `kref` (namespace already defaulted) resolves to, or why it cannot.
    fn address(&self, kref: &KReference) -> Result<Addressable, String>;
}

/// A problem at one field of the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path from the document root, e.g. `spec.delivery.backoffDelay`.
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// The id of a resource: its namespace (defaulted) and name.
pub fn resource_id(meta: &resources::ObjectMeta) -> Result<ResourceId, FieldError> {
    let name = meta.name.as_deref().filter(|n| !n.is_empty());
    let name = name.ok_or_else(|| FieldError::new("metadata.name", "required"))?;
    let namespace = meta.namespace.as_deref().filter(|n| !n.is_empty());
    Ok(ResourceId::new(
        namespace.unwrap_or(DEFAULT_NAMESPACE),
        name,
    ))
}

/// The consumer group of a source without `consumerGroup`. Knative's webhook stores a random
/// UUID once; without a webhook we derive it (UUID v5 over `namespace/name` in the URL
/// namespace) so that a restart resumes from the committed offsets.
pub fn default_consumer_group(id: &ResourceId) -> String {
    let uuid = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{}/{}", id.namespace, id.name).as_bytes(),
    );
    format!("{CONSUMER_GROUP_PREFIX}{uuid}")
}

/// The source's sink alone, resolved: what `status.sinkUri` shows, known even when another
/// field of the source is invalid.
pub fn sink_target(
    source: &resources::KafkaSource,
    lookup: &impl Lookup,
) -> Result<crate::delivery::policy::Target, FieldError> {
    let id = resource_id(&source.metadata)?;
    target::resolve(&source.spec.sink, "spec.sink", &id.namespace, lookup)
}

/// Resolves and validates one KafkaSource.
pub fn source_plan(
    source: &resources::KafkaSource,
    lookup: &impl Lookup,
) -> Result<SourcePlan, FieldError> {
    let id = resource_id(&source.metadata)?;
    let spec = &source.spec;
    let ns = id.namespace.as_str();

    let topics = non_empty_list(&spec.topics, "spec.topics")?;
    let bootstrap = non_empty_list(&spec.bootstrap_servers, "spec.bootstrapServers")?;
    if bootstrap.len() > 1 && bootstrap.iter().any(|s| s == KafkaConnection::EMBEDDED) {
        return Err(FieldError::new(
            "spec.bootstrapServers",
            format!(
                "{:?} must be the only bootstrap server",
                KafkaConnection::EMBEDDED
            ),
        ));
    }
    let kafka = KafkaConnection {
        bootstrap_servers: bootstrap.join(","),
        properties: net::properties(&spec.net, ns, lookup)?,
    };

    let consumers = spec.consumers.unwrap_or(1);
    let consumers = u32::try_from(consumers)
        .ok()
        .filter(|c| *c >= 1)
        .ok_or_else(|| FieldError::new("spec.consumers", format!("{consumers} is less than 1")))?;

    let consumer_group = match spec.consumer_group.as_deref() {
        Some(group) if !group.is_empty() => group.to_owned(),
        _ => default_consumer_group(&id),
    };

    let sink = target::resolve(&spec.sink, "spec.sink", ns, lookup)?;
    let delivery = delivery_policy(spec.delivery.as_ref(), ns, lookup)?;

    let ce_overrides = spec
        .ce_overrides
        .as_ref()
        .map(|o| o.extensions.clone())
        .unwrap_or_default();
    for name in ce_overrides.keys() {
        // Knative's rule for extension names: non-empty, ASCII letters and digits only.
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(FieldError::new(
                format!("spec.ceOverrides.extensions.{name}"),
                "extension names must be non-empty and alphanumeric",
            ));
        }
    }

    Ok(SourcePlan {
        id,
        generation: source.metadata.generation.unwrap_or(0),
        kafka,
        topics,
        consumer_group,
        initial_offset: match spec.initial_offset {
            Some(resources::InitialOffset::Earliest) => InitialOffset::Earliest,
            Some(resources::InitialOffset::Latest) | None => InitialOffset::Latest,
        },
        consumers,
        ordering: match spec.ordering {
            Some(resources::Ordering::Unordered) => Ordering::Unordered,
            Some(resources::Ordering::Ordered) | None => Ordering::Ordered,
        },
        sink,
        delivery,
        ce_overrides,
        key_type: key_type(source.metadata.labels.as_ref())?,
    })
}

fn non_empty_list(items: &[String], field: &str) -> Result<Vec<String>, FieldError> {
    if items.is_empty() {
        return Err(FieldError::new(field, "required: at least one entry"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(FieldError::new(
                format!("{field}[{i}]"),
                "must not be empty",
            ));
        }
        out.push(item.to_owned());
    }
    Ok(out)
}

/// The `kafkasources.sources.knative.dev/key-type` label; absent or empty means string.
fn key_type(labels: Option<&BTreeMap<String, String>>) -> Result<KeyType, FieldError> {
    match labels
        .and_then(|l| l.get(KEY_TYPE_LABEL))
        .map(String::as_str)
    {
        None | Some("") | Some("string") => Ok(KeyType::String),
        Some("int") => Ok(KeyType::Int),
        Some("float") => Ok(KeyType::Float),
        Some("byte-array") => Ok(KeyType::ByteArray),
        Some(other) => Err(FieldError::new(
            format!("metadata.labels.{KEY_TYPE_LABEL}"),
            format!("{other:?} is not one of string, int, float, byte-array"),
        )),
    }
}
