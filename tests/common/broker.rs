//! The Kafka-API broker the integration tests run against: one tansu process per test binary.
//!
//! It starts lazily on first use, on a free 127.0.0.1 port, in a fresh temp dir (tansu reads a
//! `.env` from its working directory), with in-memory storage so every test binary starts empty.
//! It never outlives the test process: it runs in its own process group, is killed from an
//! `atexit` handler on a normal exit, and gets SIGKILL from the kernel (PR_SET_PDEATHSIG) when
//! the test process dies any other way. The spawning thread is a keeper thread that lives as long
//! as the broker does, because the kernel ties PDEATHSIG to the thread, not the process.

use std::env;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::net::free_port;
use super::process::{die_with_parent, kill_group};

/// How long tansu gets to answer a metadata request after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Fresh ports tried when tansu exits at start (e.g. the port was taken in the meantime).
const START_ATTEMPTS: usize = 3;

static BROKER: OnceLock<Result<Broker, String>> = OnceLock::new();
/// Process group of the running tansu, for the exit handler (0: none).
static PGID: AtomicI32 = AtomicI32::new(0);
/// Temp dir of the running tansu, removed by the exit handler.
static DIR: OnceLock<PathBuf> = OnceLock::new();

/// A running tansu broker shared by all tests of this binary.
pub struct Broker {
    bootstrap: String,
    pid: u32,
    dir: PathBuf,
    log: PathBuf,
    exited: Arc<Mutex<Option<io::Result<ExitStatus>>>>,
}

/// The shared broker, started on first call, for async tests (the start blocks, so it runs on the
/// blocking pool).
pub async fn broker() -> &'static Broker {
    match tokio::task::spawn_blocking(Broker::shared).await {
        Ok(broker) => broker,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("broker start task failed: {e}"),
    }
}

impl Broker {
    /// The shared broker, started on first call. Panics with tansu's log if it cannot start or
    /// has died since.
    pub fn shared() -> &'static Broker {
        match BROKER.get_or_init(start) {
            Ok(broker) => {
                broker.assert_alive();
                broker
            }
            Err(message) => panic!("{message}"),
        }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Everything tansu wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<no tansu log: {e}>"))
    }

    /// Panics with tansu's log when the process has exited.
    pub fn assert_alive(&self) {
        let exited = self.exited.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(status) = exited.as_ref() {
            panic!(
                "tansu (pid {}, dir {}) has exited: {status:?}\n--- tansu log ---\n{}",
                self.pid,
                self.dir.display(),
                self.log()
            );
        }
    }
}

/// Where the tansu binary is: `$TANSU`, then `PATH`, then `~/.cargo/bin/tansu`.
fn tansu_binary() -> Result<PathBuf, String> {
    if let Some(path) = env::var_os("TANSU") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "TANSU={} is not a file (unset it, or run .ci/test to install tansu)",
                path.display()
            ))
        };
    }
    let path_var = env::var_os("PATH").unwrap_or_default();
    let home_bin = env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo/bin"));
    env::split_paths(&path_var)
        .chain(home_bin)
        .map(|dir| dir.join("tansu"))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            "tansu 0.6.0 not found ($TANSU, PATH, ~/.cargo/bin/tansu). The integration tests \
             need it: run `.ci/test`, which installs it (cargo install tansu --locked --version \
             0.6.0 --features dynostore), or point TANSU at the binary."
                .to_string()
        })
}

fn start() -> Result<Broker, String> {
    let binary = tansu_binary()?;
    let dir = tempfile::Builder::new()
        .prefix("kb-tansu-")
        .tempdir_in(super::scratch_dir())
        .map_err(|e| format!("cannot create a temp dir for tansu: {e}"))?
        .keep();
    // The dir and process are cleaned up by the exit handler, since statics are never dropped.
    // `start` runs once per process (OnceLock), so DIR is always unset here.
    let _ = DIR.set(dir.clone());
    // SAFETY: `on_exit` is an `extern "C" fn()` that only calls kill(2) and removes a dir.
    unsafe {
        libc::atexit(on_exit);
    }

    let mut failures = Vec::new();
    for attempt in 1..=START_ATTEMPTS {
        let port = free_port();
        let log = dir.join(format!("tansu-{attempt}.log"));
        match start_once(&binary, &dir, port, &log) {
            Ok(broker) => return Ok(broker),
            Err(failure) => failures.push(format!("attempt {attempt} on port {port}: {failure}")),
        }
    }
    Err(format!(
        "tansu ({}) did not start after {START_ATTEMPTS} attempts:\n{}",
        binary.display(),
        failures.join("\n")
    ))
}

fn start_once(binary: &Path, dir: &Path, port: u16, log: &Path) -> Result<Broker, String> {
    let url = format!("tcp://127.0.0.1:{port}");
    let log_file = File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("clone log file handle: {e}"))?;
    let mut command = Command::new(binary);
    command
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", "memory://tansu/"])
        .current_dir(dir)
        .env(
            "RUST_LOG",
            env::var_os("TANSU_LOG").unwrap_or_else(|| OsString::from("warn")),
        )
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .process_group(0);
    // Settings tansu also reads from the environment: ours are passed as arguments, the rest
    // must not leak in from the developer's shell.
    for var in [
        "CLUSTER_ID",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "DATA_LAKE",
        "ICEBERG_CATALOG",
        "ICEBERG_NAMESPACE",
        "ICEBERG_WAREHOUSE",
        "DELTA_DATABASE",
    ] {
        command.env_remove(var);
    }
    // SAFETY: the hook only makes async-signal-safe calls (see `process::die_with_parent`).
    unsafe {
        command.pre_exec(die_with_parent());
    }

    let exited = Arc::new(Mutex::new(None));
    let pid = spawn_kept(command, exited.clone())?;
    PGID.store(pid as i32, Ordering::SeqCst);

    let bootstrap = format!("127.0.0.1:{port}");
    let broker = Broker {
        bootstrap,
        pid,
        dir: dir.to_path_buf(),
        log: log.to_path_buf(),
        exited,
    };
    match wait_metadata(&broker) {
        Ok(()) => Ok(broker),
        Err(reason) => {
            kill_group(pid as i32);
            Err(format!("{reason}\n--- tansu log ---\n{}", broker.log()))
        }
    }
}

/// Spawns `command` from a keeper thread that lives until the child exits, recording its status.
fn spawn_kept(
    mut command: Command,
    exited: Arc<Mutex<Option<io::Result<ExitStatus>>>>,
) -> Result<u32, String> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("tansu-keeper".into())
        .spawn(move || match command.spawn() {
            Err(e) => {
                // The receiver waits for this message; if it is gone there is no one to tell.
                let _ = tx.send(Err(e));
            }
            Ok(mut child) => {
                let _ = tx.send(Ok(child.id())); // as above
                let status = child.wait();
                *exited.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
            }
        })
        .map_err(|e| format!("spawn keeper thread: {e}"))?;
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(pid)) => Ok(pid),
        Ok(Err(e)) => Err(format!("spawn tansu: {e}")),
        Err(e) => Err(format!("keeper thread did not report the spawn: {e}")),
    }
}

/// Polls a metadata request until it succeeds, tansu exits, or READY_TIMEOUT passes.
fn wait_metadata(broker: &Broker) -> Result<(), String> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("log_level", "3")
        .create()
        .map_err(|e| format!("create metadata client: {e}"))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last_error = String::from("no attempt");
    while Instant::now() < deadline {
        if let Some(status) = broker
            .exited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Err(format!("tansu exited during start: {status:?}"));
        }
        match client.fetch_metadata(None, Duration::from_secs(1)) {
            Ok(metadata) if !metadata.brokers().is_empty() => return Ok(()),
            Ok(_) => last_error = "metadata lists no broker".into(),
            Err(e) => last_error = e.to_string(),
        }
        thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "tansu on {} gave no metadata within {READY_TIMEOUT:?}: {last_error}",
        broker.bootstrap
    ))
}

extern "C" fn on_exit() {
    kill_group(PGID.swap(0, Ordering::SeqCst));
    if let Some(dir) = DIR.get() {
        // Best effort at exit: a leftover temp dir is harmless and there is no one to report to.
        let _ = std::fs::remove_dir_all(dir);
    }
}
