//! The frame every bench's `main` shares: run as `cargo test --benches` does (no `--bench`), a
//! bench only checks its pure helpers; run as a bench, it runs on a multi-thread runtime and ends
//! by printing its markdown report and writing it under the target directory.

use std::fmt::Write as _;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

/// Runs each named check (they panic on failure) and reports like the test harness.
pub fn self_check(bench: &str, checks: &[(&str, fn())]) -> ExitCode {
    for (name, check) in checks {
        check();
        println!("check {name} ... ok");
    }
    println!("{bench}: {} passed, 0 failed", checks.len());
    ExitCode::SUCCESS
}

/// Runs the bench to completion; an error is printed with its causes and fails the process.
pub fn block_on(bench: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(bench) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Adds the closing line (duration, load at the end), prints the report and writes it to
/// `<target>/<file>`.
pub fn finish_report(
    mut markdown: String,
    started: Instant,
    target: &Path,
    file: &str,
) -> anyhow::Result<()> {
    // Writing to a String cannot fail.
    let _ = writeln!(
        markdown,
        "Whole bench: {:.0} s; load average at the end {}.",
        started.elapsed().as_secs_f64(),
        crate::host::load_average()
    );
    println!("{markdown}");
    let report = target.join(file);
    std::fs::write(&report, &markdown).with_context(|| format!("writing {}", report.display()))?;
    eprintln!("report written to {}", report.display());
    Ok(())
}
