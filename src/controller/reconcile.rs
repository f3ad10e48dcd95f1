//! The reconcile functions the kube-runtime Controllers call: read (through [`Cluster`]), compute
//! (the pure [`source`](super::source) and [`channel`](super::channel) modules), then apply the
//! side effects here, in one place: the contract entry, the channel's topic and Service, the
//! status, and an Event when readiness changes.
//!
//! Finalizers (Knative's own names, so objects migrated from Knative keep working) take a deleted
//! resource out of the data plane, and delete a channel's topic, before the object goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::SecondsFormat;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{finalizer, Event as Finalized};
use kube::Resource;

use crate::engine::plan::ResourceId;
use crate::feed::channel::channel_topic;
use crate::feed::channel_config;
use crate::kafka::client_config::ClientSettings;
use crate::kafka::topics::{delete_topic, ensure_topic};
use crate::resources::status::Condition;
use crate::resources::{KafkaChannel, KafkaSource};

use super::channel::{self, Applied, IngressService};
use super::cluster::Cluster;
use super::conditions::{self, READY, TRUE};
use super::contract_store::{ContractStore, Entry};
use super::dataplane::{observe_channel, observe_source, DataPlaneClient};
use super::error::ControllerError;
use super::lookup::{Fetched, References};
use super::source;

pub const SOURCE_FINALIZER: &str = "kafkasources.sources.knative.dev";
pub const CHANNEL_FINALIZER: &str = "kafkachannels.messaging.knative.dev";
/// How often a ready resource is looked at again anyway.
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a resource waiting on the data plane is looked at again.
const WAITING: Duration = Duration::from_secs(2);

/// What every reconcile shares.
pub struct Context {
    pub cluster: Cluster,
    pub contract: ContractStore,
    pub dataplane: DataPlaneClient,
    pub ingress: IngressService,
    /// librdkafka overrides for the controller's admin clients (topic creation and deletion).
    pub kafka: ClientSettings,
    pub recorder: Recorder,
    pub backoff: Backoff,
}

pub async fn reconcile_source(
    source: Arc<KafkaSource>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let api: Api<KafkaSource> = Api::namespaced(ctx.cluster.client.clone(), &namespace(&*source)?);
    let key = backoff_key(&*source);
    let result = finalizer(&api, SOURCE_FINALIZER, source, |event| async {
        match event {
            Finalized::Apply(source) => apply_source(&source, &ctx).await,
            Finalized::Cleanup(source) => {
                let id = id_of(&*source)?;
                ctx.contract.set(Entry::Source(id, None)).await?;
                Ok(Action::await_change())
            }
        }
    })
    .await;
    finished(result, &key, &ctx.backoff)
}

async fn apply_source(source: &KafkaSource, ctx: &Context) -> Result<Action, ControllerError> {
    let id = id_of(source)?;
    let fetched = ctx.cluster.fetch(&References::of_source(source)).await?;
    let desired = source::desired(source, &fetched);
    ctx.contract
        .set(Entry::Source(id.clone(), desired.clone().ok()))
        .await?;
    let report = ctx.dataplane.status().await;
    let status = source::status(
        source,
        &fetched,
        &desired,
        &observe_source(&report, &id),
        &now(),
    );
    write_status(ctx, source, source.status.as_ref(), &status, |s| {
        &s.conditions
    })
    .await
}

pub async fn reconcile_channel(
    channel: Arc<KafkaChannel>,
    ctx: Arc<Context>,
) -> Result<Action, ControllerError> {
    let api: Api<KafkaChannel> =
        Api::namespaced(ctx.cluster.client.clone(), &namespace(&*channel)?);
    let key = backoff_key(&*channel);
    let result = finalizer(&api, CHANNEL_FINALIZER, channel, |event| async {
        match event {
            Finalized::Apply(channel) => apply_channel(&channel, &ctx).await,
            Finalized::Cleanup(channel) => cleanup_channel(&channel, &ctx).await,
        }
    })
    .await;
    finished(result, &key, &ctx.backoff)
}

async fn apply_channel(channel: &KafkaChannel, ctx: &Context) -> Result<Action, ControllerError> {
    let id = id_of(channel)?;
    let mut fetched = ctx.cluster.fetch(&References::of_channel(channel)).await?;
    let config = ctx.cluster.channel_config(&mut fetched).await?;
    let desired = channel::desired(channel, config.as_ref(), &fetched, &ctx.ingress);

    let mut applied = Applied::default();
    if channel.metadata.uid.is_some() {
        let result = ctx.cluster.apply_service(&desired.service).await;
        applied.service = Some(result.map_err(|e| e.to_string()));
    }
    if let (Ok(conn), Some(topic)) = (&desired.connection, desired.topic()) {
        let result = ensure_topic(conn, &ctx.kafka, &topic).await;
        applied.topic = Some(result.map(|_| ()).map_err(|e| e.to_string()));
    }
    // A channel runs once its topic exists; an invalid spec or config stops it. A failed topic
    // check (the cluster unreachable for a moment) leaves a running channel as it is.
    match (&desired.plan, &applied.topic) {
        (Ok(plan), Some(Ok(()))) => {
            ctx.contract
                .set(Entry::Channel(id.clone(), Some(plan.clone())))
                .await?;
        }
        (Err(_), _) => {
            ctx.contract.set(Entry::Channel(id.clone(), None)).await?;
        }
        (Ok(_), _) => {}
    }

    let report = ctx.dataplane.status().await;
    let status = channel::status(
        channel,
        &fetched,
        &desired,
        &applied,
        &observe_channel(&report, &id),
        &now(),
    );
    write_status(ctx, channel, channel.status.as_ref(), &status, |s| {
        &s.conditions
    })
    .await
}

/// Out of the data plane first (no more events written or read), then the topic goes, as in
/// Knative. Without a usable cluster config the topic cannot be reached: it is left, with a
/// warning, rather than keeping the channel from being deleted.
async fn cleanup_channel(channel: &KafkaChannel, ctx: &Context) -> Result<Action, ControllerError> {
    let id = id_of(channel)?;
    ctx.contract.set(Entry::Channel(id.clone(), None)).await?;
    let mut fetched = Fetched::new(ctx.cluster.cluster_domain.clone());
    let connection = match ctx.cluster.channel_config(&mut fetched).await? {
        Some(config) => {
            channel_config::kafka_connection(&config, &fetched).map_err(|e| e.to_string())
        }
        None => Err("kafka-channel-config not found".to_owned()),
    };
    match connection {
        Ok(conn) => delete_topic(&conn, &ctx.kafka, &channel_topic(&id)).await?,
        Err(problem) => tracing::warn!(
            channel = %id,
            "leaving topic {} in place: {problem}",
            channel_topic(&id)
        ),
    }
    Ok(Action::await_change())
}

/// The shared end of both reconciles: announce a change of `Ready`, write `status` when it
/// differs from `current`, and choose when to look again.
async fn write_status<K, S>(
    ctx: &Context,
    object: &K,
    current: Option<&S>,
    status: &S,
    conditions: impl Fn(&S) -> &[Condition],
) -> Result<Action, ControllerError>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    S: PartialEq + serde::Serialize,
{
    let before = current.map(&conditions).unwrap_or_default();
    announce(ctx, object, before, conditions(status)).await;
    if current != Some(status) {
        ctx.cluster.patch_status(object, status).await?;
    }
    Ok(next_look(conditions(status)))
}

/// Requeue delay after an error: doubling per consecutive failure of the same object, from 1 s
/// up to 5 minutes, reset by a success.
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    pub fn failed(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let n = failures.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        delay_after(*n)
    }

    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

fn delay_after(failures: u32) -> Duration {
    let seconds = 1u64 << failures.saturating_sub(1).min(9);
    Duration::from_secs(seconds.min(300))
}

/// The controllers' error policy: log, count and back off.
pub fn on_error<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &ControllerError,
    ctx: Arc<Context>,
) -> Action {
    let key = backoff_key(&*object);
    let delay = ctx.backoff.failed(&key);
    tracing::warn!(object = %key, ?delay, "reconcile failed: {error}");
    Action::requeue(delay)
}

pub fn backoff_key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{} {}/{}",
        K::kind(&()),
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    )
}

fn finished(
    result: Result<Action, kube::runtime::finalizer::Error<ControllerError>>,
    key: &str,
    backoff: &Backoff,
) -> Result<Action, ControllerError> {
    use kube::runtime::finalizer::Error as E;
    let action = result.map_err(|e| match e {
        E::ApplyFailed(inner) | E::CleanupFailed(inner) => inner,
        other => ControllerError::Finalizer(other.to_string()),
    })?;
    backoff.succeeded(key);
    Ok(action)
}

/// Ready resources are looked at again now and then; others soon, to follow the data plane.
fn next_look(conditions: &[Condition]) -> Action {
    if conditions::is_ready(conditions) {
        Action::requeue(RESYNC)
    } else {
        Action::requeue(WAITING)
    }
}

/// An Event when `Ready` changes: Normal when it becomes True, Warning with the reason when it
/// becomes False. Events are best effort: a failure to record one is only logged.
async fn announce<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    before: &[Condition],
    after: &[Condition],
) {
    let ready = |conditions: &[Condition]| {
        conditions
            .iter()
            .find(|c| c.type_ == READY)
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    let (was, now) = (ready(before), ready(after));
    let Some((status, reason, message)) = now else {
        return;
    };
    if was.as_ref().map(|(s, r, _)| (s, r)) == Some((&status, &reason)) {
        return;
    }
    let event = if status == TRUE {
        Event {
            type_: EventType::Normal,
            reason: "Ready".into(),
            note: Some(format!("{} is ready", K::kind(&()))),
            action: "Reconcile".into(),
            secondary: None,
        }
    } else if status == conditions::FALSE {
        Event {
            type_: EventType::Warning,
            reason: reason.unwrap_or_else(|| "NotReady".into()),
            note: message,
            action: "Reconcile".into(),
            secondary: None,
        }
    } else {
        return;
    };
    if let Err(e) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(object = %backoff_key(object), "recording an event: {e}");
    }
}

fn id_of<K: Resource>(object: &K) -> Result<ResourceId, ControllerError> {
    Ok(ResourceId::new(
        namespace(object)?,
        object
            .meta()
            .name
            .clone()
            .ok_or(ControllerError::Incomplete("name"))?,
    ))
}

fn namespace<K: Resource>(object: &K) -> Result<String, ControllerError> {
    object
        .meta()
        .namespace
        .clone()
        .ok_or(ControllerError::Incomplete("namespace"))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_failure_up_to_five_minutes_and_resets() {
        let backoff = Backoff::default();
        let delays: Vec<u64> = (0..11).map(|_| backoff.failed("a").as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff.failed("b").as_secs(), 1, "per object");
        backoff.succeeded("a");
        assert_eq!(backoff.failed("a").as_secs(), 1);
    }
}
