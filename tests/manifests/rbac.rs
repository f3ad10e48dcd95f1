//! What a ServiceAccount may do under the manifests' RBAC, evaluated as the API server's
//! authorizer does: a request is allowed when some rule of a role bound to the account matches
//! its API group, resource (with subresource), verb, namespace and, when the rule names
//! resources, the object's name. Aggregated ClusterRoles get the rules of the manifests'
//! ClusterRoles their selectors match, as the aggregation controller would fill them in (a real
//! cluster adds Knative's own).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, RoleRef, Subject};

use super::load::Manifests;

/// An API request. `namespace: None` is a request across all namespaces (or for an object in
/// any namespace, such as a Secret a user's KafkaSource names), which only a ClusterRoleBinding
/// grants.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub verb: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
}

impl fmt::Display for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        write!(f, "{} {group}/{}", self.verb, self.resource)?;
        match self.namespace {
            Some(namespace) => write!(f, " in {namespace}")?,
            None => write!(f, " in any namespace")?,
        }
        if let Some(name) = self.name {
            write!(f, " named {name}")?;
        }
        Ok(())
    }
}

/// A rule granted to an account, and where: `namespace: None` for a ClusterRoleBinding.
#[derive(Debug, Clone)]
pub struct Grant {
    pub role: String,
    pub rule: PolicyRule,
    pub namespace: Option<String>,
    /// Whether the rule came into its role by aggregation rather than being written in it.
    pub aggregated: bool,
}

impl Grant {
    pub fn allows(&self, request: &Request<'_>) -> bool {
        let in_scope = match (&self.namespace, request.namespace) {
            (None, _) => true,
            (Some(granted), Some(asked)) => granted == asked,
            (Some(_), None) => false,
        };
        let names = self.rule.resource_names.as_deref().unwrap_or_default();
        let named = names.is_empty() || request.name.is_some_and(|n| names.iter().any(|g| g == n));
        in_scope
            && named
            && contains(self.rule.api_groups.as_deref(), request.group)
            && contains(self.rule.resources.as_deref(), request.resource)
            && contains(Some(&self.rule.verbs), request.verb)
    }
}

fn contains(list: Option<&[String]>, item: &str) -> bool {
    list.unwrap_or_default().iter().any(|x| x == item)
}

fn binds(subjects: Option<&[Subject]>, namespace: &str, account: &str) -> bool {
    subjects.unwrap_or_default().iter().any(|s| {
        s.kind == "ServiceAccount" && s.name == account && s.namespace.as_deref() == Some(namespace)
    })
}

/// Every rule granted to ServiceAccount `namespace/account`.
pub fn grants(manifests: &Manifests, namespace: &str, account: &str) -> Vec<Grant> {
    let mut grants = Vec::new();
    for binding in &manifests.cluster_role_bindings {
        if binds(binding.subjects.as_deref(), namespace, account) {
            grants.extend(role_rules(manifests, &binding.role_ref, None));
        }
    }
    for binding in &manifests.role_bindings {
        if binds(binding.subjects.as_deref(), namespace, account) {
            let namespace = binding.metadata.namespace.clone();
            assert!(namespace.is_some(), "RoleBinding without a namespace");
            grants.extend(role_rules(manifests, &binding.role_ref, namespace));
        }
    }
    grants
}

fn role_rules(manifests: &Manifests, role_ref: &RoleRef, namespace: Option<String>) -> Vec<Grant> {
    let grant = |rule: &PolicyRule, aggregated: bool| Grant {
        role: format!("{} {}", role_ref.kind, role_ref.name),
        rule: rule.clone(),
        namespace: namespace.clone(),
        aggregated,
    };
    match role_ref.kind.as_str() {
        "ClusterRole" => {
            let role = cluster_role(manifests, &role_ref.name);
            let own = role.rules.iter().flatten().map(|r| grant(r, false));
            let aggregated = aggregated_rules(manifests, role);
            own.chain(aggregated.iter().map(|r| grant(r, true)))
                .collect()
        }
        "Role" => {
            let role = manifests
                .roles
                .iter()
                .find(|r| {
                    r.metadata.name.as_ref() == Some(&role_ref.name)
                        && r.metadata.namespace == namespace
                })
                .unwrap_or_else(|| panic!("no Role {} in {namespace:?}", role_ref.name));
            role.rules
                .iter()
                .flatten()
                .map(|r| grant(r, false))
                .collect()
        }
        other => panic!("roleRef kind {other}"),
    }
}

pub fn cluster_role<'m>(manifests: &'m Manifests, name: &str) -> &'m ClusterRole {
    manifests
        .cluster_roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no ClusterRole {name}"))
}

/// The rules of the manifests' ClusterRoles `role`'s aggregationRule selects (by matchLabels).
fn aggregated_rules(manifests: &Manifests, role: &ClusterRole) -> Vec<PolicyRule> {
    let selectors = role
        .aggregation_rule
        .iter()
        .flat_map(|a| a.cluster_role_selectors.iter().flatten());
    let mut rules = Vec::new();
    for selector in selectors {
        assert!(
            selector.match_expressions.is_none(),
            "only matchLabels selectors are modelled"
        );
        let wanted = selector.match_labels.clone().unwrap_or_default();
        for other in &manifests.cluster_roles {
            if other.metadata.name == role.metadata.name {
                continue;
            }
            if has_labels(other.metadata.labels.as_ref(), &wanted) {
                rules.extend(other.rules.iter().flatten().cloned());
            }
        }
    }
    rules
}

pub fn has_labels(
    labels: Option<&BTreeMap<String, String>>,
    wanted: &BTreeMap<String, String>,
) -> bool {
    let labels = labels.cloned().unwrap_or_default();
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Every concrete request a rule permits, one per group, resource, verb and name (`None` when
/// the rule does not limit names).
pub fn expand(grant: &Grant) -> Vec<(String, String, String, Option<String>)> {
    let rule = &grant.rule;
    let names: Vec<Option<String>> = match rule.resource_names.as_deref() {
        None | Some([]) => vec![None],
        Some(names) => names.iter().cloned().map(Some).collect(),
    };
    let mut all = Vec::new();
    for group in rule.api_groups.iter().flatten() {
        for resource in rule.resources.iter().flatten() {
            for verb in &rule.verbs {
                for name in &names {
                    all.push((group.clone(), resource.clone(), verb.clone(), name.clone()));
                }
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(namespace: Option<&str>, names: Option<Vec<&str>>) -> Grant {
        Grant {
            role: "Role r".into(),
            rule: PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["secrets".into()]),
                verbs: vec!["get".into()],
                resource_names: names.map(|n| n.into_iter().map(String::from).collect()),
                non_resource_urls: None,
            },
            namespace: namespace.map(String::from),
            aggregated: false,
        }
    }

    fn get_secret<'a>(namespace: Option<&'a str>, name: Option<&'a str>) -> Request<'a> {
        Request {
            group: "",
            resource: "secrets",
            verb: "get",
            namespace,
            name,
        }
    }

    #[test]
    fn a_grant_allows_only_its_scope_and_names() {
        let cases = [
            (grant(None, None), get_secret(None, Some("x")), true),
            (grant(None, None), get_secret(Some("ns"), None), true),
            (
                grant(Some("ns"), None),
                get_secret(Some("ns"), Some("x")),
                true,
            ),
            (
                grant(Some("ns"), None),
                get_secret(Some("other"), Some("x")),
                false,
            ),
            (grant(Some("ns"), None), get_secret(None, Some("x")), false),
            (
                grant(Some("ns"), Some(vec!["x"])),
                get_secret(Some("ns"), Some("x")),
                true,
            ),
            (
                grant(Some("ns"), Some(vec!["x"])),
                get_secret(Some("ns"), Some("y")),
                false,
            ),
            (
                grant(Some("ns"), Some(vec!["x"])),
                get_secret(Some("ns"), None),
                false,
            ),
        ];
        for (grant, request, allowed) in cases {
            assert_eq!(grant.allows(&request), allowed, "{grant:?} for {request}");
        }
        let mut other_verb = get_secret(None, None);
        other_verb.verb = "list";
        assert!(!grant(None, None).allows(&other_verb));
    }
}
