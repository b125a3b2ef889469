//! The daemon's side of spawning: start the helper the way the start plan orders (forked
//! by the zygote, cloned into the unit's cgroup, or `/proc/self/exe __helper`), hand it the
//! spec over a socketpair, and learn asynchronously whether it reached exec.

use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use std::sync::atomic::{AtomicBool, Ordering};

use kennel_core::start::{Launch, V1Join};

use super::spec::{Order, SpawnFailure, SpawnSpec};
use zygote::ForkError;

mod clone;
pub mod zygote;

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

/// Start the helper for `spec`, trying each way of `order` (the start plan's
/// [`Launch`] list, best first) until one makes it, with the given stdout and stderr, and
/// `stdin` (passed over the spec socket; `spec.stdin_passed` must say so), or /dev/null.
/// `sockets` (one for each of `spec.sockets`) go with the spec too, after `stdin`.
/// `cgroup`: the unit's unified (or v2) cgroup directory, open, for the ways that start the
/// helper right inside it (`spec.unified` is its path). The helper is told which way made it.
///
/// A way that is unavailable (no zygote) or refused as unsupported (`clone3` or its
/// `CLONE_INTO_CGROUP` unknown to the kernel or refused by a seccomp filter: see
/// `clone::falls_back`) moves on to the next, and is remembered: a zygote whose plain fork
/// is refused is retired, a refused `CLONE_INTO_CGROUP` is not tried again
/// ([`into_cgroup_refused`]). Any other refusal (`EAGAIN` from `pids.max`, `ENOMEM`...) is
/// the start's failure, and so is a request the zygote took without answering (a helper
/// may be reading the channel: no second one is started on it).
pub fn launch(
    spec: &SpawnSpec,
    order: &[Launch],
    mut stdin: Option<OwnedFd>,
    sockets: &[OwnedFd],
    stdout: OwnedFd,
    stderr: OwnedFd,
    cgroup: Option<&std::fs::File>,
) -> Result<Launched, LaunchError> {
    for &how in order {
        let dir = cgroup.map(AsRawFd::as_raw_fd);
        if how.born_in_cgroup() && dir.is_none() {
            continue;
        }
        let (ours, theirs) = UnixStream::pair().map_err(LaunchError::Socket)?;
        let out = Outgoing::new(spec, how, ours, stdin, sockets)?;
        let fds = [theirs.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()];
        let tried = match how {
            Launch::Zygote {
                into_cgroup,
                pid_ns,
                spare_net,
            } => {
                let wants = zygote::Wants {
                    net: spare_net,
                    pid: pid_ns,
                };
                match zygote::fork(fds, dir.filter(|_| into_cgroup), wants) {
                    Ok(pid) => Ok(pid),
                    Err(ForkError::Unavailable) => Err(None),
                    Err(ForkError::Refused(errno)) if clone::falls_back(errno) => {
                        if into_cgroup {
                            refuse_into_cgroup(errno);
                        } else {
                            zygote::retire(errno);
                        }
                        Err(None)
                    }
                    Err(ForkError::Refused(errno)) => Err(Some(refused(
                        how,
                        spec,
                        io::Error::from_raw_os_error(errno),
                    ))),
                    Err(ForkError::Lost) => Err(Some(LaunchError::Helper(lost()))),
                }
            }
            Launch::CloneIntoCgroup => match dir.map(|d| clone::into_cgroup(d, fds)) {
                None => Err(None),
                Some(Ok(pid)) => Ok(pid),
                Some(Err(clone::Error::Unsupported(e))) => {
                    tracing::debug!("clone3 into the unit's cgroup: {e}; trying the next way");
                    if let Some(errno) = e.raw_os_error() {
                        refuse_into_cgroup(errno);
                    }
                    Err(None)
                }
                Some(Err(clone::Error::Failed(e))) => Err(Some(refused(how, spec, e))),
                Some(Err(clone::Error::Exec(e))) => Err(Some(LaunchError::Helper(e))),
            },
            Launch::Exec => {
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
        match tried {
            Ok(pid) => {
                drop((theirs, stdout, stderr));
                return Ok(out.finish(pid));
            }
            Err(Some(e)) => return Err(e),
            Err(None) => {
                drop(theirs);
                stdin = out.abandon();
            }
        }
    }
    Err(LaunchError::Helper(io::Error::other(
        "no way to start the helper was left to try",
    )))
}

/// The error of a way `how` that was refused for a reason another way would not cure.
fn refused(how: Launch, spec: &SpawnSpec, source: io::Error) -> LaunchError {
    match (&spec.unified, how.born_in_cgroup()) {
        (Some(cgroup), true) => LaunchError::IntoCgroup {
            cgroup: cgroup.clone(),
            source,
        },
        _ => LaunchError::Helper(source),
    }
}

/// Set once `CLONE_INTO_CGROUP` was refused as unsupported: see [`into_cgroup_refused`].
static INTO_CGROUP_REFUSED: AtomicBool = AtomicBool::new(false);

fn refuse_into_cgroup(errno: i32) {
    if !INTO_CGROUP_REFUSED.swap(true, Ordering::Relaxed) {
        tracing::info!(
            "clone3 into a cgroup refused ({}); helpers join their cgroups from now on",
            io::Error::from_raw_os_error(errno)
        );
    }
}

/// Whether this kernel (or a seccomp filter around kennel) refused `clone3` with
/// `CLONE_INTO_CGROUP`: the start plan's `Host::clone_into_cgroup`.
pub fn into_cgroup_refused() -> bool {
    INTO_CGROUP_REFUSED.load(Ordering::Relaxed)
}

/// Why a spawn fails when the zygote took the request but never answered.
fn lost() -> io::Error {
    io::Error::other("the spawn zygote took the request but did not answer")
}

/// [`launch`] with stdout and stderr on /dev/null (probes).
pub fn launch_quiet(spec: &SpawnSpec, order: &[Launch]) -> Result<Launched, LaunchError> {
    let null = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(LaunchError::Helper)
    };
    launch(spec, order, None, &[], null()?, null()?, None)
}

/// The spec on its way to a helper: written into the channel before the helper exists
/// (the socket buffers it, so the helper finds it at once instead of waiting for the
/// daemon to hear its pid), the rest, if the buffer was full, once it does.
struct Outgoing<'s> {
    /// Keep the channel open after the spec (`V1Join::AfterUnshare`): the caller ends
    /// it with [`Launched::go`] or [`Launched::refuse`].
    hold: bool,
    ours: UnixStream,
    body: Vec<u8>,
    sent: usize,
    /// The process's stdin: kept until the end (a copy went with the first bytes, unless
    /// `fds_sent` is false), and given back if this helper is abandoned.
    stdin: Option<OwnedFd>,
    /// The unit's listening sockets (the daemon keeps them): copies go with the first
    /// bytes, after stdin.
    sockets: &'s [OwnedFd],
    /// Whether the descriptors went (with the first bytes).
    fds_sent: bool,
}

impl<'s> Outgoing<'s> {
    fn new(
        spec: &SpawnSpec,
        launch: Launch,
        ours: UnixStream,
        stdin: Option<OwnedFd>,
        sockets: &'s [OwnedFd],
    ) -> Result<Outgoing<'s>, LaunchError> {
        let json = serde_json::to_vec(&Order { launch, spec }).map_err(LaunchError::Encode)?;
        let len = u32::try_from(json.len())
            .map_err(|_| LaunchError::Encode(serde::ser::Error::custom("spawn spec over 4 GiB")))?;
        let mut body = len.to_le_bytes().to_vec();
        body.extend_from_slice(&json);
        let hold = spec.v1 == V1Join::AfterUnshare;
        let mut out = Outgoing {
            hold,
            ours,
            body,
            sent: 0,
            stdin,
            sockets,
            fds_sent: false,
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
        let fds: Vec<_> = (self.stdin.iter().chain(self.sockets))
            .map(AsRawFd::as_raw_fd)
            .collect();
        if !fds.is_empty() && !self.fds_sent {
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
                    self.fds_sent = true;
                }
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(e) => {
                    tracing::debug!("passing descriptors to the helper: {e}");
                    self.fds_sent = true;
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
    /// For a spec with `V1Join::AfterUnshare`: the cgroup is complete, the helper may join it.
    pub fn go(&self) {
        let _ = self.channel.shutdown(Shutdown::Write);
    }

    /// For a spec with `V1Join::AfterUnshare`: the cgroup could not be completed; the helper
    /// reports `why` as its failure and exits.
    pub fn refuse(&self, why: &SpawnFailure) {
        if let Ok(line) = serde_json::to_vec(why) {
            let _ = (&self.channel).write_all(&line);
        }
        let _ = self.channel.shutdown(Shutdown::Write);
    }

    /// Resolve once the helper exec'd (no failure) or reported the step that failed, with
    /// the overlay the container's init handed back, if it did (`ContainerPlan::offer_overlay`),
    /// and the master of the terminal the helper made (`tty`). Must be
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
                            (Some(fd), Some(&super::helper::terminal::MARK)) => terminal = Some(fd),
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
                    ![
                        0,
                        super::init::EXIT_NOTE_MARK,
                        super::helper::terminal::MARK,
                    ]
                    .contains(b)
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
    /// (`ContainerPlan::offer_overlay`).
    pub overlay: Option<OwnedFd>,
    /// The master of the process's terminal (`SpawnSpec::tty`).
    pub terminal: Option<OwnedFd>,
    /// The read end of the container init's note of how its service ended
    /// (`init::exit_note`).
    pub exit_note: Option<OwnedFd>,
}
