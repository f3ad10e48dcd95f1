//! The rules every container of the manifests must meet: probes on a declared port, requests and
//! limits, and a locked-down security context, taking the pod-level settings a container
//! inherits into account. Each problem is returned as a sentence, so one test names them all.

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSecurityContext, PodSpec, Probe, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Whether `port` (a number or a name) is one of `ports`.
pub fn names_a_port(ports: &[ContainerPort], port: &IntOrString) -> bool {
    ports.iter().any(|p| match port {
        IntOrString::Int(number) => p.container_port == *number,
        IntOrString::String(name) => p.name.as_deref() == Some(name.as_str()),
    })
}

/// What is wrong with `container` in `pod`; empty when nothing is.
pub fn problems(pod: &PodSpec, container: &Container) -> Vec<String> {
    let mut problems = Vec::new();
    let ports = container.ports.as_deref().unwrap_or_default();
    for (kind, probe) in [
        ("liveness", &container.liveness_probe),
        ("readiness", &container.readiness_probe),
    ] {
        if let Err(problem) = check_probe(probe.as_ref(), ports) {
            problems.push(format!("{kind} probe: {problem}"));
        }
    }
    problems.extend(check_resources(container));
    let empty = SecurityContext::default();
    let security = container.security_context.as_ref().unwrap_or(&empty);
    problems.extend(check_security(pod.security_context.as_ref(), security));
    problems
}

fn check_probe(probe: Option<&Probe>, ports: &[ContainerPort]) -> Result<(), String> {
    let probe = probe.ok_or("missing")?;
    let http = probe.http_get.as_ref().ok_or("not an HTTP GET")?;
    if !names_a_port(ports, &http.port) {
        return Err(format!("port {:?} is not a container port", http.port));
    }
    match http.path.as_deref() {
        Some("/healthz" | "/readyz") => Ok(()),
        other => Err(format!("path {other:?} is not /healthz or /readyz")),
    }
}

fn check_resources(container: &Container) -> Vec<String> {
    let resources = container.resources.clone().unwrap_or_default();
    let mut problems = Vec::new();
    for (what, amounts) in [
        ("requests", resources.requests),
        ("limits", resources.limits),
    ] {
        let amounts = amounts.unwrap_or_default();
        for resource in ["cpu", "memory"] {
            if !amounts.contains_key(resource) {
                problems.push(format!("no {resource} in resources.{what}"));
            }
        }
    }
    problems
}

fn check_security(pod: Option<&PodSecurityContext>, container: &SecurityContext) -> Vec<String> {
    // A container's own setting wins; otherwise it inherits the pod's.
    let run_as_non_root = container
        .run_as_non_root
        .or_else(|| pod.and_then(|p| p.run_as_non_root));
    let run_as_user = container
        .run_as_user
        .or_else(|| pod.and_then(|p| p.run_as_user));
    let seccomp = container
        .seccomp_profile
        .as_ref()
        .or_else(|| pod.and_then(|p| p.seccomp_profile.as_ref()));
    let dropped = container
        .capabilities
        .as_ref()
        .and_then(|c| c.drop.clone())
        .unwrap_or_default();
    let added = container
        .capabilities
        .as_ref()
        .and_then(|c| c.add.clone())
        .unwrap_or_default();

    let mut problems = Vec::new();
    let mut require = |ok: bool, problem: &str| {
        if !ok {
            problems.push(problem.to_owned());
        }
    };
    require(run_as_non_root == Some(true), "runAsNonRoot is not true");
    require(
        run_as_user.is_some_and(|uid| uid > 0),
        "no numeric non-root runAsUser",
    );
    require(
        container.read_only_root_filesystem == Some(true),
        "readOnlyRootFilesystem is not true",
    );
    require(
        container.allow_privilege_escalation == Some(false),
        "allowPrivilegeEscalation is not false",
    );
    require(container.privileged != Some(true), "privileged");
    require(
        dropped.iter().any(|c| c == "ALL") && added.is_empty(),
        "capabilities do not drop ALL (or add some)",
    );
    require(
        seccomp.is_some_and(|s| s.type_ == "RuntimeDefault"),
        "seccompProfile is not RuntimeDefault",
    );
    problems
}

/// The effective user id of `container` in `pod`.
pub fn run_as_user(pod: &PodSpec, container: &Container) -> Option<i64> {
    container
        .security_context
        .as_ref()
        .and_then(|s| s.run_as_user)
        .or_else(|| pod.security_context.as_ref().and_then(|p| p.run_as_user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Capabilities, HTTPGetAction, SeccompProfile};

    fn hardened() -> SecurityContext {
        SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }
    }

    #[test]
    fn each_weakened_setting_is_a_problem() {
        type Weaken = fn(&mut SecurityContext);
        let cases: [(&str, Weaken); 6] = [
            ("runAsNonRoot is not true", |s| s.run_as_non_root = None),
            ("no numeric non-root runAsUser", |s| s.run_as_user = Some(0)),
            ("readOnlyRootFilesystem is not true", |s| {
                s.read_only_root_filesystem = Some(false)
            }),
            ("allowPrivilegeEscalation is not false", |s| {
                s.allow_privilege_escalation = None
            }),
            ("capabilities do not drop ALL (or add some)", |s| {
                s.capabilities = None
            }),
            ("seccompProfile is not RuntimeDefault", |s| {
                s.seccomp_profile = None
            }),
        ];
        assert!(check_security(None, &hardened()).is_empty());
        for (want, weaken) in cases {
            let mut security = hardened();
            weaken(&mut security);
            assert_eq!(check_security(None, &security), vec![want.to_owned()]);
        }
    }

    #[test]
    fn pod_level_settings_are_inherited() {
        let mut container = hardened();
        container.run_as_user = None;
        container.seccomp_profile = None;
        let pod = PodSecurityContext {
            run_as_user: Some(65532),
            seccomp_profile: hardened().seccomp_profile,
            ..PodSecurityContext::default()
        };
        assert!(check_security(Some(&pod), &container).is_empty());
    }

    #[test]
    fn a_probe_must_target_a_declared_port() {
        let ports = [ContainerPort {
            name: Some("admin".into()),
            container_port: 9090,
            ..ContainerPort::default()
        }];
        let probe = |port: IntOrString| Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".into()),
                port,
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        };
        let cases = [
            (IntOrString::String("admin".into()), true),
            (IntOrString::Int(9090), true),
            (IntOrString::String("metrics".into()), false),
            (IntOrString::Int(8080), false),
        ];
        for (port, ok) in cases {
            assert_eq!(
                check_probe(Some(&probe(port.clone())), &ports).is_ok(),
                ok,
                "{port:?}"
            );
        }
        assert!(check_probe(None, &ports).is_err());
    }
}
