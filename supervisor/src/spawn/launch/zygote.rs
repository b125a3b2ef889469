//! The daemon's end of the spawn zygote (`crate::spawn::zygote`, the process itself):
//! start it once, ask it to fork each helper (with `SCM_RIGHTS`: the spawn channel,
//! stdout, stderr, optionally the unit's cgroup directory; one byte of request flags), read
//! the child's pid or `-errno`, and retire it when the kernel refuses its `clone3` or it
//! stops answering. A mutex only so that this can be a static: the daemon launches from
//! its one event-loop thread.

use std::io::{self, IoSlice, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::spawn::zygote::{NEW_PID, WANTS_NET, WITH_CGROUP, ZYGOTE_ARG};

/// How long the daemon waits for the zygote's answer before it gives up on it (it answers
/// in well under a millisecond; a stopped or wedged zygote must not hold the daemon).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the zygote made no helper.
#[derive(Debug)]
pub enum ForkError {
    /// There is no zygote (not started, died, or stopped answering): start the helper the
    /// classic way.
    Unavailable,
    /// The kernel refused the fork with this errno; nothing was started.
    Refused(i32),
    /// The request went out but no answer came: a helper may have been forked and be
    /// reading the channel, so the caller must not start another on it; the spawn fails
    /// (and no zygote is asked again).
    Lost,
}

/// The daemon's end of a running zygote.
struct Zygote {
    pid: i32,
    sock: UnixStream,
}

/// The daemon's zygote, if any. A mutex only so that this can be a static: the daemon
/// launches from its one event-loop thread.
static ZYGOTE: Mutex<Option<Zygote>> = Mutex::new(None);

/// Starts the zygote, replacing any earlier one. The daemon calls it once its SIGCHLD
/// handling is in place (the zygote is its child, and so is every helper it forks). On
/// failure, spawns start helpers the classic way.
pub fn start() -> io::Result<()> {
    let (ours, theirs) = UnixStream::pair()?;
    ours.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    let child = Command::new("/proc/self/exe")
        .arg0(crate::spawn::title::ZYGOTE)
        .arg(ZYGOTE_ARG)
        .arg(std::process::id().to_string())
        .env_clear()
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::null())
        .spawn()?;
    let pid = child.id() as i32;
    // Never waited for here: the daemon's reaper collects it like any child.
    drop(child);
    let mut slot = ZYGOTE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(old) = slot.replace(Zygote { pid, sock: ours }) {
        kill(old.pid);
    }
    Ok(())
}

/// Whether a zygote is running: the start plan's `Host::zygote` (it may still turn out
/// gone when asked, and the launcher then tries the plan's next way).
pub fn running() -> bool {
    ZYGOTE.lock().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// Stops the zygote (at the daemon's end; it also dies with the daemon, by its parent-death
/// signal, and on EOF).
pub fn stop() {
    let mut slot = ZYGOTE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(z) = slot.take() {
        kill(z.pid);
    }
}

fn kill(pid: i32) {
    // SAFETY: kill(2) of our own child, which the reaper collects.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// What a helper will do that the zygote can prepare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// It creates a network namespace: give it the spare, if one is ready.
    pub net: bool,
    /// It is PID 1 of a new pid namespace: fork it into one.
    pub pid: bool,
}

/// Has the zygote fork a helper with `fds` (spawn channel, stdout, stderr) as its 0, 1, 2,
/// inside the cgroup directory `cgroup` if given, prepared as `wants` says. The caller still
/// owns (and closes) `fds`.
pub fn fork(fds: [RawFd; 3], cgroup: Option<RawFd>, wants: Wants) -> Result<i32, ForkError> {
    let mut slot = ZYGOTE.lock().unwrap_or_else(|p| p.into_inner());
    let Some(z) = slot.as_ref() else {
        return Err(ForkError::Unavailable);
    };
    let mut sent = false;
    match ask(&z.sock, fds, cgroup, wants, &mut sent) {
        Ok(n) if n > 0 => Ok(n),
        Ok(n) if n < 0 => Err(ForkError::Refused(-n)),
        Ok(_) | Err(_) => {
            // Gone or wedged: never ask it again; the classic way from now on.
            if let Some(z) = slot.take() {
                tracing::warn!(
                    pid = z.pid,
                    "the spawn zygote stopped answering; helpers are exec'd from now on"
                );
                kill(z.pid);
            }
            Err(if sent {
                ForkError::Lost
            } else {
                ForkError::Unavailable
            })
        }
    }
}

/// No zygote from now on: this kernel (or a seccomp filter around kennel) refuses the
/// `clone3` it needs, where the classic exec of the helper works.
pub fn retire(errno: i32) {
    let mut slot = ZYGOTE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(z) = slot.take() {
        tracing::info!(
            pid = z.pid,
            "clone3 refused ({}); helpers are exec'd from now on",
            io::Error::from_raw_os_error(errno)
        );
        kill(z.pid);
    }
}

/// The zygote's answer; `sent` says whether the request went out at all.
fn ask(
    sock: &UnixStream,
    fds: [RawFd; 3],
    cgroup: Option<RawFd>,
    wants: Wants,
    sent: &mut bool,
) -> io::Result<i32> {
    let mut all = fds.to_vec();
    all.extend(cgroup);
    let mut flags = 0;
    if cgroup.is_some() {
        flags |= WITH_CGROUP;
    }
    if wants.net {
        flags |= WANTS_NET;
    }
    if wants.pid {
        flags |= NEW_PID;
    }
    let flag = [flags];
    let iov = [IoSlice::new(&flag)];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&all)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    *sent = true;
    // The socket's read timeout (ANSWER_TIMEOUT, set at start) bounds the wait.
    let mut answer = [0u8; 4];
    (&*sock).read_exact(&mut answer)?;
    Ok(i32::from_ne_bytes(answer))
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_zygote_forks_are_unavailable() {
        stop();
        assert!(matches!(
            fork([0, 1, 2], None, Wants::default()),
            Err(ForkError::Unavailable)
        ));
    }
}
