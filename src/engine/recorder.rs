//! How every delivery is counted and logged, for sources and channel subscribers alike: the
//! dispatcher's observer while an event is in delivery, and the metrics of how it settled.

use std::time::Instant;

use crate::consumer::{Handled, Position};
use crate::delivery::{Cancelled, Delivery, DeliveryObserver, Leg, Outcome};
use crate::metrics::ResourceMetrics;

pub(crate) struct DeliveryRecorder {
    /// Names the resource (and subscriber) in log lines.
    pub resource: String,
    pub metrics: ResourceMetrics,
}

impl DeliveryRecorder {
    /// Records how the delivery of `record`, started at `started`, ended, and whether its offset
    /// may be committed. A reply from a source's sink is discarded, as in Knative.
    pub fn settle(
        &self,
        at: &Position,
        started: Instant,
        delivery: Result<Delivery, Cancelled>,
    ) -> Handled {
        let Ok(delivery) = delivery else {
            return Handled::Abandoned;
        };
        self.metrics
            .latency
            .observe(started.elapsed().as_secs_f64());
        match delivery.outcome {
            Outcome::Delivered { .. } => self.metrics.delivered.inc(),
            Outcome::DeadLettered { .. } => self.metrics.dead_lettered.inc(),
            Outcome::Dropped { reason } => {
                tracing::warn!(
                    resource = %self.resource,
                    topic = &*at.topic,
                    partition = at.partition,
                    offset = at.offset,
                    ?reason,
                    "event dropped: delivery failed and no dead-letter sink is configured"
                );
                self.metrics.failed.inc()
            }
        };
        Handled::Settled
    }
}

impl DeliveryObserver for DeliveryRecorder {
    fn retry(&self, _leg: Leg) {
        self.metrics.retries.inc();
    }

    fn stalled(&self, rounds: u32) {
        self.metrics.stalled.inc();
        tracing::warn!(
            resource = %self.resource,
            rounds,
            "destination and dead-letter sink both failing; the event is kept and retried, its partition waits"
        );
    }
}
