//! The terminal of `kennel exec -t`, made by the helper in the mount namespace its
//! process runs in, on that namespace's own devpts instance (a container's `/dev/pts`,
//! mounted `newinstance`): inside, `tty` names `/dev/pts/N` and `ttyname` works, as with
//! runc's console socket. The helper keeps the terminal's far end as stdin, stdout and
//! stderr and hands the master to the daemon over its channel (`SCM_RIGHTS`, with the
//! one byte [`MARK`]), which passes it on to the client.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::fail;
use crate::spawn::spec::{SpawnFailure, TtySize};

/// The byte that comes with the terminal's master on the helper's channel (a failure
/// report is JSON, which has no such byte; the overlay's mark is 0).
pub const MARK: u8 = 2;

/// `DEVPTS_SUPER_MAGIC` (linux/magic.h).
const DEVPTS_MAGIC: libc::c_long = 0x1cd1;

/// Makes a terminal of `size` on this mount namespace's devpts, sends its master on
/// `report`, and puts its far end on 0, 1 and 2 (the controlling terminal is taken in
/// `become_service`, after `setsid`).
pub fn attach(size: TtySize, report: RawFd) -> Result<(), SpawnFailure> {
    let (pts, master) = open_master()?;
    let unlock: libc::c_int = 0;
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: ioctls on our own descriptor with correctly typed arguments.
    unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(fail("unlock terminal", "", std::io::Error::last_os_error()));
        }
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) != 0 {
            return Err(fail("size terminal", "", std::io::Error::last_os_error()));
        }
    }
    let peer = open_peer(&pts, &master)?;
    send(report, &master)?;
    for fd in 0..3 {
        nix::unistd::dup2(peer.as_raw_fd(), fd)
            .map_err(|e| fail("set up terminal", "", e.desc()))?;
    }
    Ok(())
}

/// `/dev/pts` (checked to be a devpts: the container's processes may have replaced what
/// they can) and a new master from its `ptmx`. Where that `ptmx` is refused (the host's
/// devpts, mode 000, and kennel not root), the classic `/dev/ptmx`.
fn open_master() -> Result<(OwnedFd, OwnedFd), SpawnFailure> {
    let dir = nix::fcntl::open(
        "/dev/pts",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail("open terminal", "/dev/pts", e.desc()))?;
    // SAFETY: open just returned this descriptor.
    let dir = unsafe { OwnedFd::from_raw_fd(dir) };
    // SAFETY: fstatfs writes into a local, zeroed statfs.
    let magic = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        if libc::fstatfs(dir.as_raw_fd(), &mut st) != 0 {
            return Err(fail(
                "open terminal",
                "/dev/pts",
                std::io::Error::last_os_error(),
            ));
        }
        st.f_type
    };
    if magic as libc::c_long != DEVPTS_MAGIC {
        return Err(fail(
            "open terminal",
            "/dev/pts",
            "not a devpts file system",
        ));
    }
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let master = match nix::fcntl::openat(Some(dir.as_raw_fd()), "ptmx", flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::EACCES) => {
            nix::fcntl::open("/dev/ptmx", flags - OFlag::O_NOFOLLOW, Mode::empty())
                .map_err(|e| fail("open terminal", "/dev/ptmx", e.desc()))?
        }
        Err(e) => return Err(fail("open terminal", "/dev/pts/ptmx", e.desc())),
    };
    // SAFETY: openat just returned this descriptor.
    Ok((dir, unsafe { OwnedFd::from_raw_fd(master) }))
}

/// The far end of `master`: by the master itself (`TIOCGPTPEER`, no path lookup), or on
/// kernels before 4.13 by its number in `pts`.
fn open_peer(pts: &OwnedFd, master: &OwnedFd) -> Result<OwnedFd, SpawnFailure> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes the open flags as an integer and returns a new descriptor.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd >= 0 {
        // SAFETY: the ioctl just returned this descriptor.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes the terminal's number into `n`.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } != 0 {
        return Err(fail("open terminal", "", std::io::Error::last_os_error()));
    }
    let name = n.to_string();
    let fd = nix::fcntl::openat(
        Some(pts.as_raw_fd()),
        name.as_str(),
        OFlag::from_bits_truncate(flags) | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| fail("open terminal", format!("/dev/pts/{name}"), e.desc()))?;
    // SAFETY: openat just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn send(report: RawFd, master: &OwnedFd) -> Result<(), SpawnFailure> {
    super::send_marked(report, MARK, master)
        .map_err(|e| fail("hand the terminal to kennel", "", e.desc()))?;
    Ok(())
}
