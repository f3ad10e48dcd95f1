//! What keeps child processes from outliving the tests: kernel parent-death signals and
//! process-group kills.

use std::io;

/// A `pre_exec` hook that makes the kernel SIGKILL the child when the thread that spawned it dies,
/// and closes the race in which the parent died before the request took effect.
///
/// The signal is tied to the spawning *thread*: spawn from a thread that lives as long as the
/// child should (a test's own thread or runtime worker, or a dedicated keeper thread), never from
/// a short-lived blocking-pool thread.
pub fn die_with_parent() -> impl FnMut() -> io::Result<()> + Send + Sync + 'static {
    let parent = std::process::id() as libc::pid_t;
    move || {
        // SAFETY: prctl, getppid and _exit are async-signal-safe, as required between fork and exec.
        unsafe {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
        }
        Ok(())
    }
}

/// Sends `signal` to the process group `pgid` (children are spawned as group leaders).
pub fn signal_group(pgid: i32, signal: libc::c_int) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// SIGKILL to a whole process group.
pub fn kill_group(pgid: i32) {
    signal_group(pgid, libc::SIGKILL);
}
