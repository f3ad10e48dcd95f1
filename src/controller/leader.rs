//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leader election does it:
//! the holder renews the Lease well within its duration; another replica takes it over only once
//! it has expired. Writes carry the Lease's `resourceVersion`, so two replicas racing for an
//! expired Lease cannot both win. A leader that cannot renew in time stops leading (the process
//! exits and restarts as a candidate) rather than risk two controllers at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease stays valid after its last renewal.
    pub duration: Duration,
    /// How often the leader renews, and a candidate retries.
    pub retry: Duration,
}

/// What a replica should do with the Lease as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nobody holds it, or its holder let it expire: take it over.
    Take,
    /// This replica holds it: renew.
    Renew,
    /// Someone else holds it, validly.
    Wait { holder: String },
}

pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Take;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return Decision::Take;
    }
    if holder == identity {
        return Decision::Renew;
    }
    let duration =
        Duration::from_secs(u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0));
    let valid_until = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .and_then(|t| t.0.checked_add(duration).ok());
    match valid_until {
        Some(until) if until > now => Decision::Wait {
            holder: holder.to_owned(),
        },
        _ => Decision::Take,
    }
}

/// The Lease after this replica takes or renews it.
pub fn claimed(current: Option<&Lease>, settings: &LeaseSettings, now: Timestamp) -> Lease {
    let spec = current.and_then(|l| l.spec.clone()).unwrap_or_default();
    let renewing = spec.holder_identity.as_deref() == Some(settings.identity.as_str());
    let transitions = spec.lease_transitions.unwrap_or(0);
    Lease {
        metadata: ObjectMeta {
            name: Some(settings.name.clone()),
            namespace: Some(settings.namespace.clone()),
            resource_version: current.and_then(|l| l.metadata.resource_version.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(settings.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(settings.duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: if renewing {
                spec.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if renewing || current.is_none() {
                transitions
            } else {
                transitions + 1
            }),
            ..LeaseSpec::default()
        }),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("Lease {0}: {1}")]
    Api(String, kube::Error),
    #[error("lost the Lease: {0}")]
    Lost(String),
}

pub struct Elector {
    api: Api<Lease>,
    settings: LeaseSettings,
}

impl Elector {
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
        }
    }

    /// One attempt to take or renew the Lease: whether this replica holds it now.
    pub async fn try_hold(&self) -> Result<bool, LeaderError> {
        let api_err = |e| LeaderError::Api(self.settings.name.clone(), e);
        let current = self
            .api
            .get_opt(&self.settings.name)
            .await
            .map_err(api_err)?;
        let now = Timestamp::now();
        match decide(
            current.as_ref().and_then(|l| l.spec.as_ref()),
            &self.settings.identity,
            now,
        ) {
            Decision::Wait { .. } => Ok(false),
            Decision::Take | Decision::Renew => {
                let lease = claimed(current.as_ref(), &self.settings, now);
                let params = PostParams::default();
                let written = match current {
                    Some(_) => self.api.replace(&self.settings.name, &params, &lease).await,
                    None => self.api.create(&params, &lease).await,
                };
                match written {
                    Ok(_) => Ok(true),
                    // Another replica wrote first: it holds the Lease now.
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(e) => Err(api_err(e)),
                }
            }
        }
    }

    /// Waits until this replica leads. Only returns early on errors.
    pub async fn acquire(&self) -> Result<(), LeaderError> {
        loop {
            match self.try_hold().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => tracing::warn!("leader election: {e}"),
            }
            tokio::time::sleep(self.settings.retry).await;
        }
    }

    /// Keeps renewing; returns when leadership is lost (renewals failing for the Lease's whole
    /// duration, or another holder), after which this replica must stop reconciling.
    pub async fn hold(&self) -> LeaderError {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.settings.retry).await;
            match self.try_hold().await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => return LeaderError::Lost("another replica holds it".into()),
                Err(e) => tracing::warn!("renewing the Lease: {e}"),
            }
            if last_renewal.elapsed() >= self.settings.duration {
                return LeaderError::Lost(format!("not renewed for {:?}", self.settings.duration));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn spec(holder: &str, renewed: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            renew_time: Some(MicroTime(at(renewed))),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decisions_follow_holder_and_expiry() {
        let cases = [
            (None, 0, Decision::Take),
            (Some(spec("", 0, 15)), 0, Decision::Take),
            (Some(spec("me", 0, 15)), 100, Decision::Renew),
            (
                Some(spec("other", 0, 15)),
                14,
                Decision::Wait {
                    holder: "other".into(),
                },
            ),
            (Some(spec("other", 0, 15)), 15, Decision::Take),
            (Some(spec("other", 0, 15)), 60, Decision::Take),
        ];
        for (lease, now, expected) in cases {
            assert_eq!(
                decide(lease.as_ref(), "me", at(now)),
                expected,
                "{lease:?} at {now}"
            );
        }
    }

    #[test]
    fn claiming_counts_transitions_and_keeps_the_acquire_time_on_renewal() {
        let settings = LeaseSettings {
            name: "l".into(),
            namespace: "ns".into(),
            identity: "me".into(),
            duration: Duration::from_secs(15),
            retry: Duration::from_secs(5),
        };
        let first = claimed(None, &settings, at(0));
        let spec = first.spec.clone().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(0));
        let renewed = claimed(Some(&first), &settings, at(5)).spec.unwrap();
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(5))));
        assert_eq!(renewed.lease_transitions, Some(0));
        let mut theirs = first.clone();
        theirs.spec = Some(spec_with_transitions("other", 2));
        theirs.metadata.resource_version = Some("41".into());
        let taken = claimed(Some(&theirs), &settings, at(30));
        assert_eq!(taken.metadata.resource_version.as_deref(), Some("41"));
        let taken = taken.spec.unwrap();
        assert_eq!(taken.lease_transitions, Some(3));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(30))));
    }

    fn spec_with_transitions(holder: &str, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            lease_transitions: Some(transitions),
            ..spec(holder, 0, 15)
        }
    }
}
