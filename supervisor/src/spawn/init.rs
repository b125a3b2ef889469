//! The tiny init: wait for one child while forwarding every signal to it and reaping
//! every orphan; end with the child's exit code. Synchronous, no runtime, no threads.
//! Used by `kennel run`, by the container's PID 1, and by the helper that waits for it.

use crate::reaper;

/// Block every signal for this thread (they are then taken with [`wait_signal`]). Blocked
/// signals are never discarded, even for a PID 1 with default dispositions, so nothing
/// sent to the init is lost.
pub fn block_all_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Take the next pending signal of `set`.
pub fn wait_signal(set: &libc::sigset_t) -> libc::c_int {
    loop {
        // SAFETY: sigwaitinfo reads the set and writes into a local siginfo.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(set, &mut info)
        };
        if sig > 0 {
            return sig;
        }
    }
}

/// Wait for `child` to end, sending every signal except SIGCHLD to `target` (the child,
/// or `-pgid` for its group) and reaping every other process that ends meanwhile. Returns
/// the child's exit code, 128+N when it was killed by signal N. Signals must already be
/// blocked ([`block_all_signals`]) before `child` was created.
pub fn supervise(child: libc::pid_t, target: libc::pid_t, set: &libc::sigset_t) -> i32 {
    // The child may have ended before we got here: look first, then wait for signals.
    loop {
        let mut code = None;
        for (p, status) in reaper::reap_all() {
            if p == child {
                code = Some(status.as_code());
            }
        }
        if let Some(code) = code {
            // Collect what ended alongside; the rest of a pid namespace dies with its init.
            reaper::reap_all();
            return code;
        }
        loop {
            let sig = wait_signal(set);
            if sig == libc::SIGCHLD {
                break;
            }
            // SAFETY: kill(2) with a pid and a signal number touches no memory.
            unsafe {
                libc::kill(target, sig);
            }
        }
    }
}
