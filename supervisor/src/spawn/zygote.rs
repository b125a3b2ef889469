//! The zygote process (`kennel-zygote`; the daemon's end is `spawn::launch::zygote`):
//! exec'd once when the daemon starts, it forks a fresh helper for each spawn, so that a
//! spawn costs a fork of this small, single-threaded process rather than an exec of the
//! whole kennel binary (docs/performance.md, "Why the start path looks like this").
//!
//! Each child is cloned with `CLONE_PARENT`, so the daemon is its parent (its one reaper
//! collects it), and for a unit's own start right into the unit's cgroup
//! (`CLONE_INTO_CGROUP`). The zygote never waits for a child, so a frozen or throttled
//! cgroup holds up that child only. It also keeps a spare network namespace for the next
//! container helper that needs one ([`WANTS_NET`]). Where `clone3` is refused (kernels
//! before 5.3, a seccomp filter answering ENOSYS or EPERM), the zygote is retired at the
//! first refusal and helpers are exec'd.
//!
//! The child of a raw `clone` keeps glibc's cached thread id of the zygote; that is safe
//! here as after `vfork`: the zygote is single-threaded and holds no lock when it clones
//! (it is blocked in nothing but its own loop), and glibc >= 2.34 signals the calling
//! thread by its real id (`raise`, `abort`). The helper's own forks go through glibc's
//! `fork`, which sets the id in each new child.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

/// The argument that selects the zygote role.
pub const ZYGOTE_ARG: &str = "__zygote";

/// `CLONE_INTO_CGROUP` (linux/sched.h; not in the libc crate for every target).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Request flag: a cgroup directory comes with the descriptors.
pub(crate) const WITH_CGROUP: u8 = 1;
/// Request flag: the helper will create a network namespace (a container of its own
/// network, without a user namespace): give it the spare.
pub(crate) const WANTS_NET: u8 = 2;
/// Request flag: the helper is a container's with a pid namespace of its own (and no user
/// namespace): fork it right into a new one (`CLONE_NEWPID`), as its PID 1, so that no
/// process of kennel's has to stay outside to wait for the namespace's init.
pub(crate) const NEW_PID: u8 = 4;
/// Where a child given the spare network namespace finds it.
pub const SPARE_NET_FD: RawFd = 3;

/// Run the zygote role; never returns.
///
/// Protocol, over the socket that is the zygote's stdin: the daemon sends one byte of
/// flags ([`WITH_CGROUP`], [`WANTS_NET`], [`NEW_PID`]) with the descriptors, by
/// `SCM_RIGHTS`: the spawn channel, stdout, stderr and, optionally, the cgroup directory.
/// The zygote answers with an `i32` (native byte order): the child's pid, or `-errno`. The
/// child moves the three descriptors onto 0, 1 and 2 (and a spare network namespace onto
/// [`SPARE_NET_FD`]), closes every other, and runs the helper role exactly as a freshly
/// exec'd helper does, told what it was given ([`super::helper::main_forked`]). The daemon
/// writes the spec into the spawn channel before it asks for the fork, so the child finds
/// it waiting.
///
/// A spare network namespace, `lo` up, is made by the zygote (so the kernel charges its
/// memory to the daemon's cgroup rather than the unit's) and given once, new and unused;
/// the helper joins it instead of creating one (spawn/helper/container.rs).
pub fn main() -> ! {
    let sock = match setup() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kennel zygote: {e}");
            std::process::exit(125);
        }
    };
    // Its name, and so its children's until they take theirs (title.rs).
    super::title::locate();
    super::title::set(super::title::ZYGOTE);
    // The zygote's own network namespace, to come back to after making a spare.
    let home = std::fs::File::open("/proc/self/ns/net")
        .ok()
        .map(OwnedFd::from);
    let mut spare: Option<OwnedFd> = None;
    // A spare is wanted (a helper asked for one and took it); it is made once no request
    // came for SPARE_AFTER, not at once: right after a fork, the new helper, the daemon
    // and this process would share the CPUs while that container is being started.
    let mut wanted = false;
    loop {
        if wanted && spare.is_none() && !request_within(sock, SPARE_AFTER) {
            if let Some(home) = &home {
                spare = make_spare_net(home);
            }
            wanted = false;
        }
        let (flags, fds) = match receive(sock) {
            Ok(Some(r)) => r,
            // The daemon closed its end: it is done.
            Ok(None) => std::process::exit(0),
            Err(e) => {
                eprintln!("kennel zygote: {e}");
                std::process::exit(1);
            }
        };
        let with_cgroup = flags & WITH_CGROUP != 0;
        let wants_net = flags & WANTS_NET != 0;
        let new_pid = flags & NEW_PID != 0;
        let give = if wants_net { spare.take() } else { None };
        let (pid, gave) = if fds.len() != 3 + usize::from(with_cgroup) {
            (-libc::EINVAL, false)
        } else {
            let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
            let cgroup = with_cgroup.then(|| raw[3]);
            let net = give.as_ref().map(AsRawFd::as_raw_fd);
            match clone_child(cgroup, new_pid) {
                0 => child(sock, [raw[0], raw[1], raw[2]], net),
                n => (n, n > 0 && net.is_some()),
            }
        };
        if !gave {
            // Not used (the fork failed): still new, kept for the next.
            spare = spare.or(give);
        }
        drop(fds);
        let bytes = pid.to_ne_bytes();
        // SAFETY: write of a local buffer to our socket.
        if unsafe { libc::write(sock, bytes.as_ptr().cast(), bytes.len()) } != bytes.len() as isize
        {
            std::process::exit(1);
        }
        wanted |= wants_net && spare.is_none();
    }
}

/// How long the zygote waits for quiet before it makes a spare network namespace.
const SPARE_AFTER: Duration = Duration::from_millis(10);

/// Whether a request (or EOF) arrives on `sock` within `wait`.
fn request_within(sock: RawFd, wait: Duration) -> bool {
    // SAFETY: `sock` is open for the zygote's whole life.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(sock) };
    let mut pfd = [nix::poll::PollFd::new(fd, nix::poll::PollFlags::POLLIN)];
    let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
    !matches!(
        nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(ms)),
        Ok(0)
    )
}

/// A new network namespace with `lo` up, open; this process back in `home`. None if any
/// step fails (helpers then create their own).
fn make_spare_net(home: &OwnedFd) -> Option<OwnedFd> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
    let made = std::fs::File::open("/proc/thread-self/ns/net")
        .ok()
        .map(OwnedFd::from)
        .filter(|_| super::helper::container::loopback_up().is_ok());
    if nix::sched::setns(home, nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
        // Stuck in the spare: no child may be given this process's namespace as new.
        eprintln!("kennel zygote: cannot return to its network namespace");
        std::process::exit(1);
    }
    made
}

/// The socket to a high descriptor (close-on-exec), /dev/null on 0, death with the daemon
/// (whose pid is the argument after [`ZYGOTE_ARG`]).
fn setup() -> io::Result<RawFd> {
    let daemon: Option<i32> = std::env::args().nth(2).and_then(|a| a.parse().ok());
    // SAFETY: prctl with integer arguments; getppid has no arguments.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        // The daemon died before the line above took effect.
        if daemon.is_some_and(|d| d != libc::getppid()) {
            std::process::exit(0);
        }
    }
    let sock = nix::fcntl::fcntl(0, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    nix::unistd::dup2(null, 0)?;
    nix::unistd::close(null)?;
    Ok(sock)
}

/// One request: its flags and the descriptors. `None` at EOF.
fn receive(sock: RawFd) -> io::Result<Option<(u8, Vec<OwnedFd>)>> {
    loop {
        let mut flag = [0u8; 1];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let mut iov = [IoSliceMut::new(&mut flag)];
        let msg = match recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: the kernel just installed these descriptors for us.
                fds.extend(
                    raw.into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        if msg.bytes == 0 {
            return Ok(None);
        }
        return Ok(Some((iov[0][0], fds)));
    }
}

/// Forks this process with `CLONE_PARENT` (and `CLONE_INTO_CGROUP` when `cgroup` is
/// given, `CLONE_NEWPID` when `new_pid`): 0 in the child, the child's pid in the zygote,
/// or `-errno`.
fn clone_child(cgroup: Option<RawFd>, new_pid: bool) -> i32 {
    // SAFETY: zeroed is a valid clone_args (no flags, no pointers).
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    // No exit signal: clone3 requires none with CLONE_PARENT; the child's is the zygote's
    // own (SIGCHLD, which it got from the daemon's spawn).
    args.flags = libc::CLONE_PARENT as u64;
    if new_pid {
        args.flags |= libc::CLONE_NEWPID as u64;
    }
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 without CLONE_VM and without a stack is a fork: the child runs on a
    // copy of this stack. This process is single-threaded and holds no lock here.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    if ret < 0 {
        -io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    } else {
        ret as i32
    }
}

/// In the child: the descriptors into place (and the spare network namespace, if given,
/// on [`SPARE_NET_FD`]), nothing else open, then the helper role.
fn child(sock: RawFd, fds: [RawFd; 3], net: Option<RawFd>) -> ! {
    // SAFETY: plain descriptor operations in the single-threaded child.
    unsafe {
        libc::close(sock);
        // SPARE_NET_FD (3) was the zygote's socket, closed just above; every descriptor
        // received is above it, so this dup2 clobbers none of them.
        let mut keep = 3u32;
        if let Some(n) = net {
            if libc::dup2(n, SPARE_NET_FD) < 0 {
                libc::_exit(125);
            }
            keep = 4;
        }
        for (target, &fd) in fds.iter().enumerate() {
            if libc::dup2(fd, target as RawFd) < 0 {
                libc::_exit(125);
            }
        }
        // Every other descriptor: the originals just moved and anything the zygote had.
        if libc::syscall(libc::SYS_close_range, keep, u32::MAX, 0u32) != 0 {
            for fd in keep as RawFd..1024 {
                libc::close(fd);
            }
        }
    }
    super::helper::main_forked(net.is_some())
}
