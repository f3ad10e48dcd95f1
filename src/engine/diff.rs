//! What a new plan changes, worked out purely: which parts start, stop, restart, or keep running
//! (perhaps under a new generation). A part restarts only when something it runs with changed;
//! a channel's subscribers are compared on their own, so a subscriber change leaves the channel
//! and its other subscribers alone.

use std::collections::BTreeMap;

use super::plan::{ChannelPlan, SourcePlan, SubscriberPlan};

/// How a running set must change to match a wanted one; each list in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diff<K> {
    /// Running, no longer wanted.
    pub stop: Vec<K>,
    /// Running and wanted, but changed: stopped, then started again.
    pub restart: Vec<K>,
    /// Wanted, not running.
    pub start: Vec<K>,
    /// Running and wanted unchanged (apart, perhaps, from its generation).
    pub keep: Vec<K>,
}

pub(crate) fn diff<K: Ord + Clone, R, W>(
    running: &BTreeMap<K, R>,
    wanted: &BTreeMap<K, W>,
    unchanged: impl Fn(&R, &W) -> bool,
) -> Diff<K> {
    let mut out = Diff {
        stop: Vec::new(),
        restart: Vec::new(),
        start: Vec::new(),
        keep: Vec::new(),
    };
    for (key, now) in running {
        match wanted.get(key) {
            None => out.stop.push(key.clone()),
            Some(next) if unchanged(now, next) => out.keep.push(key.clone()),
            Some(_) => out.restart.push(key.clone()),
        }
    }
    out.start = wanted
        .keys()
        .filter(|key| !running.contains_key(*key))
        .cloned()
        .collect();
    out
}

/// Whether a running source can keep running under `next`: anything but its generation
/// changed means a restart. (Plans change rarely; comparing whole copies keeps a field added
/// later from being forgotten here.)
pub(crate) fn source_unchanged(now: &SourcePlan, next: &SourcePlan) -> bool {
    let now = SourcePlan {
        generation: next.generation,
        ..now.clone()
    };
    now == *next
}

/// Whether a running channel's topic and route can stay: its subscribers are compared one by
/// one ([`subscriber_unchanged`]), its generation not at all.
pub(crate) fn channel_unchanged(now: &ChannelPlan, next: &ChannelPlan) -> bool {
    let now = ChannelPlan {
        generation: next.generation,
        subscribers: next.subscribers.clone(),
        ..now.clone()
    };
    now == *next
}

/// Whether a running subscriber can keep running under `next`.
pub(crate) fn subscriber_unchanged(now: &SubscriberPlan, next: &SubscriberPlan) -> bool {
    let now = SubscriberPlan {
        generation: next.generation,
        ..now.clone()
    };
    now == *next
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::delivery::policy::{DeliveryPolicy, Target};
    use crate::engine::plan::{KafkaConnection, Ordering, ResourceId};

    #[test]
    fn sorts_keys_into_stop_restart_start_keep() {
        let running = BTreeMap::from([("a", 1), ("b", 2), ("c", 3)]);
        let wanted = BTreeMap::from([("b", 2), ("c", 30), ("d", 4)]);
        let got = diff(&running, &wanted, |x, y| x == y);
        assert_eq!(
            got,
            Diff {
                stop: vec!["a"],
                restart: vec!["c"],
                start: vec!["d"],
                keep: vec!["b"],
            }
        );
        let nothing: BTreeMap<&str, i32> = BTreeMap::new();
        let all_new = diff(&nothing, &wanted, |x, y| x == y);
        assert_eq!(all_new.start, vec!["b", "c", "d"]);
        assert!(all_new.stop.is_empty() && all_new.keep.is_empty());
    }

    fn subscriber() -> SubscriberPlan {
        SubscriberPlan {
            uid: "u".into(),
            generation: 1,
            subscriber: Some(Target::new(url::Url::parse("http://s/").unwrap())),
            reply: None,
            delivery: DeliveryPolicy::source_default(),
            consumer_group: "g".into(),
            ordering: Ordering::Ordered,
        }
    }

    fn channel() -> ChannelPlan {
        ChannelPlan {
            id: ResourceId::new("ns", "c"),
            generation: 1,
            kafka: KafkaConnection::plaintext("k:9092"),
            topic: "t".into(),
            num_partitions: 1,
            replication_factor: 1,
            retention: Duration::from_secs(60),
            subscribers: vec![Arc::new(subscriber())],
        }
    }

    #[test]
    fn generation_alone_restarts_nothing() {
        type Change<T> = fn(&mut T);
        let subscriber_cases: [(Change<SubscriberPlan>, bool); 4] = [
            (|s| s.generation = 9, true),
            (|s| s.delivery.retry = 0, false),
            (|s| s.reply = s.subscriber.clone(), false),
            (|s| s.consumer_group = "h".into(), false),
        ];
        for (index, (change, want)) in subscriber_cases.into_iter().enumerate() {
            let mut next = subscriber();
            change(&mut next);
            assert_eq!(
                subscriber_unchanged(&subscriber(), &next),
                want,
                "case {index}"
            );
        }
        let channel_cases: [(Change<ChannelPlan>, bool); 5] = [
            (|c| c.generation = 2, true),
            (|c| c.subscribers.clear(), true),
            (|c| c.num_partitions = 2, false),
            (
                |c| c.kafka = KafkaConnection::plaintext("other:9092"),
                false,
            ),
            (|c| c.retention = Duration::from_secs(1), false),
        ];
        for (index, (change, want)) in channel_cases.into_iter().enumerate() {
            let mut next = channel();
            change(&mut next);
            assert_eq!(channel_unchanged(&channel(), &next), want, "case {index}");
        }
    }
}
