//! The baseline: `benches/baseline/naive_bridge.py` (confluent-kafka + aiohttp), run in the venv
//! that `venv::ensure_venv` prepares.

use std::path::Path;

use tokio::process::Command;

use crate::bridge::SESSION_TIMEOUT_MS;
use crate::process::Proc;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/benches/baseline/naive_bridge.py"
);

/// Starts the naive bridge on `topic` as `group`, POSTing to `sink`.
pub fn spawn(
    python: &Path,
    logs: &Path,
    label: &str,
    bootstrap: &str,
    topic: &str,
    group: &str,
    sink: &str,
) -> anyhow::Result<Proc> {
    let mut command = Command::new(python);
    command
        .arg(SCRIPT)
        .args([bootstrap, topic, group, sink, SESSION_TIMEOUT_MS]);
    Proc::spawn(label, command, &logs.join(format!("{label}.log")))
}
