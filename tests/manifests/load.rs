//! Reads `manifests/` the way `kubectl apply -k` does: the files kustomization.yaml lists, each a
//! stream of YAML documents, each parsed into its typed k8s-openapi object. A document must
//! survive a round trip through its type unchanged, so a misspelt or misplaced field (which
//! k8s-openapi, like the API server without strict validation, would silently drop) fails here.

use std::fmt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::Resource;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    resources: Vec<String>,
}

/// The files kustomization.yaml lists, in its order.
pub fn kustomization_resources() -> Vec<String> {
    let path = dir().join("kustomization.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let kustomization: Kustomization =
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(kustomization.api_version, "kustomize.config.k8s.io/v1beta1");
    assert_eq!(kustomization.kind, "Kustomization");
    kustomization.resources
}

/// One YAML document of a manifest file, as plain JSON.
pub struct Document {
    pub file: String,
    /// 1-based among the file's non-empty documents.
    pub number: usize,
    pub value: Value,
}

impl Document {
    fn field(&self, name: &str) -> &str {
        self.value.get(name).and_then(Value::as_str).unwrap_or("")
    }

    pub fn kind(&self) -> &str {
        self.field("kind")
    }

    pub fn metadata(&self, name: &str) -> Option<&Value> {
        self.value.get("metadata").and_then(|m| m.get(name))
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metadata("name").and_then(Value::as_str).unwrap_or("?");
        write!(
            f,
            "{} (document {}, {} {name})",
            self.file,
            self.number,
            self.kind()
        )
    }
}

/// Every object the kustomization installs, by type.
#[derive(Default)]
pub struct Manifests {
    pub documents: Vec<Document>,
    pub crds: Vec<CustomResourceDefinition>,
    pub deployments: Vec<Deployment>,
    pub services: Vec<Service>,
    pub service_accounts: Vec<ServiceAccount>,
    pub config_maps: Vec<ConfigMap>,
    pub cluster_roles: Vec<ClusterRole>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
}

impl Manifests {
    pub fn load() -> Self {
        let mut manifests = Self::default();
        for file in kustomization_resources() {
            let text = std::fs::read_to_string(dir().join(&file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let values = serde_yaml_ng::Deserializer::from_str(&text)
                .map(|document| {
                    Value::deserialize(document).unwrap_or_else(|e| panic!("{file}: {e}"))
                })
                // A file's leading `---` (after a comment) makes an empty first document.
                .filter(|value| !value.is_null());
            for (i, value) in values.enumerate() {
                let document = Document {
                    file: file.clone(),
                    number: i + 1,
                    value,
                };
                manifests.add(&document);
                manifests.documents.push(document);
            }
        }
        manifests
    }

    fn add(&mut self, document: &Document) {
        let known = take(document, &mut self.crds)
            || take(document, &mut self.deployments)
            || take(document, &mut self.services)
            || take(document, &mut self.service_accounts)
            || take(document, &mut self.config_maps)
            || take(document, &mut self.cluster_roles)
            || take(document, &mut self.cluster_role_bindings)
            || take(document, &mut self.roles)
            || take(document, &mut self.role_bindings);
        assert!(known, "{document}: not a kind these manifests should hold");
    }

    pub fn deployment(&self, name: &str) -> &Deployment {
        self.deployments
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Deployment {name}"))
    }

    pub fn service(&self, name: &str) -> &Service {
        self.services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Service {name}"))
    }
}

/// Parses `document` into `into` when it is a `T`; whether it was.
fn take<T: Resource + DeserializeOwned + Serialize>(
    document: &Document,
    into: &mut Vec<T>,
) -> bool {
    if document.field("apiVersion") != T::API_VERSION || document.kind() != T::KIND {
        return false;
    }
    let object: T = serde_path_to_error::deserialize(&document.value)
        .unwrap_or_else(|e| panic!("{document}: {e}"));
    let round_trip = serde_json::to_value(&object).unwrap();
    if let Some(path) = first_difference(&document.value, &round_trip, "") {
        panic!(
            "{document}: `{path}` is not a field of {} (misspelt, misplaced or of the wrong type)",
            T::KIND
        );
    }
    into.push(object);
    true
}

/// The path of the first place `a` has something `b` lacks or holds differently. Numbers compare
/// by value (`1` in YAML comes back as `1.0` from an `f64` field).
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(key, value)| {
            let here = format!("{path}.{key}");
            match b.get(key) {
                Some(other) => first_difference(value, other, &here),
                None => Some(here),
            }
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(a, b, &format!("{path}[{i}]"))),
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => None,
        _ if a == b => None,
        _ => Some(path.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::first_difference;
    use serde_json::json;

    #[test]
    fn first_difference_finds_what_the_type_dropped() {
        let cases = [
            (json!({"a": 1}), json!({"a": 1.0}), None),
            (
                json!({"a": {"b": 1, "c": 2}}),
                json!({"a": {"b": 1}}),
                Some(".a.c"),
            ),
            (
                json!({"a": [1, {"x": 1}]}),
                json!({"a": [1, {}]}),
                Some(".a[1].x"),
            ),
            (json!({"a": [1, 2]}), json!({"a": [1]}), Some(".a")),
            (json!({"a": "80"}), json!({"a": 80}), Some(".a")),
            (json!({"a": null}), json!({}), Some(".a")),
        ];
        for (given, back, want) in cases {
            assert_eq!(
                first_difference(&given, &back, "").as_deref(),
                want,
                "{given} vs {back}"
            );
        }
    }
}
