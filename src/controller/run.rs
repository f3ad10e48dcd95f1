//! Running the controller: wait to lead, then watch KafkaSources and KafkaChannels (and what a
//! channel depends on: its Services, the `kafka-channel-config` ConfigMap) and reconcile them
//! until shutdown or until leadership is lost.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::Api;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, Controller};
use kube::Client;
use tokio_util::sync::CancellationToken;

use crate::feed::channel_config::CONFIG_MAP_NAME;
use crate::kafka::client_config::ClientSettings;
use crate::resources::{KafkaChannel, KafkaSource};

use super::channel::{IngressService, CHANNEL_LABEL};
use super::cluster::Cluster;
use super::contract_store::ContractStore;
use super::dataplane::DataPlaneClient;
use super::leader::{Elector, LeaderError, LeaseSettings};
use super::reconcile::{on_error, reconcile_channel, reconcile_source, Backoff, Context};

/// Name of the controller, in Events and the Lease.
pub const CONTROLLER_NAME: &str = "kafka-bridge-controller";

#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Namespace of kafka-channel-config, the contract Secret, the Lease and the ingress Service.
    pub system_namespace: String,
    pub cluster_domain: String,
    /// The data plane's ingress Service, which channel Services point at.
    pub ingress_service: String,
    /// The data plane's `GET /status`.
    pub dataplane_status_url: String,
    pub kafka: ClientSettings,
    /// This replica's identity for leader election (its pod name).
    pub identity: String,
    pub lease_duration: Duration,
    pub lease_retry: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Leader(#[from] LeaderError),
    #[error("creating the data plane status client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Leads, then reconciles until `shutdown` fires (Ok) or leadership is lost (Err).
pub async fn run(
    client: Client,
    options: ControllerOptions,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let elector = Elector::new(
        client.clone(),
        LeaseSettings {
            name: CONTROLLER_NAME.to_owned(),
            namespace: options.system_namespace.clone(),
            identity: options.identity.clone(),
            duration: options.lease_duration,
            retry: options.lease_retry,
        },
    );
    tokio::select! {
        acquired = elector.acquire() => acquired?,
        () = shutdown.cancelled() => return Ok(()),
    }
    tracing::info!(identity = %options.identity, "leading; starting the controllers");

    let ctx = Arc::new(Context {
        cluster: Cluster {
            client: client.clone(),
            system_namespace: options.system_namespace.clone(),
            cluster_domain: options.cluster_domain.clone(),
        },
        contract: ContractStore::new(client.clone(), &options.system_namespace),
        dataplane: DataPlaneClient::new(options.dataplane_status_url.clone())?,
        ingress: IngressService {
            name: options.ingress_service.clone(),
            namespace: options.system_namespace.clone(),
            cluster_domain: options.cluster_domain.clone(),
        },
        kafka: options.kafka.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: CONTROLLER_NAME.to_owned(),
                instance: Some(options.identity.clone()),
            },
        ),
        backoff: Backoff::default(),
    });

    if let Err(e) = ctx.contract.ensure_written().await {
        // Not fatal: the first reconcile writes the contract too.
        tracing::warn!("writing the initial data plane contract: {e}");
    }

    // Both controllers stop on shutdown or when leadership is lost.
    let stop = shutdown.child_token();
    let sources = Controller::new(
        Api::<KafkaSource>::all(client.clone()),
        watcher::Config::default(),
    )
    .graceful_shutdown_on(stop.clone().cancelled_owned())
    .run(reconcile_source, on_error, Arc::clone(&ctx))
    .for_each(|result| async move { log_result("KafkaSource", result) });

    let channels = Controller::new(
        Api::<KafkaChannel>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = channels.store();
    let channels = channels
        .owns(
            Api::<Service>::all(client.clone()),
            watcher::Config::default().labels(CHANNEL_LABEL),
        )
        .watches(
            Api::<ConfigMap>::namespaced(client.clone(), &options.system_namespace),
            watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP_NAME}")),
            // The cluster config changed: every channel uses it.
            move |_| {
                store
                    .state()
                    .iter()
                    .map(|c| ObjectRef::from_obj(&**c))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(reconcile_channel, on_error, Arc::clone(&ctx))
        .for_each(|result| async move { log_result("KafkaChannel", result) });

    let controllers = futures::future::join(sources, channels);
    tokio::pin!(controllers);
    tokio::select! {
        _ = &mut controllers => Ok(()),
        lost = elector.hold() => {
            stop.cancel();
            controllers.await;
            Err(RunError::Leader(lost))
        }
    }
}

fn log_result<T: std::fmt::Debug, E: std::fmt::Display>(kind: &str, result: Result<T, E>) {
    match result {
        Ok(object) => tracing::debug!(%kind, ?object, "reconciled"),
        Err(e) => tracing::debug!(%kind, "reconcile: {e}"),
    }
}
