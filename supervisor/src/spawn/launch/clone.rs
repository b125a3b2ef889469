//! Starting the helper with `clone3(CLONE_INTO_CGROUP)`, which `std::process::Command`
//! cannot do. As `posix_spawn` does, the child shares the daemon's memory (`CLONE_VM`) on
//! a stack of its own, the daemon's thread waits until it has exec'd (`CLONE_VFORK`), and
//! every signal is blocked across it; the child only moves three descriptors into place
//! and execs (`child_main`: plain system calls, no allocation, no lock). Sharing the
//! daemon's memory rather than copying it (a fork) keeps a spawn's cost independent of the
//! daemon's size (docs/performance.md). x86_64 only (the switch to the child's stack is a
//! few instructions of assembly); elsewhere the caller starts the helper the usual way.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::HELPER_ARG;

/// `CLONE_INTO_CGROUP` (linux/sched.h; not in the libc crate for every target).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Why no helper was started.
#[derive(Debug)]
pub(super) enum Error {
    /// `clone3` or its `CLONE_INTO_CGROUP` is refused by this kernel, a seccomp filter or
    /// this architecture (see [`falls_back`]), or the descriptors cannot be used: nothing
    /// was started, start it the usual way.
    Unsupported(io::Error),
    /// Nothing was started, for a reason that starting it another way would not cure or
    /// would get around: `EAGAIN` from the cgroup's `pids.max` (a helper forked in the
    /// daemon's cgroup and moved in is not counted against it), `ENOMEM`, `EMFILE`...
    /// The start fails with this error.
    Failed(io::Error),
    /// The child was created but could not exec the helper (it exits with 127).
    Exec(io::Error),
}

/// Whether a `clone3` failure with `errno` means "not available here", so that the
/// helper is to be started the classic way: no `clone3` (`ENOSYS`), a kernel that does
/// not know `CLONE_INTO_CGROUP` or the size of `clone_args` (`EINVAL`, `E2BIG`), a
/// seccomp filter refusing it (`EPERM`), or a cgroup that cannot take a process this way
/// (`EOPNOTSUPP`). Anything else is a failure to report.
pub(super) fn falls_back(errno: i32) -> bool {
    matches!(
        errno,
        libc::ENOSYS | libc::EINVAL | libc::E2BIG | libc::EPERM | libc::EOPNOTSUPP
    )
}

/// What the child needs, prepared by the parent (the child only reads it).
#[repr(C)]
struct ChildArgs {
    fds: [RawFd; 3],
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    report: RawFd,
}

/// Starts `/proc/self/exe __helper`, an empty environment, with `fds` as its stdin, stdout
/// and stderr, as a member of the cgroup directory open as `cgroup`. Returns its pid once
/// it has exec'd.
pub(super) fn into_cgroup(cgroup: RawFd, fds: [RawFd; 3]) -> Result<i32, Error> {
    if !cfg!(target_arch = "x86_64") {
        return Err(Error::Unsupported(io::Error::from_raw_os_error(
            libc::ENOSYS,
        )));
    }
    // dup2 onto 0..3 needs sources outside 0..3 (a source equal to its target would keep
    // its close-on-exec flag); the daemon's own 0, 1, 2 are always open, so pipes and
    // sockets are above them, but say so rather than assume.
    if fds.iter().any(|&fd| fd < 3) {
        return Err(Error::Unsupported(io::Error::from_raw_os_error(
            libc::EBADF,
        )));
    }
    let path: &CStr = c"/proc/self/exe";
    let arg = std::ffi::CString::new(HELPER_ARG).map_err(|e| Error::Failed(io::Error::other(e)))?;
    // Born right in the cgroup: the spec it reads says so (`Launch::CloneIntoCgroup`).
    let name = std::ffi::CString::new(crate::spawn::title::HELPER)
        .map_err(|e| Error::Failed(io::Error::other(e)))?;
    let argv: [*const libc::c_char; 3] = [name.as_ptr(), arg.as_ptr(), std::ptr::null()];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let mut report = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into `report`.
    if unsafe { libc::pipe2(report.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::Failed(io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned here.
    let (report_r, report_w) = unsafe {
        (
            OwnedFd::from_raw_fd(report[0]),
            OwnedFd::from_raw_fd(report[1]),
        )
    };
    let child = ChildArgs {
        fds,
        path: path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        report: report_w.as_raw_fd(),
    };
    // The child's stack; it lives until the child has exec'd or exited (CLONE_VFORK).
    let mut stack = vec![0u8; 64 * 1024];

    // SAFETY: zeroed is a valid clone_args (no flags, no pointers).
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = (libc::CLONE_VM | libc::CLONE_VFORK) as u64 | CLONE_INTO_CGROUP;
    args.exit_signal = libc::SIGCHLD as u64;
    args.stack = stack.as_mut_ptr() as u64;
    args.stack_size = stack.len() as u64;
    args.cgroup = cgroup as u64;
    // Every signal blocked across the clone: no handler of the daemon's may run in the
    // child, which shares its memory. The mask survives exec; the helper clears it
    // (helper.rs, `reset_signals`), and exec resets the handlers.
    // SAFETY: sigset operations on local sets.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: see `clone3`; `child` and `stack` outlive the child's use of them.
    let ret = unsafe { clone3(&args, &child) };
    // SAFETY: restoring the mask saved above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
    drop(stack);
    drop(report_w);
    if ret < 0 {
        let errno = -ret as i32;
        let e = io::Error::from_raw_os_error(errno);
        return Err(if falls_back(errno) {
            Error::Unsupported(e)
        } else {
            Error::Failed(e)
        });
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
    Ok(ret as i32)
}

/// The raw `clone3` system call; in the child (on the stack given in `args`) it calls
/// `child_main(child)`, which never returns. Returns the child's pid, or `-errno`.
///
/// # Safety
/// `args` must name a stack that stays valid, and `child` data that stays valid, until the
/// child has exec'd or exited (`CLONE_VFORK`); every signal must be blocked.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3(args: &libc::clone_args, child: &ChildArgs) -> i64 {
    let ret: i64;
    std::arch::asm!(
        "syscall",
        "test rax, rax",
        "jnz 2f",
        // The child: on its own stack, which the kernel pointed rsp at.
        "and rsp, -16",
        "mov rdi, r12",
        "call r13",
        "ud2",
        "2:",
        inlateout("rax") libc::SYS_clone3 => ret,
        in("rdi") args as *const libc::clone_args,
        in("rsi") std::mem::size_of::<libc::clone_args>(),
        in("r12") child as *const ChildArgs,
        in("r13") child_main as extern "C" fn(*const ChildArgs) -> !,
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    ret
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn clone3(_: &libc::clone_args, _: &ChildArgs) -> i64 {
    -i64::from(libc::ENOSYS)
}

/// The child: descriptors into place, then exec; on failure, errno to the parent and exit
/// 127. System calls only.
extern "C" fn child_main(c: *const ChildArgs) -> ! {
    // SAFETY: `c` points at the parent's ChildArgs, valid until exec (CLONE_VFORK); only
    // system calls follow.
    unsafe {
        let c = &*c;
        for (target, &fd) in c.fds.iter().enumerate() {
            if libc::dup2(fd, target as RawFd) < 0 {
                child_fail(c.report);
            }
        }
        libc::execve(c.path, c.argv, c.envp);
        child_fail(c.report)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailability_falls_back() {
        for errno in [
            libc::ENOSYS,
            libc::EINVAL,
            libc::E2BIG,
            libc::EPERM,
            libc::EOPNOTSUPP,
        ] {
            assert!(falls_back(errno), "errno {errno}");
        }
        for errno in [
            libc::EAGAIN,
            libc::ENOMEM,
            libc::EBADF,
            libc::EBUSY,
            libc::ENOSPC,
            libc::EMFILE,
        ] {
            assert!(!falls_back(errno), "errno {errno}");
        }
    }

    /// A descriptor that is not a cgroup directory: the kernel refuses with EBADF, which
    /// is a failure, not "unsupported" (no child is started either way). x86_64 only, the
    /// one architecture with the inline clone3 (elsewhere it is never built, not skipped).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_refused_cgroup_is_a_failure_not_a_fallback() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let not_cgroup = match std::fs::File::open(dir.path()) {
            Ok(f) => f,
            Err(e) => panic!("open {}: {e}", dir.path().display()),
        };
        let fd = |f: std::fs::File| OwnedFd::from(f);
        let null = |mode: &str| {
            let f = std::fs::OpenOptions::new()
                .read(mode == "r")
                .write(mode == "w")
                .open("/dev/null");
            match f {
                Ok(f) => fd(f),
                Err(e) => panic!("open /dev/null: {e}"),
            }
        };
        let (i, o, e) = (null("r"), null("w"), null("w"));
        let fds = [i.as_raw_fd(), o.as_raw_fd(), e.as_raw_fd()];
        match into_cgroup(not_cgroup.as_raw_fd(), fds) {
            Err(Error::Failed(e)) => assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}"),
            // A kernel without clone3 or CLONE_INTO_CGROUP.
            Err(Error::Unsupported(e)) => {
                assert!(falls_back(e.raw_os_error().unwrap_or(0)), "{e}")
            }
            Err(Error::Exec(e)) => panic!("a child was started: {e}"),
            Ok(pid) => panic!("a child was started: {pid}"),
        }
    }
}
