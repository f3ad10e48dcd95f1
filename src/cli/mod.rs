//! Subcommands. `run` is the standalone data plane and `dataplane` the one a cluster's controller
//! feeds; `produce` and `event-display` are the small tools the README's walkthrough uses (a
//! producer and a sink that prints what it receives).

mod controller;
mod dataplane;
mod event_display;
mod produce;
mod run;
mod serve;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "kafka-bridge",
    version,
    about = "Knative KafkaSource and KafkaChannel, in Rust"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every KafkaSource and KafkaChannel in the given Kubernetes YAML, without Kubernetes.
    Run(RunArgs),
    /// Run the data plane in a cluster: the contract the controller writes, applied live.
    Dataplane(dataplane::DataPlaneArgs),
    /// Run the Kubernetes controller: reconcile KafkaSources and KafkaChannels, feed the data plane.
    Controller(controller::ControllerArgs),
    /// Produce records to a topic (for trying things out).
    Produce(produce::ProduceArgs),
    /// Serve HTTP and print every CloudEvent received, like Knative's event_display.
    EventDisplay(event_display::DisplayArgs),
    /// Print the CustomResourceDefinitions of KafkaSource and KafkaChannel (YAML).
    Crds,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// YAML file or directory (multi-document; .yaml, .yml, .json). Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    engine: serve::EngineArgs,
}

pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::Dataplane(args) => dataplane::run(args).await,
        Command::Controller(args) => controller::run(args).await,
        Command::Produce(args) => produce::produce(args).await,
        Command::EventDisplay(args) => event_display::serve(args).await,
        Command::Crds => print_stdout(&kafka_bridge::resources::crds::manifest()?),
    }
}

/// Writes `text` to stdout; a closed pipe (`kafka-bridge crds | head`) is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,librdkafka=warn,rdkafka=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

fn parse_key_value(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {raw:?}")),
    }
}

/// `250ms`, `30s`, `2m`.
fn parse_duration(raw: &str) -> Result<Duration, String> {
    let (number, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {raw:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("invalid duration {raw:?}: use ms, s or m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_pairs() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("s").is_err());
        assert_eq!(parse_key_value("a.b=c=d"), Ok(("a.b".into(), "c=d".into())));
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("x").is_err());
    }
}
