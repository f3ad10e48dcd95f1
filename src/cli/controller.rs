//! `kafka-bridge controller`: the Kubernetes controller, with a small admin server for probes.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use axum::Router;
use kafka_bridge::controller::run::{self, ControllerOptions};
use kafka_bridge::kafka::client_config::ClientSettings;
use tokio_util::sync::CancellationToken;

use super::serve::Signals;
use super::{parse_duration, parse_key_value};

#[derive(Debug, clap::Args)]
pub struct ControllerArgs {
    /// Namespace of kafka-channel-config, the contract Secret, the Lease and the ingress Service.
    #[arg(long, default_value = "knative-eventing")]
    system_namespace: String,
    /// DNS suffix of in-cluster Service names.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// The data plane's ingress Service (in the system namespace), which channel Services name.
    #[arg(long, default_value = "kafka-bridge-ingress")]
    ingress_service: String,
    /// The data plane's status endpoint.
    #[arg(
        long,
        default_value = "http://kafka-bridge-dataplane.knative-eventing.svc.cluster.local:9090/status"
    )]
    dataplane_status_url: String,
    /// Serves /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:9090")]
    admin_addr: SocketAddr,
    /// This replica's identity for leader election; the pod name.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// How long a leader's Lease stays valid without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,
    /// How often the leader renews its Lease and candidates retry.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    lease_retry: Duration,
    /// librdkafka property for the topic admin clients, applied last. Repeatable.
    #[arg(long = "kafka-config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    kafka_config: Vec<(String, String)>,
}

pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    let mut signals = Signals::install()?;
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(args.admin_addr)
        .await
        .with_context(|| format!("binding the admin address {}", args.admin_addr))?;
    let admin = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ok\n" }));
    let admin = tokio::spawn(kafka_bridge::admin::serve(
        listener,
        admin,
        shutdown.clone(),
    ));

    // kube's error already says what it tried; its source chain would repeat it.
    let client = kube::Client::try_default().await.map_err(|e| {
        anyhow::anyhow!("connecting to the Kubernetes API (in-cluster config or KUBECONFIG): {e}")
    })?;
    let identity = match args.identity {
        Some(identity) => identity,
        None => format!("{}-{}", run::CONTROLLER_NAME, uuid::Uuid::new_v4()),
    };
    let options = ControllerOptions {
        system_namespace: args.system_namespace,
        cluster_domain: args.cluster_domain,
        ingress_service: args.ingress_service,
        dataplane_status_url: args.dataplane_status_url,
        kafka: ClientSettings {
            overrides: args.kafka_config.into_iter().collect(),
        },
        identity,
        lease_duration: args.lease_duration,
        lease_retry: args.lease_retry,
    };
    let controller = run::run(client, options, shutdown.clone());
    tokio::pin!(controller);
    let result = tokio::select! {
        result = &mut controller => result,
        () = signals.recv() => {
            tracing::info!("stopping");
            shutdown.cancel();
            controller.await
        }
    };
    shutdown.cancel();
    let _ = admin.await;
    result.context("controller")
}
