//! The start gate of a container `kennel oci create` made ([`StartGate`]): the helper
//! holds the read side of a FIFO in the container's state directory, tells its channel
//! it is ready, and waits until `kennel oci start` writes into the FIFO.
//!
//! The FIFO is opened non-blocking (no writer yet) and waited on with poll: Linux reports
//! a FIFO readable (or hung up) only once a writer has come, so the wait lasts until
//! `start`. Opened before `pivot_root`, the descriptor outlives the host's paths.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::fail;
use crate::spawn::spec::{SpawnFailure, StartGate};

/// Opens the gate's FIFO (read side, non-blocking, close-on-exec).
pub fn open(g: &StartGate) -> Result<OwnedFd, SpawnFailure> {
    nix::fcntl::open(
        &g.fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(|fd| {
        // SAFETY: open just returned this descriptor; nothing else owns it.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    })
    .map_err(|e| fail("open start gate", g.fifo.display().to_string(), e.desc()))
}

/// Says "created" on `report` ([`StartGate::READY`]) and waits until `start` opens the
/// gate: a byte written into it lets the process go on; the writer gone without a byte
/// (a `delete` of the created container) ends it.
pub fn wait(gate: OwnedFd, report: RawFd) -> Result<(), SpawnFailure> {
    let ready = [StartGate::READY];
    nix::sys::socket::send(report, &ready, nix::sys::socket::MsgFlags::MSG_NOSIGNAL)
        .map_err(|e| fail("report created", "", e.desc()))?;
    loop {
        let mut fds = [PollFd::new(gate.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(fail("wait at start gate", "", e.desc())),
        }
        let mut byte = [0u8; 1];
        match nix::unistd::read(gate.as_raw_fd(), &mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(fail("wait at start gate", "", "closed without start")),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(fail("wait at start gate", "", e.desc())),
        }
    }
}
