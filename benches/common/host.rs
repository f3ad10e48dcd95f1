//! Where a bench runs: the target directory it writes to, and the facts a report states about the
//! machine and the code so that its figures can be judged (cores, CPU, load, commit).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// `<target>/<profile>/deps/<bench exe>` → `<target>`.
pub fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the bench executable")?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .with_context(|| format!("no target directory above {}", exe.display()))
}

/// The 1, 5 and 15 minute load averages: how busy the shared machine was.
pub fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The short hash of the checked-out commit, empty outside a git work tree.
pub fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The report's opening lines: title, date, machine, load at start, commit, and `extra` lines.
pub fn header(title: &str, extra: &[String]) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = format!(
        "# {title}\n\n\
         - date: {}\n- machine: {cores} cores (nproc), {}, load average at start {}\n\
         - kafka-bridge commit: {}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        crate::process::cpu_model(),
        load_average(),
        commit(),
    );
    for line in extra {
        out.push_str("- ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// The bridge binary under test: $KAFKA_BRIDGE_BIN, else the one cargo built for the bench.
pub fn bridge_binary() -> anyhow::Result<PathBuf> {
    let binary = std::env::var_os("KAFKA_BRIDGE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kafka-bridge")));
    if !binary.exists() {
        anyhow::bail!("{} is missing: run cargo build --release", binary.display());
    }
    Ok(binary)
}

/// Empties `<target>/<name>` (each process's log and YAML of the last run) and returns it.
pub fn fresh_work_dir(target: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let work = target.join(name);
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    Ok(work)
}
