//! The standalone feed: Knative manifests on disk -> a [`Plan`].
//!
//! KafkaSources (`v1beta1` and `v1`) become [`SourcePlan`](crate::engine::plan::SourcePlan)s;
//! `v1` Secrets answer their `net` references (same namespace); any other document is not run,
//! but a sink `ref` may point at it and resolves to its `status.address`. Nothing here talks to a
//! cluster: a `ref` to an object not in the files, or without an address, is an error.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::plan::{Plan, SourcePlan};
use crate::resources::kafka_source::{API_VERSIONS, KIND as KAFKA_SOURCE};
use crate::resources::{AddressStatus, Addressable, KReference, KafkaSource, Secret};

use super::error::{DocRef, FeedError};
use super::files::{self, Document};
use super::resolve::{self, FieldError, Lookup, DEFAULT_NAMESPACE};
use super::target::describe;

/// Reads `paths` (files, or directories of `.yaml`/`.yml`/`.json`, not recursed) and resolves
/// every KafkaSource in them. Blocking file I/O: call it from `spawn_blocking` in async code.
pub fn load_plan(paths: &[PathBuf]) -> Result<Plan, FeedError> {
    plan_from_documents(&files::read_documents(paths)?)
}

/// Resolves the KafkaSources among `documents`, in document order.
pub fn plan_from_documents(documents: &[Document]) -> Result<Plan, FeedError> {
    let index = Index::build(documents)?;
    let mut seen: HashMap<_, &DocRef> = HashMap::new();
    let mut plan = Plan::default();
    for doc in documents {
        let api_version = doc.str_field("apiVersion").unwrap_or_default();
        match doc.str_field("kind") {
            Some(KAFKA_SOURCE) if API_VERSIONS.contains(&api_version) => {
                let source = resolve_source(doc, &index)?;
                if let Some(first) = seen.insert(source.id.clone(), &doc.at) {
                    return Err(FeedError::Duplicate {
                        doc: doc.at.clone(),
                        resource: format!("{KAFKA_SOURCE} {}", source.id),
                        first: first.clone(),
                    });
                }
                plan.sources.push(Arc::new(source));
            }
            Some(KAFKA_SOURCE) => tracing::warn!(
                "{}: skipping KafkaSource with apiVersion {api_version:?}; supported: {API_VERSIONS:?}",
                doc.at
            ),
            Some("Secret") if api_version == "v1" => {}
            Some(kind) => tracing::warn!(
                "{}: {kind} ({api_version}) is not run in standalone mode; \
                 it is only used to resolve sink refs",
                doc.at
            ),
            None => tracing::warn!("{}: skipping a document without a kind", doc.at),
        }
    }
    if plan.sources.is_empty() {
        tracing::warn!("no KafkaSource found: nothing to run");
    }
    Ok(plan)
}

fn resolve_source(doc: &Document, index: &Index<'_>) -> Result<SourcePlan, FeedError> {
    let resource = label(KAFKA_SOURCE, doc);
    // Warnings raised while resolving (ignored fields) then say which source and file.
    let _span = tracing::warn_span!("resolve", %resource, at = %doc.at).entered();
    let invalid = |e: FieldError| FeedError::Invalid {
        doc: doc.at.clone(),
        resource: resource.clone(),
        field: e.field,
        problem: e.problem,
    };
    let source: KafkaSource = decode(doc).map_err(invalid)?;
    resolve::source_plan(&source, index).map_err(invalid)
}

/// Decodes a document into `T`, naming the field on a type error.
fn decode<T: serde::de::DeserializeOwned>(doc: &Document) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(&doc.value)
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
