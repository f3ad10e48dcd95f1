//! The `kafka-bridge` binary: command-line parsing, logging, and exit codes. Everything it runs
//! lives in the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: the ingress and the dispatchers allocate and free per
/// event on many threads, and glibc spent about a quarter of the ingress's CPU in malloc, free
/// and its consolidation of freed chunks (perf, 256 clients); see README, Performance.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::execute(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
