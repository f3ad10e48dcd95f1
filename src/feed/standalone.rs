//! The standalone feed: Knative manifests on disk -> a [`Plan`].
//!
//! KafkaSources (`v1beta1` and `v1`) become [`SourcePlan`]s and KafkaChannels (`v1beta1`)
//! [`ChannelPlan`]s. `v1` Secrets answer `net` references (same namespace) and the channels' auth
//! Secret; the `v1` ConfigMap `knative-eventing/kafka-channel-config` gives the channels' cluster,
//! as in a cluster. Any other document is not run, but a sink or dead-letter `ref` may point at
//! it and resolves to its `status.address`. Nothing here talks to a cluster: a `ref` to an object
//! not in the files, or without an address, is an error.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::plan::{ChannelPlan, KafkaConnection, Plan, ResourceId, SourcePlan};
use crate::resources::kafka_channel::{API_VERSION as CHANNEL_API_VERSION, KIND as KAFKA_CHANNEL};
use crate::resources::kafka_source::{API_VERSIONS, KIND as KAFKA_SOURCE};
use crate::resources::{
    AddressStatus, Addressable, ConfigMap, KReference, KafkaChannel, KafkaSource, Secret,
};

use super::channel;
use super::channel_config::{
    self, ConfigError, BOOTSTRAP_SERVERS_KEY, CONFIG_MAP_NAME, CONFIG_MAP_NAMESPACE,
};
use super::error::{DocRef, FeedError};
use super::files::{self, Document};
use super::generic_channel::{self, ChannelDefaults};
use super::resolve::{self, FieldError, Lookup, DEFAULT_NAMESPACE};
use super::target::describe;

/// Reads `paths` (files, or directories of `.yaml`/`.yml`/`.json`, not recursed) and resolves
/// every KafkaSource and KafkaChannel in them. Blocking file I/O: call it from `spawn_blocking`
/// in async code.
pub fn load_plan(paths: &[PathBuf]) -> Result<Plan, FeedError> {
    plan_from_documents(&files::read_documents(paths)?)
}

/// Resolves the KafkaSources and KafkaChannels among `documents`, each kind in document order.
pub fn plan_from_documents(documents: &[Document]) -> Result<Plan, FeedError> {
    let index = Index::build(documents)?;
    let mut seen = Seen::new();
    // Read once, when the first channel needs it.
    let mut channel_cluster: Option<KafkaConnection> = None;
    let mut plan = Plan::default();
    for doc in documents {
        let api_version = doc.str_field("apiVersion").unwrap_or_default();
        match doc.str_field("kind") {
            Some(KAFKA_SOURCE) if API_VERSIONS.contains(&api_version) => {
                let source = resolve_source(doc, &index)?;
                check_unique(&mut seen, KAFKA_SOURCE, &source.id, doc)?;
                plan.sources.push(Arc::new(source));
            }
            Some(KAFKA_SOURCE) => tracing::warn!(
                "{}: skipping KafkaSource with apiVersion {api_version:?}; supported: {API_VERSIONS:?}",
                doc.at
            ),
            Some(KAFKA_CHANNEL) if api_version == CHANNEL_API_VERSION => {
                let channel = resolve_channel(doc, &index, &mut channel_cluster)?;
                check_unique(&mut seen, KAFKA_CHANNEL, &channel.id, doc)?;
                plan.channels.push(Arc::new(channel));
            }
            Some(KAFKA_CHANNEL) => tracing::warn!(
                "{}: skipping KafkaChannel with apiVersion {api_version:?}; supported: \
                 {CHANNEL_API_VERSION:?}",
                doc.at
            ),
            Some(generic_channel::KIND) if api_version == generic_channel::API_VERSION => {
                let Some(backing) = kafka_backed_channel(doc, &index)? else {
                    tracing::warn!(
                        "{}: {} is backed by another kind of channel (its template or \
                         default-ch-webhook says so); only KafkaChannels run here",
                        doc.at,
                        label(generic_channel::KIND, doc)
                    );
                    continue;
                };
                let channel = resolve_channel(&backing, &index, &mut channel_cluster)?;
                check_unique(&mut seen, KAFKA_CHANNEL, &channel.id, doc)?;
                plan.channels.push(Arc::new(channel));
            }
            Some("Secret" | "ConfigMap") if api_version == "v1" => {}
            Some(kind) => tracing::warn!(
                "{}: {kind} ({api_version}) is not run in standalone mode; \
                 it is only used to resolve sink refs",
                doc.at
            ),
            None => tracing::warn!("{}: skipping a document without a kind", doc.at),
        }
    }
    if plan.sources.is_empty() && plan.channels.is_empty() {
        tracing::warn!("no KafkaSource or KafkaChannel found: nothing to run");
    }
    Ok(plan)
}

/// Where each resource, by kind and id, was first defined.
type Seen<'a> = HashMap<(&'static str, ResourceId), &'a DocRef>;

fn check_unique<'a>(
    seen: &mut Seen<'a>,
    kind: &'static str,
    id: &ResourceId,
    doc: &'a Document,
) -> Result<(), FeedError> {
    match seen.insert((kind, id.clone()), &doc.at) {
        Some(first) => Err(FeedError::Duplicate {
            doc: doc.at.clone(),
            resource: format!("{kind} {id}"),
            first: first.clone(),
        }),
        None => Ok(()),
    }
}

fn resolve_source(doc: &Document, index: &Index<'_>) -> Result<SourcePlan, FeedError> {
    let resource = label(KAFKA_SOURCE, doc);
    // Warnings raised while resolving (ignored fields) then say which source and file.
    let _span = tracing::warn_span!("resolve", %resource, at = %doc.at).entered();
    let source: KafkaSource = decode_resource(doc).map_err(|e| invalid(doc, &resource, e))?;
    resolve::source_plan(&source, index).map_err(|e| invalid(doc, &resource, e))
}

fn resolve_channel(
    doc: &Document,
    index: &Index<'_>,
    cluster: &mut Option<KafkaConnection>,
) -> Result<ChannelPlan, FeedError> {
    let resource = label(KAFKA_CHANNEL, doc);
    let _span = tracing::warn_span!("resolve", %resource, at = %doc.at).entered();
    let channel: KafkaChannel = decode_resource(doc).map_err(|e| invalid(doc, &resource, e))?;
    let kafka = match cluster {
        Some(kafka) => kafka.clone(),
        None => cluster
            .insert(channel_cluster(doc, &resource, index)?)
            .clone(),
    };
    channel::channel_plan(&channel, kafka, index).map_err(|e| invalid(doc, &resource, e))
}

/// A generic Channel as the KafkaChannel that backs it (same name, namespace and place in the
/// files), or `None` when its template is another kind of channel.
fn kafka_backed_channel(doc: &Document, index: &Index<'_>) -> Result<Option<Document>, FeedError> {
    let resource = label(generic_channel::KIND, doc);
    let defaults = match index
        .config_map(CONFIG_MAP_NAMESPACE, generic_channel::DEFAULTS_CONFIG_MAP)?
    {
        None => None,
        Some(cm_doc) => {
            let cm_resource = label("ConfigMap", cm_doc);
            let config_map: ConfigMap =
                decode(cm_doc).map_err(|e| invalid(cm_doc, &cm_resource, e))?;
            match config_map.data.get(generic_channel::DEFAULTS_KEY) {
                None => None,
                Some(text) => Some(
                    ChannelDefaults::parse(text).map_err(|e| invalid(cm_doc, &cm_resource, e))?,
                ),
            }
        }
    };
    let backing =
        generic_channel::backing_kafka_channel(&doc.value, namespace_of(doc), defaults.as_ref())
            .map_err(|e| invalid(doc, &resource, e))?;
    Ok(backing.map(|value| Document {
        at: doc.at.clone(),
        value,
    }))
}

/// The channels' cluster, from `kafka-channel-config`. A problem in the ConfigMap or its Secret
/// points at that document; a missing ConfigMap at the channel (`doc`, `resource`) needing it.
fn channel_cluster(
    doc: &Document,
    resource: &str,
    index: &Index<'_>,
) -> Result<KafkaConnection, FeedError> {
    let Some(cm_doc) = index.config_map(CONFIG_MAP_NAMESPACE, CONFIG_MAP_NAME)? else {
        return Err(FeedError::MissingConfigMap {
            doc: doc.at.clone(),
            resource: resource.to_owned(),
            namespace: CONFIG_MAP_NAMESPACE,
            name: CONFIG_MAP_NAME,
            key: BOOTSTRAP_SERVERS_KEY,
            hint: "KafkaChannels take their Kafka cluster from it, as in a cluster \
                   (`bootstrap.servers: embedded` runs one in this process)",
        });
    };
    let cm_resource = label("ConfigMap", cm_doc);
    let needed_by = |e: FieldError| FieldError {
        problem: format!("{} (needed by {resource})", e.problem),
        ..e
    };
    let config_map: ConfigMap =
        decode(cm_doc).map_err(|e| invalid(cm_doc, &cm_resource, needed_by(e)))?;
    channel_config::kafka_connection(&config_map, index).map_err(|e| match e {
        ConfigError::ConfigMap(e) => invalid(cm_doc, &cm_resource, needed_by(e)),
        ConfigError::Secret { id, error } => {
            let error = needed_by(error);
            FeedError::Invalid {
                // The Secret was found in the files, so its document is known.
                doc: index.secret_doc(&id).unwrap_or(&cm_doc.at).clone(),
                resource: format!("Secret {id}"),
                field: error.field,
                problem: error.problem,
            }
        }
    })
}

fn invalid(doc: &Document, resource: &str, e: FieldError) -> FeedError {
    FeedError::Invalid {
        doc: doc.at.clone(),
        resource: resource.to_owned(),
        field: e.field,
        problem: e.problem,
    }
}

/// Decodes a document into `T`, naming the field on a type error.
fn decode<T: serde::de::DeserializeOwned>(doc: &Document) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(&doc.value)
        .map_err(|e| FieldError::new(e.path().to_string(), e.inner().to_string()))
}

/// Decodes a custom resource. `metadata` and `spec` may be left out of a manifest (a KafkaChannel
/// with every default has no spec); the object types need them, so they start out empty.
fn decode_resource<T: serde::de::DeserializeOwned>(doc: &Document) -> Result<T, FieldError> {
    let mut value = doc.value.clone();
    if let Some(object) = value.as_object_mut() {
        for field in ["metadata", "spec"] {
            if object.get(field).is_none_or(serde_json::Value::is_null) {
                object.insert(field.into(), serde_json::json!({}));
            }
        }
    }
    serde_path_to_error::deserialize(&value)
        .map_err(|e| FieldError::new(e.path().to_string(), e.inner().to_string()))
}

/// `Kind namespace/name` from the raw document, for messages.
fn label(kind: &str, doc: &Document) -> String {
    let namespace = doc.meta_str("namespace").filter(|n| !n.is_empty());
    let name = doc
        .meta_str("name")
        .filter(|n| !n.is_empty())
        .unwrap_or("(unnamed)");
    format!("{kind} {}/{name}", namespace.unwrap_or(DEFAULT_NAMESPACE))
}

fn namespace_of(doc: &Document) -> &str {
    doc.meta_str("namespace")
        .filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
}

/// A Secret's decoded values, and where it was defined.
type IndexedSecret<'a> = (&'a DocRef, BTreeMap<String, Vec<u8>>);

/// Secrets by namespace/name, and every document for sink refs.
struct Index<'a> {
    secrets: HashMap<(String, String), IndexedSecret<'a>>,
    documents: &'a [Document],
}

impl<'a> Index<'a> {
    fn build(documents: &'a [Document]) -> Result<Self, FeedError> {
        let mut secrets = HashMap::new();
        for doc in documents {
            if doc.str_field("apiVersion") != Some("v1") || doc.str_field("kind") != Some("Secret")
            {
                continue;
            }
            let resource = label("Secret", doc);
            let invalid = |field: String, problem: String| FeedError::Invalid {
                doc: doc.at.clone(),
                resource: resource.clone(),
                field,
                problem,
            };
            let secret: Secret = decode(doc).map_err(|e| invalid(e.field, e.problem))?;
            let values = secret.values().map_err(|e| {
                invalid(
                    format!("data.{}", e.key),
                    format!("not valid base64: {}", e.reason),
                )
            })?;
            let Some(name) = doc.meta_str("name").filter(|n| !n.is_empty()) else {
                return Err(invalid("metadata.name".into(), "required".into()));
            };
            let key = (namespace_of(doc).to_owned(), name.to_owned());
            if let Some((first, _)) = secrets.insert(key, (&doc.at, values)) {
                return Err(FeedError::Duplicate {
                    doc: doc.at.clone(),
                    resource,
                    first: first.clone(),
                });
            }
        }
        Ok(Self { secrets, documents })
    }

    /// Where Secret `id` is defined.
    fn secret_doc(&self, id: &ResourceId) -> Option<&'a DocRef> {
        self.secrets
            .get(&(id.namespace.clone(), id.name.clone()))
            .map(|(at, _)| *at)
    }

    /// The `v1` ConfigMap `namespace/name`, if the files hold it (once).
    fn config_map(&self, namespace: &str, name: &str) -> Result<Option<&'a Document>, FeedError> {
        let mut found = self.documents.iter().filter(|doc| {
            doc.str_field("apiVersion") == Some("v1")
                && doc.str_field("kind") == Some("ConfigMap")
                && doc.meta_str("name") == Some(name)
                && namespace_of(doc) == namespace
        });
        let first = found.next();
        if let (Some(first), Some(again)) = (first, found.next()) {
            return Err(FeedError::Duplicate {
                doc: again.at.clone(),
                resource: format!("ConfigMap {namespace}/{name}"),
                first: first.at.clone(),
            });
        }
        Ok(first)
    }

    fn find(&self, kref: &KReference) -> Option<&'a Document> {
        let namespace = kref.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        self.documents.iter().find(|doc| {
            let api_version = doc.str_field("apiVersion").unwrap_or_default();
            let version_matches = if kref.api_version.is_empty() {
                // `group` alone: any version of that group (core has the empty group).
                let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                Some(group) == kref.group.as_deref()
            } else {
                api_version == kref.api_version
            };
            version_matches
                && doc.str_field("kind") == Some(kref.kind.as_str())
                && doc.meta_str("name") == Some(kref.name.as_str())
                && namespace_of(doc) == namespace
        })
    }
}

impl Lookup for Index<'_> {
    fn secret(&self, namespace: &str, name: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
        self.secrets
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(|(_, values)| values)
    }

    fn address(&self, kref: &KReference) -> Result<Addressable, String> {
        const USE_URI: &str = "standalone mode resolves a ref only to a document in the given \
                               files that has status.address.url; give the sink as a `uri` instead";
        let shown = describe(kref);
        let Some(doc) = self.find(kref) else {
            return Err(format!(
                "cannot resolve {shown}: no such document; {USE_URI}"
            ));
        };
        let status: AddressStatus = match doc.value.get("status") {
            None => AddressStatus::default(),
            Some(status) => serde_json::from_value(status.clone()).map_err(|e| {
                format!(
                    "cannot resolve {shown}: its status in {} is malformed: {e}",
                    doc.at
                )
            })?,
        };
        match status.select(kref.address.as_deref()) {
            Some(address) if address.url.as_deref().is_some_and(|u| !u.is_empty()) => {
                Ok(address.clone())
            }
            _ => {
                let which = match kref.address.as_deref().filter(|a| !a.is_empty()) {
                    Some(name) => format!("no status.addresses entry named {name:?} with a url"),
                    None => "no status.address.url".to_owned(),
                };
                Err(format!(
                    "cannot resolve {shown}: {} has {which}; {USE_URI}",
                    doc.at
                ))
            }
        }
    }
}

#[cfg(test)]
#[path = "standalone_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "standalone_channel_tests.rs"]
mod channel_tests;
