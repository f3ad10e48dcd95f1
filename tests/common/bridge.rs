//! The `kafka-bridge` binary under test, run as a real process.
//!
//! Started as `kafka-bridge run -f <file>` (or `dataplane --contract <file>`) with `--admin-addr
//! 127.0.0.1:<port> --ingress-addr 127.0.0.1:<port> [extra args]`, with stdout and stderr
//! captured to a file that is printed when a test panics (or on demand). The process is its own group leader, dies with the thread that
//! started it (PR_SET_PDEATHSIG) and is SIGKILLed when the handle is dropped.

use std::ffi::OsStr;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use kafka_bridge::engine::report::Report;
use tokio::process::{Child, Command};

use super::net::{free_port, http_client};
use super::process::{die_with_parent, kill_group, signal_group};

/// A running (or exited) `kafka-bridge` process.
pub struct BridgeProcess {
    child: Child,
    pid: i32,
    admin: SocketAddr,
    ingress: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
    exit: Option<ExitStatus>,
}

impl BridgeProcess {
    /// Starts the bridge on `config` with fresh admin and ingress ports. Must be called inside a
    /// tokio runtime, from a thread that outlives the process (a test's own thread or worker).
    pub fn start(config: &Path, extra_args: &[&str]) -> BridgeProcess {
        BridgeProcess::start_with_env(config, extra_args, &[])
    }

    /// As [`BridgeProcess::start`], with extra environment variables. `RUST_LOG` defaults to
    /// `$KB_BRIDGE_LOG` or `info,kafka_bridge=debug`.
    pub fn start_with_env(
        config: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> BridgeProcess {
        let command: [&OsStr; 3] = ["run".as_ref(), "-f".as_ref(), config.as_os_str()];
        BridgeProcess::spawn(&command, extra_args, env)
    }

    /// Starts `kafka-bridge dataplane --contract <contract>` with fresh admin and ingress ports
    /// and a short contract poll interval (200 ms, unless `extra_args` sets one).
    pub fn dataplane(contract: &Path, extra_args: &[&str]) -> BridgeProcess {
        let command: [&OsStr; 3] = [
            "dataplane".as_ref(),
            "--contract".as_ref(),
            contract.as_os_str(),
        ];
        let mut args = extra_args.to_vec();
        if !args.contains(&"--poll-interval") {
            args.extend(["--poll-interval", "200ms"]);
        }
        BridgeProcess::spawn(&command, &args, &[])
    }

    fn spawn(command_args: &[&OsStr], extra_args: &[&str], env: &[(&str, &str)]) -> BridgeProcess {
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let ingress = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let dir = tempfile::Builder::new()
            .prefix("kb-bridge-")
            .tempdir_in(super::scratch_dir())
            .expect("temp dir for the bridge");
        let log = dir.path().join("bridge.log");
        let out = File::create(&log).expect("create bridge log");
        let err = out.try_clone().expect("clone bridge log handle");
        let rust_log =
            std::env::var("KB_BRIDGE_LOG").unwrap_or_else(|_| "info,kafka_bridge=debug".into());

        let mut command = Command::new(env!("CARGO_BIN_EXE_kafka-bridge"));
        command
            .args(command_args)
            .args(["--admin-addr", &admin.to_string()])
            .args(["--ingress-addr", &ingress.to_string()])
            .args(extra_args)
            .current_dir(dir.path())
            .env("RUST_LOG", rust_log)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: the hook only makes async-signal-safe calls (see `process::die_with_parent`).
        unsafe {
            command.pre_exec(die_with_parent());
        }
        let child = command.spawn().expect("spawn kafka-bridge");
        let pid = child.id().expect("a just-spawned child has a pid") as i32;
        BridgeProcess {
            child,
            pid,
            admin,
            ingress,
            log,
            _dir: dir,
            client: http_client(),
            exit: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn ingress_addr(&self) -> SocketAddr {
        self.ingress
    }

    /// `http://127.0.0.1:PORT` of the admin server (health, readiness, metrics).
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// `http://127.0.0.1:PORT` of the channel ingress.
    pub fn ingress_url(&self) -> String {
        format!("http://{}", self.ingress)
    }

    /// Everything the bridge wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("<no bridge log: {e}>"))
    }

    /// Prints the captured output to stderr (shown by the test harness on failure).
    pub fn print_log(&self) {
        eprintln!(
            "--- kafka-bridge (pid {}) log ---\n{}--- end of kafka-bridge log ---",
            self.pid,
            self.log()
        );
    }

    /// Polls `GET /readyz` every 100 ms until it answers 200. Panics with the log when `timeout`
    /// passes or the process exits first.
    pub async fn wait_ready(&mut self, timeout: Duration) {
        let url = format!("{}/readyz", self.admin_url());
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last;
        loop {
            if let Some(status) = self.try_exit_status() {
                self.print_log();
                panic!("kafka-bridge exited before it was ready: {status}");
            }
            match self
                .client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(response) if response.status() == reqwest::StatusCode::OK => return,
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    last = format!("{status}: {body}");
                }
                Err(e) => last = e.to_string(),
            }
            if tokio::time::Instant::now() >= deadline {
                self.print_log();
                panic!("kafka-bridge not ready within {timeout:?}; last /readyz: {last}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET` on the admin server: status and body.
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.admin_url());
        match self.client.get(&url).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response
                    .text()
                    .await
                    .unwrap_or_else(|e| panic!("read body of GET {url}: {e}"));
                (status, body)
            }
            Err(e) => {
                self.print_log();
                panic!("GET {url}: {e}");
            }
        }
    }

    /// The per-resource status from `GET /status`; panics unless it answers 200 with one.
    pub async fn status(&self) -> Report {
        let (status, body) = self.admin_get("/status").await;
        if status != 200 {
            self.print_log();
            panic!("GET /status answered {status}: {body}");
        }
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET /status: {e}: {body}"))
    }

    /// The Prometheus text from `GET /metrics`; panics unless it answers 200.
    pub async fn metrics(&self) -> String {
        let (status, body) = self.admin_get("/metrics").await;
        if status != 200 {
            self.print_log();
            panic!("GET /metrics answered {status}: {body}");
        }
        body
    }

    /// Sends SIGTERM to the bridge itself (a graceful shutdown request).
    pub fn sigterm(&self) {
        if self.exit.is_none() {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(self.pid, libc::SIGTERM);
            }
        }
    }

    /// SIGKILLs the bridge's whole process group (a crash) and reaps it.
    pub async fn kill9(&mut self) -> ExitStatus {
        if self.exit.is_none() {
            signal_group(self.pid, libc::SIGKILL);
        }
        self.wait_exit(Duration::from_secs(10)).await
    }

    /// Waits for the process to exit; panics with the log after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.exit = Some(status);
                status
            }
            Ok(Err(e)) => panic!("waiting for kafka-bridge: {e}"),
            Err(_) => {
                self.print_log();
                panic!("kafka-bridge did not exit within {timeout:?}");
            }
        }
    }

    /// The exit status if the process has exited (without waiting).
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
            }
        }
        self.exit
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log();
        }
        if self.try_exit_status().is_none() {
            kill_group(self.pid);
        }
    }
}
