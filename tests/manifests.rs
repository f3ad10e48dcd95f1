//! `manifests/` against the code and against Kubernetes: the CRDs there are exactly what
//! `kafka-bridge crds` prints (regenerate with `cargo run -- crds > manifests/100-crds.yaml`);
//! kustomization.yaml lists every manifest; every document is a valid typed object; the names
//! the code relies on exist and agree; the RBAC grants the controller what it does and nothing
//! more, without wildcards; every container is probed, bounded and locked down; the image's
//! Dockerfile agrees with the manifests and the CI's build packages.

#[path = "manifests/load.rs"]
mod load;
#[path = "manifests/pods.rs"]
mod pods;
#[path = "manifests/rbac.rs"]
mod rbac;

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kafka_bridge::engine::contract;
use kafka_bridge::feed::channel_config;
use kafka_bridge::resources::crds;

use load::{dir, Manifests};
use rbac::Request;

const SYSTEM_NAMESPACE: &str = "knative-eventing";
const IMAGE: &str = "ghcr.io/kafka-bridge/kafka-bridge:latest";
const CONTROLLER: &str = "kafka-bridge-controller";
const DATAPLANE: &str = "kafka-bridge-dataplane";

#[test]
fn crds_in_manifests_match_the_rust_types() {
    let path = dir().join("100-crds.yaml");
    let on_disk = std::fs::read_to_string(&path).unwrap();
    let generated = crds::manifest().unwrap();
    assert!(
        on_disk == generated,
        "{} differs from `kafka-bridge crds`; regenerate it with \
         `cargo run -- crds > manifests/100-crds.yaml`",
        path.display()
    );
}

#[test]
fn kustomization_lists_every_manifest_and_nothing_else() {
    let listed = load::kustomization_resources();
    let unique: BTreeSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "listed twice: {listed:?}");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    let listed: BTreeSet<String> = listed.into_iter().collect();
    assert_eq!(
        listed, on_disk,
        "kustomization.yaml resources vs manifests/*.yaml"
    );
    for file in &listed {
        // Numbered like Knative's config: the prefix orders CRDs before what uses them.
        let (number, _) = file.split_once('-').unwrap_or_default();
        assert!(
            number.len() == 3 && number.bytes().all(|b| b.is_ascii_digit()),
            "{file} is not NNN-name.yaml"
        );
    }
}

#[test]
fn every_document_is_a_typed_object_in_the_system_namespace() {
    let manifests = Manifests::load();
    assert_eq!(manifests.crds.len(), 2);
    for document in &manifests.documents {
        let cluster_scoped = matches!(
            document.kind(),
            "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding"
        );
        let namespace = document.metadata("namespace").and_then(|v| v.as_str());
        // Explicit namespaces keep `kubectl apply -f` working without `-n`.
        let want = (!cluster_scoped).then_some(SYSTEM_NAMESPACE);
        assert_eq!(namespace, want, "{document}");
        if document.kind() == "CustomResourceDefinition" {
            continue; // generated; labelled by the Rust types
        }
        for label in [
            "app.kubernetes.io/name",
            "app.kubernetes.io/component",
            "app.kubernetes.io/part-of",
        ] {
            let labels = document.metadata("labels");
            assert!(
                labels.and_then(|l| l.get(label)).is_some(),
                "{document}: no label {label}"
            );
        }
    }
}

/// The value following `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args.iter().position(|a| a == flag);
    at.and_then(|i| args.get(i + 1))
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"))
}

fn pod(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .unwrap()
}

fn args(deployment: &Deployment) -> &[String] {
    pod(deployment).containers[0]
        .args
        .as_deref()
        .unwrap_or_default()
}

#[test]
fn the_names_the_code_uses_agree_with_the_manifests() {
    let manifests = Manifests::load();
    let controller = args(manifests.deployment(CONTROLLER));
    assert_eq!(controller[0], "controller");
    assert_eq!(flag(controller, "--system-namespace"), SYSTEM_NAMESPACE);
    manifests.service(flag(controller, "--ingress-service"));

    // The controller reaches the data plane's /status through the dataplane Service's port.
    let status_url = url::Url::parse(flag(controller, "--dataplane-status-url")).unwrap();
    let domain = flag(controller, "--cluster-domain");
    let status_service = manifests.service(DATAPLANE);
    assert_eq!(
        status_url.host_str(),
        Some(format!("{DATAPLANE}.{SYSTEM_NAMESPACE}.svc.{domain}").as_str())
    );
    let ports = status_service.spec.as_ref().and_then(|s| s.ports.clone());
    assert!(ports
        .unwrap_or_default()
        .iter()
        .any(|p| Some(p.port) == status_url.port().map(i32::from)));
    assert_eq!(status_url.path(), "/status");

    // The data plane reads the contract where the controller's Secret is mounted.
    let dataplane = manifests.deployment(DATAPLANE);
    assert_eq!(args(dataplane)[0], "dataplane");
    assert_eq!(flag(args(dataplane), "--contract"), contract::DEFAULT_PATH);
    let pod = pod(dataplane);
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| {
            v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(contract::SECRET_NAME)
        })
        .expect("the contract Secret is mounted");
    assert_eq!(
        volume.secret.as_ref().and_then(|s| s.optional),
        Some(true),
        "the data plane must start before the first contract"
    );
    let mount = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == volume.name)
        .unwrap();
    assert_eq!(
        format!("{}/{}", mount.mount_path, contract::SECRET_KEY),
        contract::DEFAULT_PATH
    );
    assert_eq!(pod.automount_service_account_token, Some(false));

    for deployment in &manifests.deployments {
        let pod = self::pod(deployment);
        let account = pod.service_account_name.as_deref().unwrap_or("default");
        assert!(
            manifests
                .service_accounts
                .iter()
                .any(|a| a.metadata.name.as_deref() == Some(account)),
            "ServiceAccount {account} is not in the manifests"
        );
        for container in &pod.containers {
            assert_eq!(container.image.as_deref(), Some(IMAGE));
        }
    }
}

#[test]
fn kafka_channel_config_is_knatives_with_a_working_default() {
    let manifests = Manifests::load();
    let config = manifests
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(channel_config::CONFIG_MAP_NAME))
        .expect("kafka-channel-config");
    assert_eq!(
        config.metadata.namespace.as_deref(),
        Some(channel_config::CONFIG_MAP_NAMESPACE)
    );
    let data = config.data.clone().unwrap_or_default();
    let ours = kafka_bridge::resources::ConfigMap {
        data: data.clone(),
        ..Default::default()
    };
    let connection = channel_config::kafka_connection(&ours, &NoLookup)
        .unwrap_or_else(|e| panic!("the shipped kafka-channel-config does not resolve: {e}"));
    assert_eq!(connection.bootstrap_servers, data["bootstrap.servers"]);
    // The auth keys are documented, commented out: a plaintext cluster is the default.
    let text = std::fs::read_to_string(dir().join("300-kafka-channel-config.yaml")).unwrap();
    for key in [
        channel_config::AUTH_SECRET_NAME_KEY,
        channel_config::AUTH_SECRET_NAMESPACE_KEY,
    ] {
        assert!(
            text.contains(&format!("  # {key}: ")),
            "{key} is not documented"
        );
    }
}

struct NoLookup;

impl kafka_bridge::feed::resolve::Lookup for NoLookup {
    fn secret(&self, _: &str, _: &str) -> Option<&std::collections::BTreeMap<String, Vec<u8>>> {
        None
    }

    fn address(
        &self,
        _: &kafka_bridge::resources::destination::KReference,
    ) -> Result<kafka_bridge::resources::addressable::Addressable, String> {
        Err("no addresses".into())
    }
}

#[test]
fn services_select_a_deployment_and_target_its_ports() {
    let manifests = Manifests::load();
    for service in &manifests.services {
        let name = service.metadata.name.as_deref().unwrap_or_default();
        let spec = service.spec.as_ref().unwrap();
        let selector = spec.selector.clone().unwrap_or_default();
        assert!(!selector.is_empty(), "Service {name} selects nothing");
        let selected: Vec<&Deployment> = manifests
            .deployments
            .iter()
            .filter(|d| {
                let labels = d.spec.as_ref().and_then(|s| s.template.metadata.as_ref());
                rbac::has_labels(labels.and_then(|m| m.labels.as_ref()), &selector)
            })
            .collect();
        assert_eq!(
            selected.len(),
            1,
            "Service {name} must select one Deployment"
        );
        let ports: Vec<_> = pod(selected[0])
            .containers
            .iter()
            .flat_map(|c| c.ports.clone().unwrap_or_default())
            .collect();
        for port in spec.ports.iter().flatten() {
            let target = port
                .target_port
                .clone()
                .unwrap_or(IntOrString::Int(port.port));
            assert!(
                pods::names_a_port(&ports, &target),
                "Service {name}: targetPort {target:?} is no container port"
            );
        }
    }
    let ingress = manifests.service("kafka-bridge-ingress");
    let port = &ingress.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
    assert_eq!(
        port.port, 80,
        "channel addresses are http://NAME-kn-channel.NS... without a port"
    );
}

#[test]
fn deployments_select_their_pods_and_every_container_is_locked_down() {
    let manifests = Manifests::load();
    assert_eq!(manifests.deployments.len(), 2);
    let mut problems = Vec::new();
    for deployment in &manifests.deployments {
        let name = deployment.metadata.name.as_deref().unwrap_or_default();
        let spec = deployment.spec.as_ref().unwrap();
        let labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.as_ref());
        let selector = spec.selector.match_labels.clone().unwrap_or_default();
        assert!(
            !selector.is_empty() && rbac::has_labels(labels, &selector),
            "Deployment {name}: the selector does not match the pod labels"
        );
        let pod = pod(deployment);
        for container in pod
            .containers
            .iter()
            .chain(pod.init_containers.iter().flatten())
        {
            for problem in pods::problems(pod, container) {
                problems.push(format!("{name}/{}: {problem}", container.name));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn rbac_has_no_wildcards() {
    let manifests = Manifests::load();
    let rules = manifests
        .cluster_roles
        .iter()
        .flat_map(|r| r.rules.iter().flatten())
        .chain(
            manifests
                .roles
                .iter()
                .flat_map(|r| r.rules.iter().flatten()),
        );
    for rule in rules {
        let fields = [
            rule.api_groups.as_deref().unwrap_or_default(),
            rule.resources.as_deref().unwrap_or_default(),
            &rule.verbs,
            rule.resource_names.as_deref().unwrap_or_default(),
        ];
        for values in fields {
            assert!(
                values.iter().all(|v| !v.contains('*')),
                "wildcard in {rule:?}"
            );
        }
        assert!(rule.non_resource_urls.is_none(), "{rule:?}");
        assert!(!rule.verbs.is_empty(), "{rule:?}");
    }
}

#[test]
fn bindings_name_accounts_and_roles_that_exist() {
    let manifests = Manifests::load();
    let role_refs = manifests
        .cluster_role_bindings
        .iter()
        .map(|b| (&b.role_ref, b.subjects.as_deref(), None))
        .chain(manifests.role_bindings.iter().map(|b| {
            (
                &b.role_ref,
                b.subjects.as_deref(),
                b.metadata.namespace.as_deref(),
            )
        }));
    for (role_ref, subjects, namespace) in role_refs {
        let exists = match role_ref.kind.as_str() {
            "ClusterRole" => manifests
                .cluster_roles
                .iter()
                .any(|r| r.metadata.name == Some(role_ref.name.clone())),
            "Role" => manifests.roles.iter().any(|r| {
                r.metadata.name == Some(role_ref.name.clone())
                    && r.metadata.namespace.as_deref() == namespace
            }),
            other => panic!("roleRef kind {other}"),
        };
        assert!(
            exists,
            "{} {} is not in the manifests",
            role_ref.kind, role_ref.name
        );
        let subjects = subjects.unwrap_or_default();
        assert!(
            !subjects.is_empty(),
            "a binding of {} without subjects",
            role_ref.name
        );
        for subject in subjects {
            assert_eq!(subject.kind, "ServiceAccount");
            let exists = manifests.service_accounts.iter().any(|a| {
                a.metadata.name.as_deref() == Some(subject.name.as_str())
                    && a.metadata.namespace == subject.namespace
            });
            assert!(
                exists,
                "ServiceAccount {:?}/{} is not in the manifests",
                subject.namespace, subject.name
            );
        }
    }
}

const ANY: Option<&str> = None;
const SYSTEM: Option<&str> = Some(SYSTEM_NAMESPACE);

/// Requests the controller makes: each resource with each verb, in `namespace` (`None`: any
/// namespace), for the object `name` (`None`: any name).
struct Need {
    group: &'static str,
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
    namespace: Option<&'static str>,
    name: Option<&'static str>,
}

const fn need(
    group: &'static str,
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
    namespace: Option<&'static str>,
    name: Option<&'static str>,
) -> Need {
    Need {
        group,
        resources,
        verbs,
        namespace,
        name,
    }
}

/// What the controller does in the API.
#[rustfmt::skip]
const CONTROLLER_NEEDS: &[Need] = &[
    need("sources.knative.dev", &["kafkasources"], &["get", "list", "watch", "update", "patch"], ANY, None),
    need("sources.knative.dev", &["kafkasources/status"], &["patch"], ANY, None),
    need("sources.knative.dev", &["kafkasources/finalizers"], &["update", "patch"], ANY, None),
    need("messaging.knative.dev", &["kafkachannels"], &["get", "list", "watch", "update", "patch"], ANY, None),
    need("messaging.knative.dev", &["kafkachannels/status"], &["patch"], ANY, None),
    need("messaging.knative.dev", &["kafkachannels/finalizers"], &["update", "patch"], ANY, None),
    // KafkaSource `net` secretKeyRefs and the channel auth Secret, wherever they are.
    need("", &["secrets"], &["get"], ANY, None),
    need("", &["configmaps"], &["get", "list", "watch"], SYSTEM, None),
    need("", &["secrets"], &["create"], SYSTEM, None),
    need("", &["secrets"], &["get", "update"], SYSTEM, Some("kafka-bridge-contract")),
    need("", &["services"], &["get", "list", "watch", "create", "patch", "update", "delete"], ANY, None),
    need("", &["events"], &["create", "patch"], ANY, None),
    need("events.k8s.io", &["events"], &["create", "patch"], ANY, None),
    need("coordination.k8s.io", &["leases"], &["create"], SYSTEM, None),
    need("coordination.k8s.io", &["leases"], &["get", "update"], SYSTEM, Some("kafka-bridge-controller")),
    // A KafkaChannel as a sink, through the addressable aggregation.
    need("messaging.knative.dev", &["kafkachannels/status"], &["get"], ANY, None),
];

/// What it must not be able to do.
#[rustfmt::skip]
const CONTROLLER_DENIED: &[Need] = &[
    need("", &["secrets"], &["list", "watch", "update", "delete"], ANY, None),
    need("", &["secrets"], &["update"], Some("default"), Some("user-secret")),
    need("", &["secrets"], &["update"], SYSTEM, Some("another-secret")),
    need("", &["secrets"], &["delete"], SYSTEM, Some("kafka-bridge-contract")),
    need("", &["configmaps"], &["get"], Some("default"), Some("kafka-channel-config")),
    need("", &["configmaps"], &["update", "patch", "delete"], SYSTEM, Some("kafka-channel-config")),
    need("coordination.k8s.io", &["leases"], &["update"], SYSTEM, Some("another-lease")),
    need("coordination.k8s.io", &["leases"], &["get"], Some("default"), Some("kafka-bridge-controller")),
    need("sources.knative.dev", &["kafkasources"], &["create", "delete"], ANY, None),
    need("messaging.knative.dev", &["kafkachannels"], &["create", "delete"], ANY, None),
    need("", &["pods"], &["get"], SYSTEM, None),
    need("apps", &["deployments"], &["get"], SYSTEM, None),
];

fn requests(needs: &'static [Need]) -> impl Iterator<Item = Request<'static>> {
    needs.iter().flat_map(|need| {
        need.resources.iter().flat_map(move |&resource| {
            need.verbs.iter().map(move |&verb| Request {
                group: need.group,
                resource,
                verb,
                namespace: need.namespace,
                name: need.name,
            })
        })
    })
}

#[test]
fn controller_rbac_allows_what_it_does_and_no_more() {
    let manifests = Manifests::load();
    let grants = rbac::grants(&manifests, SYSTEM_NAMESPACE, CONTROLLER);
    let allowed = |request: &Request<'_>| grants.iter().any(|g| g.allows(request));
    for request in requests(CONTROLLER_NEEDS) {
        assert!(allowed(&request), "the controller cannot {request}");
    }
    for request in requests(CONTROLLER_DENIED) {
        assert!(!allowed(&request), "the controller can {request}");
    }
    // Every permission written for it is in the table, at the same scope. (Aggregated rules are
    // whatever Knative marks addressable: read-only by design.)
    let needed: Vec<Request<'_>> = requests(CONTROLLER_NEEDS).collect();
    for grant in grants.iter().filter(|g| !g.aggregated) {
        for (group, resource, verb, name) in rbac::expand(grant) {
            let used = needed.iter().any(|r| {
                r.group == group
                    && r.resource == resource
                    && r.verb == verb
                    && r.namespace == grant.namespace.as_deref()
                    && r.name == name.as_deref()
            });
            assert!(
                used,
                "{} grants {verb} {group}/{resource} (name {name:?}, namespace {:?}), which the \
                 controller does not need",
                grant.role, grant.namespace
            );
        }
    }
}

#[test]
fn controller_resolves_any_knative_addressable_and_the_data_plane_has_no_api_access() {
    let manifests = Manifests::load();
    let addressable = [("duck.knative.dev/addressable".to_owned(), "true".to_owned())].into();
    let aggregates_addressables = manifests.cluster_role_bindings.iter().any(|binding| {
        let bound = binding
            .subjects
            .iter()
            .flatten()
            .any(|s| s.name == CONTROLLER && s.namespace.as_deref() == SYSTEM);
        let role = rbac::cluster_role(&manifests, &binding.role_ref.name);
        let selectors = role
            .aggregation_rule
            .iter()
            .flat_map(|a| a.cluster_role_selectors.iter().flatten());
        bound
            && selectors
                .clone()
                .any(|s| s.match_labels.as_ref() == Some(&addressable))
    });
    assert!(
        aggregates_addressables,
        "no addressable-resolver aggregation bound to the controller"
    );
    // Our KafkaChannel is itself addressable to Knative (and to us).
    let channel_role = manifests.cluster_roles.iter().find(|r| {
        rbac::has_labels(r.metadata.labels.as_ref(), &addressable)
            && r.rules.iter().flatten().any(|rule| {
                rule.resources
                    .iter()
                    .flatten()
                    .any(|x| x == "kafkachannels")
            })
    });
    assert!(
        channel_role.is_some(),
        "KafkaChannel is not labelled addressable"
    );

    assert!(rbac::grants(&manifests, SYSTEM_NAMESPACE, DATAPLANE).is_empty());
    let account = manifests
        .service_accounts
        .iter()
        .find(|a| a.metadata.name.as_deref() == Some(DATAPLANE))
        .unwrap();
    assert_eq!(account.automount_service_account_token, Some(false));
}

#[test]
fn dockerfile_builds_with_the_ci_packages_and_runs_as_the_manifests_user() {
    let dockerfile = std::fs::read_to_string(dir().join("Dockerfile")).unwrap();
    let stages: Vec<&str> = dockerfile.split("\nFROM ").skip(1).collect();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let (build, runtime) = (stages[0], stages[1]);

    // The packages librdkafka's build needs, as .ci/packages.sh lists them.
    let ci = std::fs::read_to_string(dir().join("../.ci/packages.sh")).unwrap();
    let list = ci
        .split_once("APT_PACKAGES=(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(list, _)| list)
        .expect("APT_PACKAGES in .ci/packages.sh");
    let installed: BTreeSet<&str> = build.split_whitespace().collect();
    for package in list.split_whitespace() {
        assert!(
            installed.contains(package),
            "the build stage does not install {package}"
        );
    }
    assert!(build.contains("cargo build --release --locked"));

    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER");
    let uid: i64 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric USER");
    assert!(uid > 0);
    assert!(runtime.contains("ENTRYPOINT [\"/usr/local/bin/kafka-bridge\"]"));
    let manifests = Manifests::load();
    for deployment in &manifests.deployments {
        let pod = pod(deployment);
        for container in &pod.containers {
            assert_eq!(
                pods::run_as_user(pod, container),
                Some(uid),
                "{}",
                container.name
            );
        }
    }

    let ignore = std::fs::read_to_string(dir().join("Dockerfile.dockerignore")).unwrap();
    assert!(ignore
        .lines()
        .any(|l| l.trim() == "target/" || l.trim() == "target"));
}
