//! Makes a stuck partition visible. From each librdkafka statistics report it judges every
//! assigned partition: records wait for its worker (fetched but not taken, or known to the broker
//! but not fetched), or it is not fetching at all, while its worker is idle and neither the fetch
//! count nor the consumed position moves. Held that way for [`STALL_AFTER`], it is stalled.
//!
//! A partition held back by a slow sink is not stalled: its worker has a record in flight.

use std::time::{Duration, Instant};

use rdkafka::statistics::Partition;

/// How long a partition may wait without progress before it counts as stalled.
pub(crate) const STALL_AFTER: Duration = Duration::from_secs(30);

/// What one statistics report says about an assigned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// The fetcher is running (librdkafka fetch state `active`).
    pub fetching: bool,
    /// Records fetched into the partition's queue, not yet taken by the worker.
    pub queued: i64,
    /// The broker's high watermark as last seen in a fetch response (-1: unknown).
    pub high_watermark: i64,
    /// The next offset the fetcher asks for (-1 or below: not known yet).
    pub fetch_position: i64,
    /// The offset after the last record the worker took (-1: none yet).
    pub consumed: i64,
    /// Records fetched since the consumer started.
    pub fetched: u64,
    /// The worker has records in delivery.
    pub busy: bool,
}

impl Sample {
    pub fn from_stats(partition: &Partition, busy: bool) -> Self {
        Self {
            fetching: partition.fetch_state == "active",
            queued: partition.fetchq_cnt,
            high_watermark: partition.hi_offset,
            fetch_position: partition.next_offset,
            consumed: partition.app_offset,
            fetched: partition.rxmsgs,
            busy,
        }
    }

    /// Something is owed to an idle worker: records wait in its queue or at the broker, or the
    /// partition cannot fetch at all.
    fn owed(&self) -> bool {
        let behind = self.fetch_position >= 0 && self.high_watermark > self.fetch_position;
        !self.busy && (!self.fetching || self.queued > 0 || behind)
    }
}

/// The watch kept on one partition between reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watch {
    progress: (u64, i64),
    since: Instant,
    stalled: bool,
}

/// A change worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Stalled since this long.
    Stalled(Duration),
    /// Was stalled, moves again.
    Recovered,
}

impl Watch {
    pub fn new(sample: &Sample, now: Instant) -> Self {
        Self {
            progress: (sample.fetched, sample.consumed),
            since: now,
            stalled: false,
        }
    }

    pub fn stalled(&self) -> bool {
        self.stalled
    }

    /// Takes in the next report.
    pub fn observe(&mut self, sample: &Sample, now: Instant) -> Option<Change> {
        let progress = (sample.fetched, sample.consumed);
        if !sample.owed() || progress != self.progress {
            let was = self.stalled;
            *self = Self::new(sample, now);
            return was.then_some(Change::Recovered);
        }
        let waited = now.saturating_duration_since(self.since);
        if self.stalled || waited < STALL_AFTER {
            return None;
        }
        self.stalled = true;
        Some(Change::Stalled(waited))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An active partition, caught up, with an idle worker.
    fn idle() -> Sample {
        Sample {
            fetching: true,
            queued: 0,
            high_watermark: 10,
            fetch_position: 10,
            consumed: 10,
            fetched: 10,
            busy: false,
        }
    }

    #[test]
    fn stalled_only_when_something_is_owed_to_an_idle_worker_without_progress() {
        let never_started = Sample {
            fetching: false,
            high_watermark: -1,
            fetch_position: -1001,
            consumed: -1,
            fetched: 0,
            ..idle()
        };
        let queued = Sample {
            queued: 3,
            ..idle()
        };
        let secs = Duration::from_secs;
        // (case, first report, report `after` later, stalled then)
        let cases: [(&str, Sample, Sample, Duration, bool); 9] = [
            ("caught up", idle(), idle(), secs(60), false),
            (
                "never started fetching",
                never_started,
                never_started,
                secs(60),
                true,
            ),
            (
                "records queued, worker idle",
                queued,
                queued,
                secs(60),
                true,
            ),
            (
                "records at the broker, not fetched",
                Sample {
                    high_watermark: 12,
                    ..idle()
                },
                Sample {
                    high_watermark: 12,
                    ..idle()
                },
                secs(60),
                true,
            ),
            (
                "fetch position not known yet",
                Sample {
                    fetch_position: -1001,
                    high_watermark: 12,
                    ..idle()
                },
                Sample {
                    fetch_position: -1001,
                    high_watermark: 12,
                    ..idle()
                },
                secs(60),
                false,
            ),
            (
                "slow sink: worker busy",
                Sample {
                    busy: true,
                    ..queued
                },
                Sample {
                    busy: true,
                    ..queued
                },
                secs(60),
                false,
            ),
            ("queued, not for long", queued, queued, secs(29), false),
            (
                "fetch count moved",
                queued,
                Sample {
                    fetched: 13,
                    ..queued
                },
                secs(60),
                false,
            ),
            (
                "worker took a record",
                queued,
                Sample {
                    consumed: 11,
                    ..queued
                },
                secs(60),
                false,
            ),
        ];
        let start = Instant::now();
        for (name, first, later, after, want) in cases {
            let mut watch = Watch::new(&first, start);
            let change = watch.observe(&later, start + after);
            assert_eq!(watch.stalled(), want, "{name}");
            assert_eq!(matches!(change, Some(Change::Stalled(_))), want, "{name}");
        }
    }

    #[test]
    fn a_stall_is_reported_once_then_its_recovery() {
        let start = Instant::now();
        let stuck = Sample {
            queued: 2,
            ..idle()
        };
        let mut watch = Watch::new(&stuck, start);
        let at = |s| start + Duration::from_secs(s);
        let changes: Vec<_> = [
            (10, stuck),
            (35, stuck),
            (40, stuck),
            (
                45,
                Sample {
                    consumed: 11,
                    ..stuck
                },
            ),
        ]
        .iter()
        .map(|(s, sample)| watch.observe(sample, at(*s)))
        .collect();
        assert_eq!(
            changes,
            [
                None,
                Some(Change::Stalled(Duration::from_secs(35))),
                None,
                Some(Change::Recovered)
            ]
        );
        assert!(!watch.stalled());
    }
}
