//! The resolved delivery policy: Knative's `DeliverySpec` after parsing and validation, and the pure
//! schedule of waits between attempts that it implies.
//!
//! These types travel in the data-plane contract as JSON (camelCase); durations there are whole
//! milliseconds in fields ending in `Ms` ([`duration_ms`]), URLs absolute strings.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

/// How the wait between attempts grows (`spec.delivery.backoffPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BackoffPolicy {
    Linear,
    #[default]
    Exponential,
}

/// A delivery target: the URL plus the CA certificates to trust for it (`CACerts` in Knative's
/// Destination), when it is served over TLS with a private CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(with = "url_text")]
    pub url: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPolicy {
    /// Retries after the first attempt: `retry: N` means N+1 attempts.
    pub retry: u32,
    pub backoff_policy: BackoffPolicy,
    #[serde(rename = "backoffDelayMs", with = "duration_ms")]
    pub backoff_delay: Duration,
    /// Per-attempt timeout.
    #[serde(
        rename = "timeoutMs",
        with = "duration_ms::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    /// Upper bound on a `Retry-After` wait; `Some(ZERO)` opts out of honouring the header.
    #[serde(
        rename = "retryAfterMaxMs",
        with = "duration_ms::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after_max: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// A [`Duration`] as whole milliseconds: exact for every duration Knative's ISO-8601 fields
/// express in practice, and readable in a contract. Sub-millisecond parts are dropped; values
/// past `u64::MAX` ms saturate.
pub mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }

    /// The same for an optional duration (absent or `null` is `None`).
    pub mod option {
        use std::time::Duration;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            value: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => super::serialize(value, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            Ok(Option::<u64>::deserialize(deserializer)?.map(Duration::from_millis))
        }
    }
}

/// A [`Url`] as its text; parsing checks it is absolute.
mod url_text {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};
    use url::Url;

    pub fn serialize<S: Serializer>(value: &Url, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Url, D::Error> {
        let text = String::deserialize(deserializer)?;
        Url::parse(&text).map_err(|e| D::Error::custom(format!("{text:?} is not a URL: {e}")))
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

    #[test]
    fn json_form_names_units() {
        let mut p = DeliveryPolicy::source_default();
        p.dead_letter = Some(Target::new(Url::parse("http://dl.example/x").unwrap()));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "retry": 10,
                "backoffPolicy": "exponential",
                "backoffDelayMs": 300,
                "timeoutMs": 600000,
                "deadLetter": {"url": "http://dl.example/x"},
            })
        );
        assert_eq!(serde_json::from_value::<DeliveryPolicy>(json).unwrap(), p);
        let relative = serde_json::json!({"url": "/x"});
        let error = serde_json::from_value::<Target>(relative).unwrap_err();
        assert!(error.to_string().contains("\"/x\" is not a URL"), "{error}");
    }
}
