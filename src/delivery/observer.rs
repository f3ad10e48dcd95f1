//! Live signals from a delivery in progress, for metrics and health: every attempt with its
//! latency, every retry, and rounds that failed even the dead-letter sink (a stuck partition).
//! The caller implements it on its metrics type; this module knows nothing of Prometheus.

use std::time::Duration;

use http::StatusCode;

/// Which destination an attempt went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    Subscriber,
    DeadLetter,
}

/// Called from inside [`Dispatcher::deliver`](super::Dispatcher::deliver), on the delivering task:
/// implementations must be cheap and must not block. Every method defaults to doing nothing.
pub trait DeliveryObserver: Send + Sync {
    /// One HTTP attempt finished: `status` is `None` when there was no response (refused, reset,
    /// timed out).
    fn attempt(&self, _leg: Leg, _status: Option<StatusCode>, _latency: Duration) {}

    /// Another attempt will follow a failed one (after the wait).
    fn retry(&self, _leg: Leg) {}

    /// Round `rounds` failed at the subscriber and then at the dead-letter sink; the event is kept
    /// and the whole delivery starts over after a wait. The delivery stays stalled until
    /// `deliver` returns.
    fn stalled(&self, _rounds: u32) {}
}

/// An observer that records nothing.
impl DeliveryObserver for () {}
