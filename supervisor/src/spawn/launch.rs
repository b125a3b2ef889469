//! The daemon's side of spawning: start the helper (`/proc/self/exe __helper`), hand it the
//! spec over a socketpair, and learn asynchronously whether it reached exec.

use std::io::{self, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};

use tokio::io::AsyncReadExt;

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
    let fds = [theirs.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()];
    let forked = match zygote::fork(fds, None, wants_net(spec)) {
        Ok(f) => f,
        Err(ForkError::Refused(errno)) => {
            return Err(LaunchError::Helper(io::Error::from_raw_os_error(errno)))
        }
        Err(ForkError::Unavailable) => {
            let child = Command::new("/proc/self/exe")
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
            return send(spec, pid, ours, stdin);
        }
    };
    drop((theirs, stdout, stderr));
    send(&with_spare(spec, forked), forked.pid, ours, stdin)
}

/// Whether `spec` creates a network namespace the zygote's spare can stand in for: a
/// container's own, not one joined from another unit, not one owned by a user namespace.
fn wants_net(spec: &SpawnSpec) -> bool {
    spec.container.as_ref().is_some_and(|c| {
        c.namespaces.contains(&kennel_units::Namespace::Net)
            && c.join_net.is_none()
            && c.user_ns.is_none()
    })
}

/// `spec`, told whether the helper holds the zygote's spare network namespace.
fn with_spare(spec: &SpawnSpec, forked: zygote::Forked) -> std::borrow::Cow<'_, SpawnSpec> {
    match (&spec.container, forked.spare_net) {
        (Some(_), true) => {
            let mut spec = spec.clone();
            if let Some(c) = spec.container.as_mut() {
                c.spare_net = true;
            }
            std::borrow::Cow::Owned(spec)
        }
        _ => std::borrow::Cow::Borrowed(spec),
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
    let fds = [theirs.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd()];
    let forked = match zygote::fork(fds, Some(dir.as_raw_fd()), wants_net(spec)) {
        Ok(f) => Ok(f),
        Err(ForkError::Refused(errno)) if clone::falls_back(errno) => Err(
            clone::Error::Unsupported(io::Error::from_raw_os_error(errno)),
        ),
        Err(ForkError::Refused(errno)) => {
            Err(clone::Error::Failed(io::Error::from_raw_os_error(errno)))
        }
        Err(ForkError::Unavailable) if idle => {
            clone::into_cgroup(dir.as_raw_fd(), fds).map(|pid| zygote::Forked {
                pid,
                spare_net: false,
            })
        }
        Err(ForkError::Unavailable) => Err(clone::Error::Unsupported(io::Error::other(
            "no zygote, and the cgroup may be frozen",
        ))),
    };
    match forked {
        Ok(forked) => {
            drop((theirs, stdout, stderr));
            let mut spec = with_spare(spec, forked).into_owned();
            spec.cgroup_procs.retain(|p| !p.starts_with(cgroup));
            send(&spec, forked.pid, ours, stdin)
        }
        Err(clone::Error::Unsupported(e)) => {
            tracing::debug!(
                "clone3 into {}: {e}; starting the helper with a join",
                cgroup.display()
            );
            drop((ours, theirs));
            launch(spec, stdin, stdout, stderr)
        }
        Err(clone::Error::Failed(source)) => Err(LaunchError::IntoCgroup {
            cgroup: cgroup.to_path_buf(),
            source,
        }),
        Err(clone::Error::Exec(e)) => Err(LaunchError::Helper(e)),
    }
}

/// Hand the spec (and `stdin`) to the helper `pid` over `ours`.
fn send(
    spec: &SpawnSpec,
    pid: i32,
    ours: UnixStream,
    stdin: Option<OwnedFd>,
) -> Result<Launched, LaunchError> {
    let body = serde_json::to_vec(spec).map_err(LaunchError::Encode)?;
    // The helper reads until EOF before doing anything, so this cannot deadlock; a helper
    // that died early shows up as EPIPE here and as its exit in the reaper.
    let mut w = &ours;
    let mut rest: &[u8] = &body;
    if let Some(fd) = &stdin {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let fds = [fd.as_raw_fd()];
        let iov = [std::io::IoSlice::new(rest)];
        match sendmsg::<()>(
            ours.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => rest = &rest[n..],
            Err(e) => tracing::debug!(pid, "passing stdin to the helper: {e}"),
        }
    }
    if let Err(e) = w.write_all(rest) {
        tracing::debug!(pid, "writing spawn spec: {e}");
    }
    drop(stdin);
    let _ = ours.shutdown(Shutdown::Write);
    Ok(Launched { pid, channel: ours })
}

impl Launched {
    /// Resolve once the helper exec'd (`Ok`) or reported the step that failed. Must be
    /// called inside the tokio runtime.
    pub async fn outcome(self) -> Result<(), SpawnFailure> {
        let lost = |e: io::Error| SpawnFailure {
            step: "spawn".into(),
            subject: String::new(),
            error: format!("lost contact with the helper: {e}"),
            exit_code: 125,
        };
        self.channel.set_nonblocking(true).map_err(lost)?;
        let mut stream = tokio::net::UnixStream::from_std(self.channel).map_err(lost)?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.map_err(lost)?;
        if buf.is_empty() {
            return Ok(());
        }
        Err(
            serde_json::from_slice::<SpawnFailure>(&buf).unwrap_or_else(|e| SpawnFailure {
                step: "spawn".into(),
                subject: String::new(),
                error: format!("unreadable report from the helper: {e}"),
                exit_code: 125,
            }),
        )
    }
}
