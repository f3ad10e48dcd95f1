//! Reconciling a KafkaSource, purely: from the source, what was read for it ([`Fetched`]) and
//! what the data plane reports, the plan to publish and the status to write. The controller
//! applies both; nothing here talks to the cluster.
//!
//! Conditions follow Knative's KafkaSource: `SinkProvided` (the sink resolved to a URL) and
//! `Deployed` (the data plane runs this generation and its consumers joined the group with
//! partitions), and `Ready` over both. Knative refuses an invalid spec in its webhook; without
//! one, an invalid field shows as `Deployed=False` with reason `InvalidSpec` naming the field.

use crate::engine::plan::SourcePlan;
use crate::feed::resolve::{self, FieldError};
use crate::resources::kafka_source::KafkaSourceStatus;
use crate::resources::status::CloudEventAttributes;
use crate::resources::KafkaSource;

use super::conditions::{ConditionSet, Mark};
use super::lookup::Fetched;
use super::observed::{Observed, RunningResource};

pub const SINK_PROVIDED: &str = "SinkProvided";
pub const DEPLOYED: &str = "Deployed";
pub const CONDITIONS: ConditionSet = ConditionSet {
    dependents: &[SINK_PROVIDED, DEPLOYED],
};
/// The CloudEvent type of every record-made event, advertised in `status.ceAttributes`.
pub const EVENT_TYPE: &str = "dev.knative.kafka.event";

/// The plan the data plane should run for `source`, or the first problem that stops it.
pub fn desired(source: &KafkaSource, fetched: &Fetched) -> Result<SourcePlan, FieldError> {
    resolve::source_plan(source, fetched)
}

/// The status to write, given the outcome of [`desired`] and the data plane's report.
pub fn status(
    source: &KafkaSource,
    fetched: &Fetched,
    desired: &Result<SourcePlan, FieldError>,
    observed: &Observed<RunningResource>,
    now: &str,
) -> KafkaSourceStatus {
    let current = source.status.clone().unwrap_or_default();
    let generation = source.metadata.generation.unwrap_or(0);
    let sink = resolve::sink_target(source, fetched);
    let sink_mark = match &sink {
        Ok(_) => Mark::ok(),
        Err(e) => Mark::failed("SinkNotResolved", e.to_string()),
    };
    let deployed = match desired {
        Err(e) if e.field.starts_with("spec.sink") => {
            Mark::unknown("NotDeployed", "not run until its sink resolves")
        }
        Err(e) => Mark::failed("InvalidSpec", e.to_string()),
        Ok(_) => deployed_mark(observed, generation),
    };
    let conditions = CONDITIONS.apply(
        &current.conditions,
        &[(SINK_PROVIDED, sink_mark), (DEPLOYED, deployed)],
        now,
    );
    let running_ready = matches!(
        observed,
        Observed::Running(r) if r.ready && r.generation == generation
    );
    let (sink_uri, sink_ca_certs) = match sink {
        Ok(target) => (Some(target.url.to_string()), target.ca_certs),
        Err(_) => (None, None),
    };
    KafkaSourceStatus {
        observed_generation: Some(generation),
        conditions,
        sink_uri,
        sink_ca_certs,
        ce_attributes: match desired {
            Ok(plan) => plan
                .topics
                .iter()
                .map(|topic| CloudEventAttributes {
                    type_: Some(EVENT_TYPE.to_owned()),
                    source: Some(plan.event_source(topic)),
                })
                .collect(),
            Err(_) => Vec::new(),
        },
        consumers: match desired {
            Ok(plan) if running_ready => i32::try_from(plan.consumers).ok(),
            _ => None,
        },
        ..current
    }
}

/// `Deployed` from the data plane's report, for a valid source of `generation`.
pub(super) fn deployed_mark(observed: &Observed<RunningResource>, generation: i64) -> Mark {
    match observed {
        Observed::Unavailable(reason) => Mark::unknown(
            "DataPlaneUnavailable",
            format!("cannot read the data plane's status: {reason}"),
        ),
        Observed::Running(r) if r.generation == generation && r.ready => Mark::ok(),
        Observed::Running(r) if r.generation == generation => Mark::unknown(
            "NotReady",
            "the data plane runs it; its consumers have not joined the group with partitions yet",
        ),
        Observed::Running(_) | Observed::Absent => Mark::unknown(
            "Deploying",
            format!("waiting for the data plane to run generation {generation}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::conditions::{FALSE, READY, TRUE, UNKNOWN};
    use crate::resources::status::Condition;
    use serde_json::json;

    fn source(extra_spec: &str) -> KafkaSource {
        serde_yaml_ng::from_str(&format!(
            r#"
metadata: {{name: s, namespace: ns, generation: 4}}
spec:
  bootstrapServers: [kafka:9092]
  topics: [t1, t2]
  {extra_spec}
"#
        ))
        .unwrap()
    }

    fn fetched() -> Fetched {
        let mut fetched = Fetched::new("cluster.local");
        fetched.objects.insert(
            super::super::lookup::ObjectKey {
                api_version: "serving.knative.dev/v1".into(),
                kind: "Service".into(),
                namespace: "ns".into(),
                name: "ksvc".into(),
            },
            json!({"address": {"url": "http://ksvc.ns.example.com"}}),
        );
        fetched
    }

    fn condition<'a>(status: &'a KafkaSourceStatus, ty: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == ty).unwrap()
    }

    fn reconcile(source: &KafkaSource, observed: Observed<RunningResource>) -> KafkaSourceStatus {
        let fetched = fetched();
        let desired = desired(source, &fetched);
        status(
            source,
            &fetched,
            &desired,
            &observed,
            "2026-01-01T00:00:00Z",
        )
    }

    fn running(generation: i64, ready: bool) -> Observed<RunningResource> {
        Observed::Running(RunningResource {
            generation,
            ready,
            subscribers: vec![],
        })
    }

    #[test]
    fn a_running_source_is_ready_with_its_sink_and_attributes() {
        let s = source("sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: ksvc}, uri: /events}");
        let status = reconcile(&s, running(4, true));
        assert_eq!(status.observed_generation, Some(4));
        assert_eq!(
            status.sink_uri.as_deref(),
            Some("http://ksvc.ns.example.com/events")
        );
        assert_eq!(condition(&status, READY).status, TRUE);
        assert_eq!(status.consumers, Some(1));
        let sources: Vec<_> = status
            .ce_attributes
            .iter()
            .map(|a| a.source.clone().unwrap())
            .collect();
        assert_eq!(
            sources,
            [
                "/apis/v1/namespaces/ns/kafkasources/s#t1",
                "/apis/v1/namespaces/ns/kafkasources/s#t2"
            ]
        );
        assert!(status
            .ce_attributes
            .iter()
            .all(|a| a.type_.as_deref() == Some(EVENT_TYPE)));
    }

    #[test]
    fn each_problem_has_its_condition_and_reason() {
        let ok_sink = "sink: {uri: \"http://sink.ns.svc.cluster.local\"}";
        let cases = [
            // (spec, data plane, condition, status, reason)
            (
                "sink: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: gone}}",
                running(4, true),
                SINK_PROVIDED,
                FALSE,
                "SinkNotResolved",
            ),
            (
                "sink: {uri: /relative}",
                running(4, true),
                SINK_PROVIDED,
                FALSE,
                "SinkNotResolved",
            ),
            (ok_sink, Observed::Absent, DEPLOYED, UNKNOWN, "Deploying"),
            (ok_sink, running(3, true), DEPLOYED, UNKNOWN, "Deploying"),
            (ok_sink, running(4, false), DEPLOYED, UNKNOWN, "NotReady"),
            (
                ok_sink,
                Observed::Unavailable("connection refused".into()),
                DEPLOYED,
                UNKNOWN,
                "DataPlaneUnavailable",
            ),
        ];
        for (spec, observed, ty, expected, reason) in cases {
            let status = reconcile(&source(spec), observed);
            let c = condition(&status, ty);
            assert_eq!(
                (c.status.as_str(), c.reason.as_deref()),
                (expected, Some(reason)),
                "{spec}"
            );
            let ready = condition(&status, READY);
            assert_eq!(ready.status, expected, "Ready follows: {spec}");
            assert_eq!(status.consumers, None);
        }
    }

    #[test]
    fn an_invalid_field_is_named_while_the_sink_still_shows() {
        let s = source(
            "sink: {uri: \"http://sink\"}\n  consumers: 0\n  delivery: {backoffDelay: soon}",
        );
        let status = reconcile(&s, Observed::Absent);
        assert_eq!(status.sink_uri.as_deref(), Some("http://sink/"));
        assert_eq!(condition(&status, SINK_PROVIDED).status, TRUE);
        let deployed = condition(&status, DEPLOYED);
        assert_eq!(deployed.status, FALSE);
        assert_eq!(deployed.reason.as_deref(), Some("InvalidSpec"));
        assert!(
            deployed
                .message
                .as_deref()
                .unwrap()
                .starts_with("spec.consumers:"),
            "{deployed:?}"
        );
        assert_eq!(
            condition(&status, READY).reason.as_deref(),
            Some("InvalidSpec")
        );
    }

    #[test]
    fn a_second_reconcile_with_nothing_new_changes_nothing() {
        let mut s = source("sink: {uri: \"http://sink\"}");
        let first = reconcile(&s, running(4, true));
        s.status = Some(first.clone());
        let fetched = fetched();
        let again = status(
            &s,
            &fetched,
            &desired(&s, &fetched),
            &running(4, true),
            "later",
        );
        assert_eq!(again, first);
    }
}
