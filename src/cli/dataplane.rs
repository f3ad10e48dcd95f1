//! `kafka-bridge dataplane`: the data plane in a cluster. It runs the same engine as `run`, fed
//! by the contract the controller writes into a Secret mounted as a file: read at start and
//! whenever its bytes change, each change applied live. A contract that cannot be used is logged
//! and counted (`kafka_bridge_contract_errors_total`) while the previous plan keeps running.

use std::path::PathBuf;
use std::time::Duration;

use kafka_bridge::engine::contract::{self, Contract};
use kafka_bridge::engine::readiness::ReadyWhen;
use kafka_bridge::feed::contract_file::{Change, ContractFile};

use super::parse_duration;
use super::serve::{EngineArgs, Serving, Signals, Starting};

#[derive(Debug, clap::Args)]
pub struct DataPlaneArgs {
    /// The contract file (the controller's Secret `kafka-bridge-contract`, key `contract.json`).
    #[arg(long, default_value = contract::DEFAULT_PATH)]
    contract: PathBuf,
    /// How often the contract file is checked for changes.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    poll_interval: Duration,
    #[command(flatten)]
    engine: EngineArgs,
}

pub async fn run(args: DataPlaneArgs) -> anyhow::Result<()> {
    let mut signals = Signals::install()?;
    // The ingress is bound from the start: channels come and go with the contract.
    let mut serving = Starting::new(&args.engine, ReadyWhen::ContractApplied)
        .serve(&args.engine, true)
        .await?;
    tracing::info!(
        admin = %args.engine.admin_addr,
        ingress = %args.engine.ingress_addr,
        contract = %args.contract.display(),
        "kafka-bridge data plane running"
    );
    let mut file = ContractFile::new(&args.contract);
    let mut poll = tokio::time::interval(args.poll_interval.max(Duration::from_millis(10)));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = signals.recv() => break,
            _ = poll.tick() => {
                let change = file.poll().await;
                on_change(&mut serving, &file, change).await;
            }
        }
    }
    serving.shutdown().await
}

async fn on_change(serving: &mut Serving, file: &ContractFile, change: Change) {
    let path = file.path().display();
    match change {
        Change::None => {}
        Change::Updated(Ok(contract)) => apply(serving, contract).await,
        Change::Updated(Err(error)) => {
            serving.metrics.contract_errors().inc();
            tracing::error!(%error, "contract not applied; the previous plan keeps running");
        }
        Change::Missing => tracing::warn!(
            contract = %path,
            "no contract file (yet); waiting for it, the current plan keeps running"
        ),
        Change::Unreadable(error) => {
            serving.metrics.contract_errors().inc();
            tracing::error!(contract = %path, %error, "contract file unreadable; the previous plan keeps running");
        }
    }
}

async fn apply(serving: &mut Serving, contract: Contract) {
    let Contract { revision, plan } = contract;
    tracing::info!(
        revision,
        sources = plan.sources.len(),
        channels = plan.channels.len(),
        "applying contract"
    );
    serving.engine.apply(&plan).await;
    serving.readiness.applied(revision);
    tracing::info!(revision, "contract applied");
}
