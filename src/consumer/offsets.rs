//! Which offset of a partition may be committed: the highest one below which every record is
//! settled (delivered, dead-lettered, or dropped by policy). With unordered delivery events finish
//! out of order; the commit point still only moves over a contiguous prefix, so a crash never
//! skips an event that was still in flight.

use std::collections::VecDeque;

/// Offsets started on one partition, in increasing order, and whether each has settled.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    pending: VecDeque<(i64, bool)>,
}

impl OffsetTracker {
    /// Records that `offset` is in flight. Offsets must be started in increasing order.
    pub fn start(&mut self, offset: i64) {
        debug_assert!(self.pending.back().is_none_or(|(last, _)| *last < offset));
        self.pending.push_back((offset, false));
    }

    /// Marks `offset` settled; returns the offset of the last record of the settled prefix when the
    /// prefix grew (the record whose successor is the next to consume), else `None`.
    pub fn settle(&mut self, offset: i64) -> Option<i64> {
        let index = self
            .pending
            .binary_search_by_key(&offset, |(o, _)| *o)
            .ok()?;
        self.pending[index].1 = true;
        let mut committed = None;
        while let Some(&(front, true)) = self.pending.front() {
            committed = Some(front);
            self.pending.pop_front();
        }
        committed
    }

    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_point_moves_over_contiguous_prefix_only() {
        // (offsets started, settle order, expected result of each settle)
        type Case<'a> = (&'a [i64], &'a [i64], &'a [Option<i64>]);
        let cases: [Case; 4] = [
            (&[0, 1, 2], &[0, 1, 2], &[Some(0), Some(1), Some(2)]),
            (&[0, 1, 2], &[2, 1, 0], &[None, None, Some(2)]),
            (&[5, 9, 12], &[9, 5, 12], &[None, Some(9), Some(12)]),
            (&[3, 4], &[4, 7], &[None, None]),
        ];
        for (started, settled, want) in cases {
            let mut tracker = OffsetTracker::default();
            started.iter().for_each(|o| tracker.start(*o));
            let got: Vec<_> = settled.iter().map(|o| tracker.settle(*o)).collect();
            assert_eq!(got, want, "started {started:?} settled {settled:?}");
        }
    }

    #[test]
    fn in_flight_counts_unsettled_prefix() {
        let mut tracker = OffsetTracker::default();
        (0..4).for_each(|o| tracker.start(o));
        tracker.settle(1);
        assert_eq!(tracker.in_flight(), 4);
        tracker.settle(0);
        assert_eq!(tracker.in_flight(), 2);
    }
}
