//! Readiness of every running part (source, channel, channel subscriber), as `/readyz` and
//! `/status` report it: a check per part, asked at request time so the answer is never stale,
//! with the generation each part runs and the contract revision applied.
//!
//! The engine registers a part when it starts it and removes it once stopped; a part's task
//! only flips the state its check reads.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use super::plan::ResourceId;
use super::report::{ChannelReport, Report, SourceReport, SubscriberReport};

type Check = Arc<dyn Fn() -> bool + Send + Sync>;

/// One independently running part of the plan.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Source(ResourceId),
    Channel(ResourceId),
    Subscriber { channel: ResourceId, uid: String },
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Source(id) => write!(f, "KafkaSource {id}"),
            Part::Channel(id) => write!(f, "KafkaChannel {id}"),
            Part::Subscriber { channel, uid } => {
                write!(f, "KafkaChannel {channel} subscriber {uid}")
            }
        }
    }
}

/// What `/readyz` means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadyWhen {
    /// Standalone: every part is ready, and there is at least one.
    #[default]
    EveryPart,
    /// Data plane: a contract has been applied. Each part's readiness is in `/status` for the
    /// controller, so one broken source does not take the channel ingress out of its Service.
    ContractApplied,
}

#[derive(Default, Clone)]
pub struct Readiness {
    board: Arc<RwLock<Board>>,
}

#[derive(Default)]
struct Board {
    rule: ReadyWhen,
    /// The contract revision applied last; `None` until one is.
    revision: Option<u64>,
    parts: BTreeMap<Part, Entry>,
}

struct Entry {
    generation: i64,
    check: Check,
}

/// One part's state in a `/readyz` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartReadiness {
    pub name: String,
    pub ready: bool,
}

impl Readiness {
    pub fn new(rule: ReadyWhen) -> Self {
        let board = Board {
            rule,
            ..Board::default()
        };
        Self {
            board: Arc::new(RwLock::new(board)),
        }
    }

    pub fn set(
        &self,
        part: Part,
        generation: i64,
        check: impl Fn() -> bool + Send + Sync + 'static,
    ) {
        let entry = Entry {
            generation,
            check: Arc::new(check),
        };
        self.write(|board| {
            board.parts.insert(part, entry);
        });
    }

    /// A part keeps running under a newer generation whose change needed no restart.
    pub fn set_generation(&self, part: &Part, generation: i64) {
        self.write(|board| {
            if let Some(entry) = board.parts.get_mut(part) {
                entry.generation = generation;
            }
        });
    }

    pub fn remove(&self, part: &Part) {
        self.write(|board| {
            board.parts.remove(part);
        });
    }

    /// Records that contract `revision` has been applied.
    pub fn applied(&self, revision: u64) {
        self.write(|board| board.revision = Some(revision));
    }

    /// Whether the process is ready, and every part's state (for `/readyz`).
    pub fn summary(&self) -> (bool, Vec<PartReadiness>) {
        let board = self.board.read().unwrap_or_else(PoisonError::into_inner);
        let parts: Vec<_> = board
            .parts
            .iter()
            .map(|(part, entry)| PartReadiness {
                name: part.to_string(),
                ready: (entry.check)(),
            })
            .collect();
        let ready = match board.rule {
            ReadyWhen::EveryPart => !parts.is_empty() && parts.iter().all(|p| p.ready),
            ReadyWhen::ContractApplied => board.revision.is_some(),
        };
        (ready, parts)
    }

    /// The per-resource status (for `/status`), subscribers under their channels.
    pub fn status(&self) -> Report {
        let board = self.board.read().unwrap_or_else(PoisonError::into_inner);
        let mut report = Report {
            revision: board.revision.unwrap_or(0),
            ..Report::default()
        };
        // Parts are ordered with every channel before any subscriber, so each subscriber's
        // channel is already in the report.
        let mut channels: BTreeMap<&ResourceId, usize> = BTreeMap::new();
        for (part, entry) in &board.parts {
            let (generation, ready) = (entry.generation, (entry.check)());
            match part {
                Part::Source(id) => report.sources.push(SourceReport {
                    namespace: id.namespace.clone(),
                    name: id.name.clone(),
                    generation,
                    ready,
                }),
                Part::Channel(id) => {
                    channels.insert(id, report.channels.len());
                    report.channels.push(ChannelReport {
                        namespace: id.namespace.clone(),
                        name: id.name.clone(),
                        generation,
                        ready,
                        subscribers: Vec::new(),
                    });
                }
                Part::Subscriber { channel, uid } => {
                    if let Some(index) = channels.get(channel) {
                        report.channels[*index].subscribers.push(SubscriberReport {
                            uid: uid.clone(),
                            generation,
                            ready,
                        });
                    }
                }
            }
        }
        report
    }

    fn write(&self, change: impl FnOnce(&mut Board)) {
        change(&mut self.board.write().unwrap_or_else(PoisonError::into_inner));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn id(name: &str) -> ResourceId {
        ResourceId::new("ns", name)
    }

    #[test]
    fn standalone_is_ready_only_when_every_part_is() {
        let readiness = Readiness::default();
        assert!(!readiness.summary().0, "nothing running is not ready");
        let flag = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&flag);
        readiness.set(Part::Source(id("b")), 1, move || f.load(Ordering::Relaxed));
        readiness.set(Part::Source(id("c")), 1, || true);
        assert!(!readiness.summary().0);
        flag.store(true, Ordering::Relaxed);
        assert!(readiness.summary().0);
        readiness.remove(&Part::Source(id("c")));
        assert_eq!(
            readiness.summary().1,
            vec![PartReadiness {
                name: "KafkaSource ns/b".into(),
                ready: true
            }]
        );
    }

    #[test]
    fn data_plane_is_ready_once_a_contract_is_applied() {
        let readiness = Readiness::new(ReadyWhen::ContractApplied);
        assert!(!readiness.summary().0);
        readiness.set(Part::Source(id("broken")), 1, || false);
        assert!(!readiness.summary().0);
        readiness.applied(1);
        let (ready, parts) = readiness.summary();
        assert!(ready, "a broken source does not make the process unready");
        assert_eq!(parts[0].name, "KafkaSource ns/broken");
    }

    #[test]
    fn status_nests_subscribers_and_follows_generations() {
        let readiness = Readiness::new(ReadyWhen::ContractApplied);
        let sub = |channel: &str, uid: &str| Part::Subscriber {
            channel: id(channel),
            uid: uid.into(),
        };
        readiness.set(sub("c2", "u9"), 3, || true);
        readiness.set(sub("c1", "u2"), 1, || false);
        readiness.set(Part::Channel(id("c1")), 4, || true);
        readiness.set(sub("c1", "u1"), 2, || true);
        readiness.set(Part::Source(id("s")), 7, || false);
        readiness.applied(5);
        readiness.set_generation(&Part::Source(id("s")), 8);
        readiness.set_generation(&sub("c1", "gone"), 8);

        let report = readiness.status();
        assert_eq!(report.revision, 5);
        assert_eq!(
            report.sources,
            vec![SourceReport {
                namespace: "ns".into(),
                name: "s".into(),
                generation: 8,
                ready: false
            }]
        );
        assert_eq!(report.channels.len(), 1, "no channel, no orphan subscriber");
        let channel = &report.channels[0];
        assert_eq!((channel.name.as_str(), channel.generation), ("c1", 4));
        let subs: Vec<_> = channel
            .subscribers
            .iter()
            .map(|s| (s.uid.as_str(), s.generation, s.ready))
            .collect();
        assert_eq!(subs, vec![("u1", 2, true), ("u2", 1, false)]);
        assert_eq!(Readiness::default().status().revision, 0);
    }
}
