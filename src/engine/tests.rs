//! The engine's bookkeeping across plans, without a broker: resources on `embedded` do not run
//! in the engine itself (only `run` swaps in a real cluster), so they stay registered and not
//! ready, which is all these tests look at.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::*;
use crate::delivery::policy::{DeliveryPolicy, Target};
use crate::engine::plan::{InitialOffset, KafkaConnection, KeyType, SubscriberPlan};
use crate::engine::readiness::ReadyWhen;
use crate::engine::report::{Report, SubscriberReport};

fn embedded() -> KafkaConnection {
    KafkaConnection::plaintext(KafkaConnection::EMBEDDED)
}

fn source(name: &str, generation: i64) -> Arc<SourcePlan> {
    Arc::new(SourcePlan {
        id: ResourceId::new("ns", name),
        generation,
        kafka: embedded(),
        topics: vec!["t".into()],
        consumer_group: "g".into(),
        initial_offset: InitialOffset::Latest,
        consumers: 1,
        ordering: Ordering::Ordered,
        sink: Target::new(Url::parse("http://127.0.0.1:1/").unwrap()),
        delivery: DeliveryPolicy::source_default(),
        ce_overrides: Default::default(),
        key_type: KeyType::String,
    })
}

fn subscriber(uid: &str, generation: i64, retry: u32) -> Arc<SubscriberPlan> {
    Arc::new(SubscriberPlan {
        uid: uid.into(),
        generation,
        subscriber: Some(Target::new(Url::parse("http://127.0.0.1:1/").unwrap())),
        reply: None,
        delivery: DeliveryPolicy {
            retry,
            ..DeliveryPolicy::source_default()
        },
        consumer_group: format!("kafka.ns.c.{uid}"),
        ordering: Ordering::Ordered,
    })
}

fn channel(generation: i64, subscribers: Vec<Arc<SubscriberPlan>>) -> Arc<ChannelPlan> {
    Arc::new(ChannelPlan {
        id: ResourceId::new("ns", "c"),
        generation,
        kafka: embedded(),
        topic: "knative-messaging-kafka.ns.c".into(),
        num_partitions: 1,
        replication_factor: 1,
        retention: Duration::from_secs(60),
        subscribers,
    })
}

/// (source name, generation), (channel generation, [(uid, generation)]) of a report; nothing is
/// ready without a broker.
type Shape = (Vec<(String, i64)>, Vec<(i64, Vec<(String, i64)>)>);

fn shape(report: &Report) -> Shape {
    assert!(report.sources.iter().all(|s| !s.ready), "{report:?}");
    let sources = report
        .sources
        .iter()
        .map(|s| (s.name.clone(), s.generation))
        .collect();
    let channels = report
        .channels
        .iter()
        .map(|c| {
            assert!(!c.ready && c.subscribers.iter().all(|s| !s.ready));
            let subs = c
                .subscribers
                .iter()
                .map(
                    |SubscriberReport {
                         uid, generation, ..
                     }| (uid.clone(), *generation),
                )
                .collect();
            (c.generation, subs)
        })
        .collect();
    (sources, channels)
}

fn owned(sources: &[(&str, i64)], channels: &[(i64, &[(&str, i64)])]) -> Shape {
    (
        sources.iter().map(|(n, g)| (n.to_string(), *g)).collect(),
        channels
            .iter()
            .map(|(g, subs)| (*g, subs.iter().map(|(u, g)| (u.to_string(), *g)).collect()))
            .collect(),
    )
}

#[tokio::test]
async fn each_plan_leaves_exactly_its_parts_registered_with_their_generations() {
    let readiness = Readiness::new(ReadyWhen::ContractApplied);
    let metrics = Arc::new(Metrics::new());
    let mut engine = Engine::new(EngineOptions::default(), metrics, readiness.clone());
    let steps: Vec<(Plan, Shape)> = vec![
        (
            Plan {
                sources: vec![source("a", 1), source("b", 1)],
                channels: vec![channel(
                    1,
                    vec![subscriber("u1", 1, 1), subscriber("u2", 1, 1)],
                )],
            },
            owned(&[("a", 1), ("b", 1)], &[(1, &[("u1", 1), ("u2", 1)])]),
        ),
        (
            // A new generation only; a changed subscriber; one removed, one added; a source gone.
            Plan {
                sources: vec![source("a", 2)],
                channels: vec![channel(
                    2,
                    vec![subscriber("u1", 2, 5), subscriber("u3", 1, 1)],
                )],
            },
            owned(&[("a", 2)], &[(2, &[("u1", 2), ("u3", 1)])]),
        ),
        (Plan::default(), owned(&[], &[])),
    ];
    for (index, (plan, want)) in steps.into_iter().enumerate() {
        engine.apply(&plan).await;
        assert_eq!(shape(&readiness.status()), want, "step {index}");
    }
    engine.shutdown().await;
    assert_eq!(readiness.status(), Report::default());
}
