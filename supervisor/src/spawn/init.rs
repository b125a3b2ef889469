//! The tiny init: wait for one child while forwarding every signal to it and reaping
//! every orphan; end with the child's exit code. Synchronous, no runtime, no threads.
//! Used by `kennel run`, by the container's PID 1, and by the helper that waits for it.
//!
//! A container's init that saw its service killed by signal N exits with 128+N: as PID 1
//! of its pid namespace it cannot die by that signal itself (the kernel drops every
//! signal but SIGKILL to a namespace's init with the default disposition, even one it
//! raises). So that kennel reports the run as killed by N, as it does a plain service's,
//! the init says so on a pipe whose read end it handed the daemon ([`exit_note`]); the
//! daemon reads it at the exit ([`noted`]). The exit status itself stays the one the init
//! exited with.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use kennel_core::ExitStatus;

use crate::reaper;

/// The byte that comes with the read end of the exit note on the helper's channel (the
/// overlay's mark is 0, the terminal's 2; JSON has none of them).
pub const EXIT_NOTE_MARK: u8 = 1;

/// In a container's init, once the service is forked: a pipe whose read end goes to the
/// daemon over `report`; the write end, for [`note_exit`]. None if either step fails
/// (then the run's end is reported as the exit code alone).
pub fn exit_note(report: RawFd) -> Option<OwnedFd> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
    super::helper::send_marked(report, EXIT_NOTE_MARK, &read).ok()?;
    Some(write)
}

/// In the init, its service ended with `status`: a death by signal N goes into the note
/// (one byte, N) before the init exits with 128+N.
pub fn note_exit(note: Option<&OwnedFd>, status: ExitStatus) {
    if let (Some(fd), ExitStatus::Signal(sig)) = (note, status) {
        if let Ok(byte) = u8::try_from(sig) {
            let _ = nix::unistd::write(fd, &[byte]);
        }
    }
}

/// In the daemon, the exit `status` of a run whose init handed it `note`: killed by N when
/// the init noted N and exited with 128+N, else `status` as it is.
pub fn noted(status: ExitStatus, note: &OwnedFd) -> ExitStatus {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    // Written before the init's exit, which came first: never wait for it.
    if fcntl(note.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).is_err() {
        return status;
    }
    let mut byte = [0u8; 1];
    match (nix::unistd::read(note.as_raw_fd(), &mut byte), status) {
        (Ok(1), ExitStatus::Code(code)) if code == 128 + i32::from(byte[0]) => {
            ExitStatus::Signal(i32::from(byte[0]))
        }
        _ => status,
    }
}

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
/// how the child ended (`as_code`: its exit code, 128+N when it was killed by signal N).
/// Signals must already be blocked ([`block_all_signals`]) before `child` was created.
pub fn supervise(child: libc::pid_t, target: libc::pid_t, set: &libc::sigset_t) -> ExitStatus {
    // The child may have ended before we got here: look first, then wait for signals.
    loop {
        let mut code = None;
        for (p, status) in reaper::reap_all() {
            if p == child {
                code = Some(status);
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
