//! Starting the helper with `clone3(CLONE_INTO_CGROUP)`, which `std::process::Command`
//! cannot do: a fork whose child, before `execve`, only moves three descriptors into
//! place. That child is a copy of a multi-threaded process, so it runs nothing that
//! allocates or takes a lock: its arguments are prepared before the fork, and it makes
//! plain system calls (`dup2`, `execve`, `write`, `_exit`), as `posix_spawn` does.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::HELPER_ARG;

/// `CLONE_INTO_CGROUP` (linux/sched.h; not in the libc crate for every target).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Why no helper was started.
#[derive(Debug)]
pub(super) enum Error {
    /// `clone3` or its `CLONE_INTO_CGROUP` is refused by this kernel (or the descriptors
    /// cannot be used): nothing was started, start it the usual way.
    Unsupported(io::Error),
    /// The child was created but could not exec the helper (it exits with 127).
    Exec(io::Error),
}

/// Starts `/proc/self/exe __helper`, an empty environment, with `fds` as its stdin, stdout
/// and stderr, as a member of the cgroup directory open as `cgroup`. Returns its pid once
/// it has exec'd.
pub(super) fn into_cgroup(cgroup: RawFd, fds: [RawFd; 3]) -> Result<i32, Error> {
    // dup2 onto 0..3 needs sources outside 0..3 (a source equal to its target would keep
    // its close-on-exec flag); the daemon's own 0, 1, 2 are always open, so pipes and
    // sockets are above them, but say so rather than assume.
    if fds.iter().any(|&fd| fd < 3) {
        return Err(Error::Unsupported(io::Error::from_raw_os_error(
            libc::EBADF,
        )));
    }
    let path: &CStr = c"/proc/self/exe";
    let arg =
        std::ffi::CString::new(HELPER_ARG).map_err(|e| Error::Unsupported(io::Error::other(e)))?;
    let argv: [*const libc::c_char; 3] = [path.as_ptr(), arg.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let mut report = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into `report`.
    if unsafe { libc::pipe2(report.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::Unsupported(io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned here.
    let (report_r, report_w) = unsafe {
        (
            OwnedFd::from_raw_fd(report[0]),
            OwnedFd::from_raw_fd(report[1]),
        )
    };

    // SAFETY: zeroed is a valid clone_args (no flags, no pointers).
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = libc::CLONE_VFORK as u64 | CLONE_INTO_CGROUP;
    args.exit_signal = libc::SIGCHLD as u64;
    args.cgroup = cgroup as u64;
    // Every signal blocked across the fork: no handler of the daemon's may run in the
    // child (it would write into the daemon's signal pipe). The mask survives exec; the
    // helper clears it (helper.rs, `reset_signals`), and handlers are reset by exec.
    // SAFETY: sigset operations on local sets.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: clone3 with a fork's semantics (no CLONE_VM: the child has its own copy of
    // memory and runs on its own copy of this stack); CLONE_VFORK only suspends this
    // thread until the child has exec'd or exited.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if pid == 0 {
        // The child: system calls only.
        // SAFETY: dup2/execve/write/_exit on descriptors and pointers prepared above.
        unsafe {
            for (target, &fd) in fds.iter().enumerate() {
                if libc::dup2(fd, target as RawFd) < 0 {
                    child_fail(report_w.as_raw_fd());
                }
            }
            libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
            child_fail(report_w.as_raw_fd());
        }
    }
    let clone_error = io::Error::last_os_error();
    // SAFETY: restoring the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    drop(report_w);
    if pid < 0 {
        return Err(Error::Unsupported(clone_error));
    }
    // The child has exec'd (the pipe closed on exec: EOF) or reported its errno.
    let mut errno = [0u8; 4];
    let n = loop {
        // SAFETY: read into a local buffer.
        let n = unsafe { libc::read(report_r.as_raw_fd(), errno.as_mut_ptr().cast(), errno.len()) };
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break n;
        }
    };
    if n == errno.len() as isize {
        return Err(Error::Exec(io::Error::from_raw_os_error(
            i32::from_ne_bytes(errno),
        )));
    }
    Ok(pid as i32)
}

/// In the child: report errno on `report` and exit 127.
///
/// # Safety
/// Only in the child of [`into_cgroup`].
unsafe fn child_fail(report: RawFd) -> ! {
    let errno = *libc::__errno_location();
    let bytes = errno.to_ne_bytes();
    libc::write(report, bytes.as_ptr().cast(), bytes.len());
    libc::_exit(127)
}
