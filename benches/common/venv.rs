//! The Python venv the benches' baselines run in, created under the target directory on first
//! use (pip from PyPI; confluent-kafka's wheels bundle librdkafka, so nothing else is needed).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::Command;

const INSTALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Returns the venv's python, creating the venv and installing the packages when missing.
pub async fn ensure_venv(target: &Path) -> anyhow::Result<PathBuf> {
    let venv = target.join("bench-venv");
    let python = venv.join("bin/python");
    if imports_ok(&python).await {
        return Ok(python);
    }
    eprintln!("  creating the baseline's venv in {}", venv.display());
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    )
    .await?;
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--timeout", "60"])
            .args(["confluent-kafka", "aiohttp"]),
        "pip install confluent-kafka aiohttp",
    )
    .await?;
    if !imports_ok(&python).await {
        bail!(
            "{} cannot import confluent_kafka and aiohttp",
            python.display()
        );
    }
    Ok(python)
}

async fn imports_ok(python: &Path) -> bool {
    if !python.exists() {
        return false;
    }
    let check = Command::new(python)
        .args(["-c", "import confluent_kafka, aiohttp"])
        .kill_on_drop(true)
        .status();
    matches!(
        tokio::time::timeout(Duration::from_secs(30), check).await,
        Ok(Ok(status)) if status.success()
    )
}

async fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    command.kill_on_drop(true);
    let status = tokio::time::timeout(INSTALL_TIMEOUT, command.status())
        .await
        .with_context(|| format!("{what} took over {INSTALL_TIMEOUT:?}"))?
        .with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed: {status}");
    }
    Ok(())
}
