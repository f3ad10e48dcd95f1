//! The data-plane contract as the controller keeps it: the JSON [`Contract`] in the Secret
//! `kafka-bridge-contract` of the system namespace, which the data plane's pod mounts.
//!
//! Every reconcile changes one entry (a source's or channel's plan, or its removal). Changes are
//! serialised through one lock and written with the Secret's `resourceVersion`, so two writers
//! never lose each other's entries; on a conflict the cached copy is dropped and the reconcile
//! fails, to be retried against a fresh read. An unchanged plan writes nothing, so the revision
//! only moves when the data plane has something to apply.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use tokio::sync::Mutex;

use crate::engine::contract::{Contract, SECRET_KEY, SECRET_NAME};
use crate::engine::plan::{ChannelPlan, Plan, ResourceId, SourcePlan};

use super::error::ControllerError;

/// One change to the contract.
// Made once per reconcile and consumed at once: boxing the plans would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Run this source (replacing any plan with its id) or, with `None`, stop it.
    Source(ResourceId, Option<SourcePlan>),
    Channel(ResourceId, Option<ChannelPlan>),
}

/// `plan` with `entry` applied, or `None` when that changes nothing.
pub fn with_entry(plan: &Plan, entry: &Entry) -> Option<Plan> {
    let mut next = plan.clone();
    let changed = match entry {
        Entry::Source(id, wanted) => set(&mut next.sources, wanted.as_ref(), |p| &p.id == id),
        Entry::Channel(id, wanted) => set(&mut next.channels, wanted.as_ref(), |p| &p.id == id),
    };
    changed.then_some(next)
}

/// Replaces, adds or removes the item `is_it` picks; whether anything changed.
fn set<T: Clone + PartialEq>(
    items: &mut Vec<Arc<T>>,
    wanted: Option<&T>,
    is_it: impl Fn(&T) -> bool,
) -> bool {
    let position = items.iter().position(|item| is_it(item));
    match (position, wanted) {
        (Some(i), Some(wanted)) if *items[i] == *wanted => false,
        (Some(i), Some(wanted)) => {
            items[i] = Arc::new(wanted.clone());
            true
        }
        (None, Some(wanted)) => {
            items.push(Arc::new(wanted.clone()));
            true
        }
        (Some(i), None) => {
            items.remove(i);
            true
        }
        (None, None) => false,
    }
}

struct Stored {
    contract: Contract,
    /// Absent until the Secret exists.
    resource_version: Option<String>,
}

pub struct ContractStore {
    api: Api<Secret>,
    namespace: String,
    cached: Mutex<Option<Stored>>,
}

impl ContractStore {
    /// The store for the Secret in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            cached: Mutex::new(None),
        }
    }

    /// Applies `entry`; returns the revision of the contract that holds it.
    pub async fn set(&self, entry: Entry) -> Result<u64, ControllerError> {
        let mut cached = self.cached.lock().await;
        let stored = self.take_or_load(&mut cached).await?;
        let Some(plan) = with_entry(&stored.contract.plan, &entry) else {
            let revision = stored.contract.revision;
            *cached = Some(stored);
            return Ok(revision);
        };
        let contract = Contract::new(stored.contract.revision + 1, plan);
        // On failure the cache stays empty: the next change starts from a fresh read.
        let written = self.write(&contract, stored.resource_version).await?;
        let revision = contract.revision;
        *cached = Some(Stored {
            contract,
            resource_version: written.metadata.resource_version,
        });
        Ok(revision)
    }

    /// Writes an empty contract when there is none yet, so the data plane (ready once it has
    /// applied a contract) becomes ready on a cluster without any KafkaSource or KafkaChannel.
    pub async fn ensure_written(&self) -> Result<(), ControllerError> {
        let mut cached = self.cached.lock().await;
        let mut stored = self.take_or_load(&mut cached).await?;
        if stored.resource_version.is_none() {
            let written = self.write(&stored.contract, None).await?;
            stored.resource_version = written.metadata.resource_version;
        }
        *cached = Some(stored);
        Ok(())
    }

    /// The cached contract, taken out so that a failed write leaves the cache empty; read from
    /// the Secret when nothing is cached.
    async fn take_or_load(&self, cached: &mut Option<Stored>) -> Result<Stored, ControllerError> {
        match cached.take() {
            Some(stored) => Ok(stored),
            None => self.load().await,
        }
    }

    async fn load(&self) -> Result<Stored, ControllerError> {
        let Some(secret) = self.api.get_opt(SECRET_NAME).await? else {
            return Ok(Stored {
                contract: Contract::new(0, Plan::default()),
                resource_version: None,
            });
        };
        let bytes = secret
            .data
            .as_ref()
            .and_then(|data| data.get(SECRET_KEY))
            .map(|b| b.0.as_slice())
            .unwrap_or_default();
        let contract = if bytes.is_empty() {
            Contract::new(0, Plan::default())
        } else {
            Contract::from_json(bytes).map_err(|e| ControllerError::Contract(e.to_string()))?
        };
        Ok(Stored {
            contract,
            resource_version: secret.metadata.resource_version,
        })
    }

    async fn write(
        &self,
        contract: &Contract,
        resource_version: Option<String>,
    ) -> Result<Secret, ControllerError> {
        let exists = resource_version.is_some();
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(SECRET_NAME.to_owned()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/part-of".to_owned(),
                    "kafka-bridge".to_owned(),
                )])),
                resource_version,
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(
                SECRET_KEY.to_owned(),
                ByteString(contract.to_json()),
            )])),
            ..Secret::default()
        };
        let params = PostParams::default();
        let written = if exists {
            self.api.replace(SECRET_NAME, &params, &secret).await?
        } else {
            self.api.create(&params, &secret).await?
        };
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{KafkaConnection, SourcePlan};

    fn source(name: &str, topic: &str) -> SourcePlan {
        let plan: SourcePlan = serde_json::from_value(serde_json::json!({
            "id": {"namespace": "ns", "name": name},
            "generation": 1,
            "kafka": {"bootstrapServers": "k:9092", "properties": {}},
            "topics": [topic],
            "consumerGroup": "g",
            "initialOffset": "latest",
            "consumers": 1,
            "ordering": "ordered",
            "sink": {"url": "http://sink/"},
            "delivery": {"retry": 0, "backoffPolicy": "exponential", "backoffDelayMs": 10},
            "ceOverrides": {},
            "keyType": "string"
        }))
        .unwrap();
        assert_eq!(plan.kafka, KafkaConnection::plaintext("k:9092"));
        plan
    }

    #[test]
    fn entries_add_replace_and_remove_one_resource() {
        let a = source("a", "t1");
        let b = source("b", "t1");
        let id = |p: &SourcePlan| p.id.clone();
        let empty = Plan::default();
        let one = with_entry(&empty, &Entry::Source(id(&a), Some(a.clone()))).unwrap();
        let two = with_entry(&one, &Entry::Source(id(&b), Some(b.clone()))).unwrap();
        assert_eq!(two.sources.len(), 2);
        assert_eq!(
            with_entry(&two, &Entry::Source(id(&a), Some(a.clone()))),
            None,
            "the same plan again changes nothing"
        );
        let changed_a = source("a", "t2");
        let replaced = with_entry(&two, &Entry::Source(id(&a), Some(changed_a.clone()))).unwrap();
        assert_eq!(*replaced.sources[0], changed_a, "replaced in place");
        assert_eq!(*replaced.sources[1], b);
        let removed = with_entry(&replaced, &Entry::Source(id(&a), None)).unwrap();
        assert_eq!(removed.sources.len(), 1);
        assert_eq!(*removed.sources[0], b);
        assert_eq!(with_entry(&removed, &Entry::Source(id(&a), None)), None);
        assert_eq!(
            with_entry(&removed, &Entry::Channel(id(&a), None)),
            None,
            "a channel of the same name is another resource"
        );
    }
}
