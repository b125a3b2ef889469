//! The one reaper: the only place kennel calls `waitpid`, always for any child, until none
//! is left to collect.

use kennel_core::{ExitStatus, Pid};

/// Collect every child that has ended, without blocking. Call on every SIGCHLD (signals
/// coalesce, so one SIGCHLD may stand for many exits) and once at start.
pub fn reap_all() -> Vec<(Pid, ExitStatus)> {
    let mut out = Vec::new();
    while let Some(exit) = reap_one() {
        out.push(exit);
    }
    out
}

/// Collect one ended child, if any, without blocking.
pub fn reap_one() -> Option<(Pid, ExitStatus)> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid writes only into `status`. libc is used rather than nix because
        // nix fails to decode a death by a real-time signal after the child is already
        // reaped, which would lose that exit.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG | libc::__WALL) };
        if pid > 0 {
            if libc::WIFEXITED(status) {
                return Some((pid, ExitStatus::Code(libc::WEXITSTATUS(status))));
            }
            if libc::WIFSIGNALED(status) {
                return Some((pid, ExitStatus::Signal(libc::WTERMSIG(status))));
            }
            continue; // stopped/continued reports are not exits
        }
        if pid < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        return None; // 0: children remain but none ended; -1 ECHILD: no children
    }
}

/// Whether `pid` is a child of kennel that is not reaped yet (running, or a zombie), so
/// that signalling it by pid cannot hit a reused pid. Reaps nothing.
pub fn is_unreaped_child(pid: Pid) -> bool {
    // SAFETY: waitid writes only into `info`; WNOWAIT leaves the child to `reap_all`.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        ) == 0
    }
}

/// Become the reaper of orphaned descendants when not PID 1.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer argument and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
