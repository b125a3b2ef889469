//! The daemon's side of spawning: start the helper (`/proc/self/exe __helper`), hand it the
//! spec over a socketpair, and learn asynchronously whether it reached exec.

use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::spec::{SpawnFailure, SpawnSpec};
use super::zygote::{self, ForkError};

mod clone;

/// The argument that selects the helper role.
pub const HELPER_ARG: &str = "__helper";

/// The helper could not even be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("create spawn socketpair: {0}")]
    Socket(io::Error),
    #[error("start helper /proc/self/exe: {0}")]
    Helper(io::Error),
    #[error("start helper /proc/self/exe in cgroup {}: {source}", cgroup.display())]
    IntoCgroup {
        cgroup: std::path::PathBuf,
        source: io::Error,
    },
    #[error("encode spawn spec: {0}")]
    Encode(serde_json::Error),
}

/// A started helper: its pid (which becomes the service's pid at exec) and the channel on
/// which a failure would be reported.
pub struct Launched {
    pub pid: i32,
    channel: UnixStream,
}

/// Start the helper for `spec` with the given stdout and stderr, and `stdin` (passed over
/// the spec socket; `spec.stdin_passed` must say so), or /dev/null: forked by the zygote
/// when there is one (see [`super::zygote`]), else `/proc/self/exe __helper`.
pub fn launch(
    spec: &SpawnSpec,
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<Launched, LaunchError> {
    let (ours, theirs) = UnixStream::pair().map_err(LaunchError::Socket)?;
    let out = Outgoing::new(spec, ours, stdin)?;
    let fds = [theirs.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()];
    let pid = match zygote::fork(fds, None, wants(spec)) {
        Ok(pid) => pid,
        Err(ForkError::Refused(errno)) if !clone::falls_back(errno) => {
            return Err(LaunchError::Helper(io::Error::from_raw_os_error(errno)))
        }
        Err(ForkError::Lost) => return Err(LaunchError::Helper(lost())),
        Err(e @ (ForkError::Refused(_) | ForkError::Unavailable)) => {
            if let ForkError::Refused(errno) = e {
                zygote::retire(errno);
            }
            let child = Command::new("/proc/self/exe")
                .arg0(super::title::HELPER)
                .arg(HELPER_ARG)
                .env_clear()
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(stderr))
                .spawn()
                .map_err(LaunchError::Helper)?;
            // The Child is dropped without waiting: the daemon's reaper collects every exit.
            let pid = child.id() as i32;
            drop(child);
            return Ok(out.finish(pid));
        }
    };
    drop((theirs, stdout, stderr));
    Ok(out.finish(pid))
}

/// Why a spawn fails when the zygote took the request but never answered.
fn lost() -> io::Error {
    io::Error::other("the spawn zygote took the request but did not answer")
}

/// What the zygote can prepare for `spec`'s helper: for a container without a user
/// namespace (whose helper creates the others as its owner, from outside them), the
/// network namespace when it has one of its own (not `unit:`), and the pid namespace.
fn wants(spec: &SpawnSpec) -> zygote::Wants {
    use kennel_units::Namespace;
    match &spec.container {
        Some(c) if c.user_ns.is_none() => zygote::Wants {
            net: c.namespaces.contains(&Namespace::Net) && c.join_net.is_none(),
            pid: c.namespaces.contains(&Namespace::Pid),
        },
        _ => zygote::Wants::default(),
    }
}

/// [`launch`] with stdout and stderr on /dev/null (probes).
pub fn launch_quiet(spec: &SpawnSpec) -> Result<Launched, LaunchError> {
    let null = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(LaunchError::Helper)
    };
    launch(spec, None, null()?, null()?)
}

/// [`launch`] with the helper started right inside the cgroup directory `cgroup` (open as
/// `dir`): `CLONE_INTO_CGROUP`, by the zygote, or else by `clone3` here. The helper
/// then has no `cgroup.procs` to write there, the one write of its join that waits for an
/// RCU grace period (see `UnitCgroup::join_files`). Where that is unavailable (kernels
/// before 5.7, a seccomp filter: see `clone::falls_back`), this is [`launch`]; any other
/// refusal (`EAGAIN` from `pids.max`, `ENOMEM`...) is the start's failure.
///
/// Without the zygote, the helper is cloned here, and the daemon's thread waits until it
/// has exec'd (`CLONE_VFORK`): only when `idle` says the cgroup is idle (empty, not
/// frozen), i.e. for a unit's own start; for exec and probes into a running unit the
/// helper then joins from outside instead ([`launch`]). The zygote never waits for its
/// child, so through it every spawn can start inside the cgroup.
pub fn launch_in(
    spec: &SpawnSpec,
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
    (dir, cgroup): (&std::fs::File, &Path),
    idle: bool,
) -> Result<Launched, LaunchError> {
    let (ours, theirs) = UnixStream::pair().map_err(LaunchError::Socket)?;
    let mut inside = spec.clone();
    inside.born_into = Some(cgroup.to_path_buf());
    let out = Outgoing::new(&inside, ours, stdin)?;
    let fds = [theirs.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()];
    let forked = match zygote::fork(fds, Some(dir.as_raw_fd()), wants(spec)) {
        Ok(pid) => Ok(pid),
        Err(ForkError::Refused(errno)) if clone::falls_back(errno) => Err(
            clone::Error::Unsupported(io::Error::from_raw_os_error(errno)),
        ),
        Err(ForkError::Refused(errno)) => {
            Err(clone::Error::Failed(io::Error::from_raw_os_error(errno)))
        }
        Err(ForkError::Lost) => return Err(LaunchError::Helper(lost())),
        Err(ForkError::Unavailable) if idle => clone::into_cgroup(dir.as_raw_fd(), fds),
        Err(ForkError::Unavailable) => Err(clone::Error::Unsupported(io::Error::other(
            "no zygote, and the cgroup may be frozen",
        ))),
    };
    match forked {
        Ok(pid) => {
            drop((theirs, stdout, stderr));
            Ok(out.finish(pid))
        }
        Err(clone::Error::Unsupported(e)) => {
            tracing::debug!(
                "clone3 into {}: {e}; starting the helper with a join",
                cgroup.display()
            );
            drop(theirs);
            let stdin = out.abandon();
            launch(spec, stdin, stdout, stderr)
        }
        Err(clone::Error::Failed(source)) => Err(LaunchError::IntoCgroup {
            cgroup: cgroup.to_path_buf(),
            source,
        }),
        Err(clone::Error::Exec(e)) => Err(LaunchError::Helper(e)),
    }
}

/// The spec on its way to a helper: written into the channel before the helper exists
/// (the socket buffers it, so the helper finds it at once instead of waiting for the
/// daemon to hear its pid), the rest, if the buffer was full, once it does.
struct Outgoing {
    /// Keep the channel open after the spec (`SpawnSpec::cgroup_later`): the caller ends
    /// it with [`Launched::go`] or [`Launched::refuse`].
    hold: bool,
    ours: UnixStream,
    body: Vec<u8>,
    sent: usize,
    /// The process's stdin: kept until the end (a copy went with the first bytes, unless
    /// `stdin_sent` is false), and given back if this helper is abandoned.
    stdin: Option<OwnedFd>,
    stdin_sent: bool,
}

impl Outgoing {
    fn new(
        spec: &SpawnSpec,
        ours: UnixStream,
        stdin: Option<OwnedFd>,
    ) -> Result<Outgoing, LaunchError> {
        let json = serde_json::to_vec(spec).map_err(LaunchError::Encode)?;
        let len = u32::try_from(json.len())
            .map_err(|_| LaunchError::Encode(serde::ser::Error::custom("spawn spec over 4 GiB")))?;
        let mut body = len.to_le_bytes().to_vec();
        body.extend_from_slice(&json);
        let hold = spec.cgroup_later;
        let mut out = Outgoing {
            hold,
            ours,
            body,
            sent: 0,
            stdin,
            stdin_sent: false,
        };
        if out.ours.set_nonblocking(true).is_ok() {
            out.push();
            let _ = out.ours.set_nonblocking(false);
        }
        Ok(out)
    }

    /// Writes what the socket takes (blocking or not, as the socket is set).
    fn push(&mut self) {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        if let (Some(fd), false) = (&self.stdin, self.stdin_sent) {
            let fds = [fd.as_raw_fd()];
            let iov = [std::io::IoSlice::new(&self.body[self.sent..])];
            match sendmsg::<()>(
                self.ours.as_raw_fd(),
                &iov,
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(n) => {
                    self.sent += n;
                    self.stdin_sent = true;
                }
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(e) => {
                    tracing::debug!("passing stdin to the helper: {e}");
                    self.stdin_sent = true;
                }
            }
        }
        let mut w = &self.ours;
        while self.sent < self.body.len() {
            match w.write(&self.body[self.sent..]) {
                Ok(0) => break,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        // A helper that died early: EPIPE here, its exit in the reaper.
                        tracing::debug!("writing spawn spec: {e}");
                        self.sent = self.body.len();
                    }
                    break;
                }
            }
        }
    }

    /// The helper `pid` exists: the rest of the spec (blocking; the helper reads until
    /// EOF before doing anything, so this cannot deadlock), then EOF.
    fn finish(mut self, pid: i32) -> Launched {
        self.push();
        if !self.hold {
            let _ = self.ours.shutdown(Shutdown::Write);
        }
        if self.sent < self.body.len() {
            tracing::debug!(pid, "spawn spec not fully written");
        }
        Launched {
            pid,
            channel: self.ours,
        }
    }

    /// No helper will read this: the process's stdin back, for another try.
    fn abandon(self) -> Option<OwnedFd> {
        self.stdin
    }
}

impl Launched {
    /// For a spec with `cgroup_later`: the cgroup is complete, the helper may join it.
    pub fn go(&self) {
        let _ = self.channel.shutdown(Shutdown::Write);
    }

    /// For a spec with `cgroup_later`: the cgroup could not be completed; the helper
    /// reports `why` as its failure and exits.
    pub fn refuse(&self, why: &SpawnFailure) {
        if let Ok(line) = serde_json::to_vec(why) {
            let _ = (&self.channel).write_all(&line);
        }
        let _ = self.channel.shutdown(Shutdown::Write);
    }

    /// Resolve once the helper exec'd (no failure) or reported the step that failed, with
    /// the overlay the container's init handed back, if it did (`offer_overlay`), and the
    /// master of the terminal the helper made (`tty`). Must be
    /// called inside the tokio runtime.
    pub async fn outcome(self) -> Outcome {
        let lost = |e: io::Error| SpawnFailure {
            step: "spawn".into(),
            subject: String::new(),
            error: format!("lost contact with the helper: {e}"),
            exit_code: 125,
        };
        let mut overlay = None;
        let mut terminal = None;
        let mut exit_note = None;
        let read = async {
            self.channel.set_nonblocking(true)?;
            let stream = tokio::net::UnixStream::from_std(self.channel)?;
            let mut said = Vec::new();
            loop {
                stream.readable().await?;
                let mut buf = [0u8; 4096];
                // The overlay is best effort: descriptors the kernel truncated (the daemon
                // out of them) are dropped, never the start's failure.
                match stream.try_io(tokio::io::Interest::READABLE, || {
                    super::helper::recv_with_fd(stream.as_raw_fd(), &mut buf)
                        .map(|(n, fd)| (n, fd.ok().flatten()))
                }) {
                    Ok((0, _)) => return Ok(said),
                    Ok((n, fd)) => {
                        said.extend_from_slice(&buf[..n]);
                        // A read ends with the one byte that came with a descriptor.
                        match (fd, buf[..n].last()) {
                            (Some(fd), Some(&super::terminal::MARK)) => terminal = Some(fd),
                            (Some(fd), Some(&super::init::EXIT_NOTE_MARK)) => exit_note = Some(fd),
                            (Some(fd), _) => overlay = Some(fd),
                            (None, _) => {}
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        };
        let failure = match read.await {
            Err(e) => Some(lost(e)),
            Ok(mut said) => {
                // The descriptors' marks (the overlay's NUL byte, the exit note's, the
                // terminal's), which no JSON report has.
                said.retain(|b| {
                    ![0, super::init::EXIT_NOTE_MARK, super::terminal::MARK].contains(b)
                });
                (!said.is_empty()).then(|| {
                    serde_json::from_slice::<SpawnFailure>(&said).unwrap_or_else(|e| SpawnFailure {
                        step: "spawn".into(),
                        subject: String::new(),
                        error: format!("unreadable report from the helper: {e}"),
                        exit_code: 125,
                    })
                })
            }
        };
        Outcome {
            failure,
            overlay,
            terminal,
            exit_note,
        }
    }
}

/// How a spawn went: [`Launched::outcome`].
pub struct Outcome {
    /// The step that failed; None once the helper exec'd.
    pub failure: Option<SpawnFailure>,
    /// A detached clone of the container's overlay, for the next start
    /// (`ContainerSpec::offer_overlay`).
    pub overlay: Option<OwnedFd>,
    /// The master of the process's terminal (`SpawnSpec::tty`).
    pub terminal: Option<OwnedFd>,
    /// The read end of the container init's note of how its service ended
    /// (`init::exit_note`).
    pub exit_note: Option<OwnedFd>,
}
