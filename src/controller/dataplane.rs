//! Reading the data plane's `GET /status` ([`Report`]) and turning it into what each resource's
//! reconcile needs ([`Observed`]).

use std::time::Duration;

use crate::engine::plan::ResourceId;
use crate::engine::report::Report;

use super::observed::{Observed, RunningResource, RunningSubscriber};

/// The data plane's status, or why it could not be read.
pub type StatusResult = Result<Report, String>;

pub struct DataPlaneClient {
    http: reqwest::Client,
    url: String,
}

impl DataPlaneClient {
    pub fn new(url: impl Into<String>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            http,
            url: url.into(),
        })
    }

    pub async fn status(&self) -> StatusResult {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        let response = response
            .error_for_status()
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        serde_json::from_slice(&body)
            .map_err(|e| format!("GET {}: not a status report: {e}", self.url))
    }
}

pub fn observe_source(status: &StatusResult, id: &ResourceId) -> Observed<RunningResource> {
    match status {
        Err(reason) => Observed::Unavailable(reason.clone()),
        Ok(report) => match report.source(id) {
            None => Observed::Absent,
            Some(s) => Observed::Running(RunningResource {
                generation: s.generation,
                ready: s.ready,
                subscribers: Vec::new(),
            }),
        },
    }
}

pub fn observe_channel(status: &StatusResult, id: &ResourceId) -> Observed<RunningResource> {
    match status {
        Err(reason) => Observed::Unavailable(reason.clone()),
        Ok(report) => match report.channel(id) {
            None => Observed::Absent,
            Some(c) => Observed::Running(RunningResource {
                generation: c.generation,
                ready: c.ready,
                subscribers: c
                    .subscribers
                    .iter()
                    .map(|s| RunningSubscriber {
                        uid: s.uid.clone(),
                        generation: s.generation,
                        ready: s.ready,
                    })
                    .collect(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::report::{ChannelReport, SourceReport, SubscriberReport};

    #[test]
    fn reports_become_observations() {
        let report = Report {
            revision: 3,
            sources: vec![SourceReport {
                namespace: "ns".into(),
                name: "s".into(),
                generation: 2,
                ready: true,
            }],
            channels: vec![ChannelReport {
                namespace: "ns".into(),
                name: "c".into(),
                generation: 1,
                ready: false,
                subscribers: vec![SubscriberReport {
                    uid: "u".into(),
                    generation: 4,
                    ready: true,
                }],
            }],
        };
        let ok: StatusResult = Ok(report);
        let id = |n: &str| ResourceId::new("ns", n);
        assert_eq!(
            observe_source(&ok, &id("s")),
            Observed::Running(RunningResource {
                generation: 2,
                ready: true,
                subscribers: vec![]
            })
        );
        assert_eq!(observe_source(&ok, &id("c")), Observed::Absent);
        let Observed::Running(channel) = observe_channel(&ok, &id("c")) else {
            panic!("channel c runs");
        };
        assert!(!channel.ready);
        assert_eq!(channel.subscribers[0].uid, "u");
        assert_eq!(channel.subscribers[0].generation, 4);
        let down: StatusResult = Err("refused".into());
        assert_eq!(
            observe_channel(&down, &id("c")),
            Observed::Unavailable("refused".into())
        );
    }
}
