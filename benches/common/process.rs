//! Child processes the bench starts (broker, bridge, baseline) and the figures read about them
//! from /proc. A child is killed when its handle drops and, through `PR_SET_PDEATHSIG`, when the
//! bench itself dies, so an interrupted run leaves nothing behind.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

pub struct Proc {
    name: String,
    child: Child,
}

/// Memory and threads of a process, from /proc/PID/status.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
}

impl Proc {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log handle")?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {name} (log {})", log.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .id()
            .with_context(|| format!("{} has already been reaped", self.name))
    }

    /// Fails if the process has exited: a run must not measure a dead consumer.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!("{} exited early: {status}", self.name),
            Err(error) => bail!("{}: {error}", self.name),
        }
    }

    /// User plus system CPU time so far (all threads).
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        let pid = self.pid()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat of {}", self.name))?;
        parse_cpu_ticks(&stat)
            .map(ticks_to_duration)
            .with_context(|| format!("parsing /proc/{pid}/stat of {}", self.name))
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self.pid()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status of {}", self.name))?;
        Ok(parse_status(&status))
    }

    /// SIGTERM, then SIGKILL if the process has not exited within `grace`.
    pub async fn terminate(mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: plain syscall on a pid we own and have not reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            eprintln!("  {} ignored SIGTERM for {grace:?}; killing it", self.name);
            // The child is reaped by kill(); an error means it has just gone, which is the goal.
            let _ = self.child.kill().await;
        }
    }
}

/// A loopback port that was free a moment ago (the child binds it soon after).
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    listener.local_addr().context("reading the free port")
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|hz| *hz > 0).unwrap_or(100);
    Duration::from_micros(ticks * 1_000_000 / hz)
}

/// utime + stime in clock ticks. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted from the last ')'.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parse_status(status: &str) -> Memory {
    let mut memory = Memory::default();
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = value
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        match key {
            "VmRSS" => memory.rss_kib = number,
            "VmHWM" => memory.hwm_kib = number,
            "Threads" => memory.threads = number,
            _ => {}
        }
    }
    memory
}

/// CPU time of the bench process itself (the sink, and the mock cluster when it is used).
pub fn self_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(ticks_to_duration)
}

/// A runtime on the calling thread alone, so that thread's CPU time is the work it runs.
pub fn current_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime")
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

/// The ids of the bench process's threads.
// Used by the channel bench's cost section only.
#[allow(dead_code)]
pub fn thread_ids() -> BTreeSet<u32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return BTreeSet::new();
    };
    tasks
        .filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// CPU time `threads` of the bench process used so far (10 ms resolution); a thread gone counts
/// nothing.
#[allow(dead_code)]
pub fn threads_cpu(threads: &BTreeSet<u32>) -> Duration {
    let ticks = threads
        .iter()
        .filter_map(|tid| std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok())
        .filter_map(|stat| parse_cpu_ticks(&stat))
        .sum();
    ticks_to_duration(ticks)
}

/// CPU time every process on the machine has used since boot, from /proc/stat: the difference
/// over a run, less our own processes, is what other users of this shared machine took.
pub fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_busy(&stat).map(ticks_to_duration)
}

/// user + nice + system + irq + softirq + steal of the aggregate `cpu` line, in ticks.
fn parse_machine_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .map(|i| fields.get(*i).copied().unwrap_or(0));
    Some(busy.sum())
}

/// Reads the CPU model once for the report header.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Checks of the pure parsers, run by `cargo test --benches` (see each bench's main).
pub fn self_check() {
    let cases = [
        (
            "1 (kafka-bridge) S 1 1 1 0 -1 0 0 0 0 0 7 3 0 0 20 0 4",
            Some(10),
        ),
        ("9 (a) b) (c) R 1 1 1 0 -1 0 0 0 0 0 100 50 0 0", Some(150)),
        ("1 (x) S 1", None),
        ("garbage", None),
    ];
    for (stat, want) in cases {
        assert_eq!(parse_cpu_ticks(stat), want, "{stat}");
    }
    let cases = [
        (
            "cpu  10 1 5 1000 7 2 3 4 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\n",
            Some(25),
        ),
        ("cpu  10 1 5\n", Some(16)),
        ("intr 1 2\n", None),
    ];
    for (stat, want) in cases {
        assert_eq!(parse_machine_busy(stat), want, "{stat}");
    }
    let memory = parse_status("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t7\n");
    assert_eq!(
        (memory.rss_kib, memory.hwm_kib, memory.threads),
        (1024, 2048, 7)
    );
}
