//! Knative's `DeliverySpec` -> a [`DeliveryPolicy`], with the semantics of Knative's control plane
//! and dispatcher, written once for sources and channel subscribers.
//!
//! A spec is first parsed into [`DeliveryFields`] (validated, nothing defaulted) because a channel
//! subscriber's delivery is the subscriber's fields over the channel's, field by field (Knative's
//! `mergeDeliverySpecs`); the dispatcher's defaults apply only to what neither gives.

use std::time::Duration;

use crate::delivery::policy::{BackoffPolicy, DeliveryPolicy, Target};
use crate::resources::{BackoffPolicyType, DeliverySpec};

use super::resolve::{FieldError, Lookup};
use super::{duration, target};

/// Backoff delay when `retry` is given without `backoffDelay`: the value Knative's consumer
/// reconciler passes to the dispatcher.
pub const DEFAULT_BACKOFF_DELAY: Duration = Duration::from_millis(200);

/// Per-attempt timeout when no `timeout` is given: the dispatcher's default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// A `delivery` section parsed and validated, before defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFields {
    pub dead_letter: Option<Target>,
    pub retry: Option<u32>,
    pub timeout: Option<Duration>,
    pub backoff_policy: Option<BackoffPolicy>,
    pub backoff_delay: Option<Duration>,
    pub retry_after_max: Option<Duration>,
}

impl DeliveryFields {
    /// Parses `spec`, found at `field` (`spec.delivery`, `spec.subscribers[0].delivery`) of an
    /// object in `namespace`.
    pub fn parse(
        spec: &DeliverySpec,
        field: &str,
        namespace: &str,
        lookup: &impl Lookup,
    ) -> Result<Self, FieldError> {
        let at = |name: &str| format!("{field}.{name}");
        let parse = |value: &Option<String>, name: &str| -> Result<Option<Duration>, FieldError> {
            value
                .as_deref()
                .map(duration::parse)
                .transpose()
                .map_err(|e| FieldError::new(at(name), e.to_string()))
        };

        let retry = spec
            .retry
            .map(|retry| {
                u32::try_from(retry)
                    .map_err(|_| FieldError::new(at("retry"), format!("{retry} is negative")))
            })
            .transpose()?;
        let timeout = parse(&spec.timeout, "timeout")?;
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(FieldError::new(at("timeout"), "must be greater than zero"));
        }
        if spec.format.is_some() {
            tracing::warn!("{field}.format is not supported; events keep their delivery format");
        }
        let dead_letter = spec
            .dead_letter_sink
            .as_ref()
            .map(|dls| target::resolve(dls, &at("deadLetterSink"), namespace, lookup))
            .transpose()?;

        Ok(Self {
            dead_letter,
            retry,
            timeout,
            backoff_policy: spec.backoff_policy.map(|p| match p {
                BackoffPolicyType::Linear => BackoffPolicy::Linear,
                BackoffPolicyType::Exponential => BackoffPolicy::Exponential,
            }),
            backoff_delay: parse(&spec.backoff_delay, "backoffDelay")?,
            retry_after_max: parse(&spec.retry_after_max, "retryAfterMax")?,
        })
    }

    /// These fields, each absent one taken from `fallback`.
    pub fn or(self, fallback: &Self) -> Self {
        Self {
            dead_letter: self.dead_letter.or_else(|| fallback.dead_letter.clone()),
            retry: self.retry.or(fallback.retry),
            timeout: self.timeout.or(fallback.timeout),
            backoff_policy: self.backoff_policy.or(fallback.backoff_policy),
            backoff_delay: self.backoff_delay.or(fallback.backoff_delay),
            retry_after_max: self.retry_after_max.or(fallback.retry_after_max),
        }
    }

    /// The policy the dispatcher runs: no `retry` means no retries, the backoff is exponential
    /// from 200 ms, the timeout 600 s, and there is no dead-letter sink unless one is given.
    pub fn policy(self) -> DeliveryPolicy {
        DeliveryPolicy {
            retry: self.retry.unwrap_or(0),
            backoff_policy: self.backoff_policy.unwrap_or_default(),
            backoff_delay: self.backoff_delay.unwrap_or(DEFAULT_BACKOFF_DELAY),
            timeout: Some(self.timeout.unwrap_or(DEFAULT_TIMEOUT)),
            retry_after_max: self.retry_after_max,
            dead_letter: self.dead_letter,
        }
    }
}

/// A KafkaSource's `spec.delivery`. Absent: the KafkaSource defaults (10 exponential retries
/// from 300 ms). Present: [`DeliveryFields::policy`].
pub fn delivery_policy(
    spec: Option<&DeliverySpec>,
    namespace: &str,
    lookup: &impl Lookup,
) -> Result<DeliveryPolicy, FieldError> {
    match spec {
        None => Ok(DeliveryPolicy::source_default()),
        Some(spec) => Ok(DeliveryFields::parse(spec, "spec.delivery", namespace, lookup)?.policy()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::resources::{Addressable, KReference};

    /// Resolves nothing: these tests give dead-letter sinks as URIs.
    struct NoLookup;

    impl Lookup for NoLookup {
        fn secret(&self, _: &str, _: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
            None
        }
        fn address(&self, _: &KReference) -> Result<Addressable, String> {
            Err("no lookup in this test".into())
        }
    }

    fn fields(yaml: &str, field: &str) -> Result<DeliveryFields, FieldError> {
        let spec: DeliverySpec = serde_yaml_ng::from_str(yaml).unwrap();
        DeliveryFields::parse(&spec, field, "ns", &NoLookup)
    }

    fn target(url: &str) -> Target {
        Target::new(url::Url::parse(url).unwrap())
    }

    #[test]
    fn merges_field_by_field_like_knative() {
        let ms = Duration::from_millis;
        let channel = fields(
            "{deadLetterSink: {uri: 'http://ch-dls'}, retry: 5, backoffPolicy: linear, \
             backoffDelay: PT1S, timeout: PT9S, retryAfterMax: PT20S}",
            "spec.delivery",
        )
        .unwrap();
        let cases = [
            // The subscriber gives nothing: the channel's delivery as is.
            ("{}", 5, BackoffPolicy::Linear, ms(1000), ms(9000), "http://ch-dls"),
            (
                "{retry: 1}",
                1,
                BackoffPolicy::Linear,
                ms(1000),
                ms(9000),
                "http://ch-dls",
            ),
            (
                "{deadLetterSink: {uri: 'http://sub-dls'}, backoffPolicy: exponential, timeout: PT2S}",
                5,
                BackoffPolicy::Exponential,
                ms(1000),
                ms(2000),
                "http://sub-dls",
            ),
        ];
        for (sub, retry, policy, delay, timeout, dls) in cases {
            let got = fields(sub, "spec.subscribers[0].delivery")
                .unwrap()
                .or(&channel)
                .policy();
            let want = DeliveryPolicy {
                retry,
                backoff_policy: policy,
                backoff_delay: delay,
                timeout: Some(timeout),
                retry_after_max: Some(ms(20_000)),
                dead_letter: Some(target(dls)),
            };
            assert_eq!(got, want, "{sub}");
        }
    }

    #[test]
    fn nothing_given_means_one_attempt_without_dead_letter() {
        let policy = DeliveryFields::default().policy();
        assert_eq!(
            policy,
            DeliveryPolicy {
                retry: 0,
                backoff_policy: BackoffPolicy::Exponential,
                backoff_delay: DEFAULT_BACKOFF_DELAY,
                timeout: Some(DEFAULT_TIMEOUT),
                retry_after_max: None,
                dead_letter: None,
            }
        );
        assert_eq!(policy, fields("{}", "f").unwrap().policy());
    }

    #[test]
    fn errors_name_the_field_under_the_given_path() {
        let cases = [
            (
                "{retry: -1}",
                "spec.subscribers[2].delivery.retry",
                "negative",
            ),
            (
                "{timeout: PT0S}",
                "spec.subscribers[2].delivery.timeout",
                "greater than zero",
            ),
            (
                "{backoffDelay: 5s}",
                "spec.subscribers[2].delivery.backoffDelay",
                "ISO-8601",
            ),
            (
                "{retryAfterMax: -PT1S}",
                "spec.subscribers[2].delivery.retryAfterMax",
                "negative",
            ),
            (
                "{deadLetterSink: {uri: /relative}}",
                "spec.subscribers[2].delivery.deadLetterSink.uri",
                "relative",
            ),
        ];
        for (yaml, field, problem) in cases {
            let err = fields(yaml, "spec.subscribers[2].delivery").unwrap_err();
            assert_eq!(err.field, field, "{yaml}");
            assert!(err.problem.contains(problem), "{yaml}: {err}");
        }
    }
}
