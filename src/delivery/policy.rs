//! The resolved delivery policy: Knative's `DeliverySpec` after parsing and validation, and the pure
//! schedule of waits between attempts that it implies.

use std::time::Duration;

use url::Url;

/// How the wait between attempts grows (`spec.delivery.backoffPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackoffPolicy {
    Linear,
    #[default]
    Exponential,
}

/// A delivery target: the URL plus the CA certificates to trust for it (`CACerts` in Knative's
/// Destination), when it is served over TLS with a private CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    pub ca_certs: Option<String>,
}

impl Target {
    pub fn new(url: Url) -> Self {
        Self {
            url,
            ca_certs: None,
        }
    }
}

/// Everything that governs how one event reaches one subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryPolicy {
    /// Retries after the first attempt: `retry: N` means N+1 attempts.
    pub retry: u32,
    pub backoff_policy: BackoffPolicy,
    pub backoff_delay: Duration,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// Upper bound on a `Retry-After` wait; `Some(ZERO)` opts out of honouring the header.
    pub retry_after_max: Option<Duration>,
    pub dead_letter: Option<Target>,
}

impl DeliveryPolicy {
    /// Knative's defaults for a KafkaSource with no `delivery` at all.
    pub fn source_default() -> Self {
        Self {
            retry: 10,
            backoff_policy: BackoffPolicy::Exponential,
            backoff_delay: Duration::from_millis(300),
            timeout: Some(Duration::from_secs(600)),
            retry_after_max: None,
            dead_letter: None,
        }
    }

    /// The wait before retry number `retry` (1-based: the wait after the first failed attempt is
    /// `backoff(1)`). Linear: delay x n; exponential: delay x 2^n, saturating rather than overflowing.
    pub fn backoff(&self, retry: u32) -> Duration {
        match self.backoff_policy {
            BackoffPolicy::Linear => self.backoff_delay.saturating_mul(retry),
            BackoffPolicy::Exponential => {
                let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
                self.backoff_delay.saturating_mul(factor)
            }
        }
    }

    /// The wait before retry `retry` given the sink's `Retry-After` (already parsed), if any: the
    /// longer of the backoff and the header, the header bounded by `retry_after_max`.
    pub fn wait_before(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.backoff(retry);
        let honoured = match (retry_after, self.retry_after_max) {
            (Some(after), Some(max)) => after.min(max),
            (Some(after), None) => after,
            (None, _) => Duration::ZERO,
        };
        backoff.max(honoured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff_policy: BackoffPolicy, ms: u64) -> DeliveryPolicy {
        DeliveryPolicy {
            backoff_policy,
            backoff_delay: Duration::from_millis(ms),
            ..DeliveryPolicy::source_default()
        }
    }

    #[test]
    fn backoff_schedules() {
        let cases = [
            (BackoffPolicy::Linear, 100, 1, 100),
            (BackoffPolicy::Linear, 100, 3, 300),
            (BackoffPolicy::Exponential, 100, 1, 200),
            (BackoffPolicy::Exponential, 100, 3, 800),
            (BackoffPolicy::Exponential, 300, 0, 300),
        ];
        for (kind, delay, retry, want) in cases {
            assert_eq!(
                policy(kind, delay).backoff(retry),
                Duration::from_millis(want),
                "{kind:?} {delay}ms retry {retry}"
            );
        }
    }

    #[test]
    fn exponential_saturates() {
        let p = policy(BackoffPolicy::Exponential, 300);
        assert!(p.backoff(200) >= p.backoff(31));
    }

    #[test]
    fn retry_after_is_bounded_and_never_shortens_backoff() {
        let mut p = policy(BackoffPolicy::Linear, 100);
        let s = Duration::from_secs;
        assert_eq!(p.wait_before(1, Some(s(5))), s(5));
        p.retry_after_max = Some(s(2));
        assert_eq!(p.wait_before(1, Some(s(5))), s(2));
        p.retry_after_max = Some(Duration::ZERO);
        assert_eq!(p.wait_before(1, Some(s(5))), Duration::from_millis(100));
        assert_eq!(p.wait_before(2, None), Duration::from_millis(200));
    }
}
