//! The helper role (`kennel __helper`): a fresh, single-threaded copy of kennel that reads a
//! [`SpawnSpec`] from its stdin socket, prepares the process step by step and execs the
//! service. No Rust runs between fork and exec in the daemon: this process is that step.
//!
//! Protocol: fd 0 is a Unix stream socket; the daemon writes the spec as JSON and shuts
//! down its write side. On success the helper execs (its copy of the socket is close-on-exec,
//! so the daemon reads EOF); on failure it writes one [`SpawnFailure`] JSON line and exits.

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Group, Uid, User};

pub mod bundle;
pub mod container;
#[cfg(test)]
mod default_filter_tests;
pub mod gate;
pub mod layers;
pub mod rootfs;
pub mod security;
pub mod terminal;
pub mod userns;

use super::env;
use kennel_core::start::{Launch, Overlay, V1Join};

use super::spec::{Received, SpawnFailure, SpawnSpec};

/// The helper role in a child of the zygote; `spare_net`: the zygote gave it its spare
/// network namespace, on `zygote::SPARE_NET_FD`.
pub fn main_forked(spare_net: bool) -> ! {
    super::title::set(super::title::HELPER);
    run_role(spare_net)
}

/// Run the helper role (an exec'd helper); never returns.
pub fn main() -> ! {
    super::title::locate();
    super::title::set(super::title::HELPER);
    run_role(false)
}

fn run_role(spare_net: bool) -> ! {
    // fd 0 is the socket: keep it (close-on-exec) on a high fd, and give the service /dev/null.
    let sock = match take_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kennel helper: {e}");
            std::process::exit(125);
        }
    };
    let mut sock = sock;
    let failure = match run(&mut sock, spare_net) {
        Ok(never) => match never {},
        Err(f) => f,
    };
    // Told to the daemon, which logs it once (with what follows: a restart, the unit
    // failed) and tells an exec's client; on stderr (the unit's log, the exec's
    // client) only when the daemon cannot be told.
    let told = serde_json::to_vec(&failure).is_ok_and(|mut line| {
        line.push(b'\n');
        sock.write_all(&line).is_ok()
    });
    if !told {
        eprintln!("kennel: {failure}");
    }
    std::process::exit(failure.exit_code)
}

/// The lowest descriptor the helper's channel may take: the service's sockets go on 3 ..
/// `3 + MAX_SOCKETS` right before exec ([`place_sockets`]), and the channel must outlive
/// that to report a failed exec.
const CHANNEL_FD_MIN: i32 = 3 + kennel_units::socket::MAX_SOCKETS as i32;

fn take_socket() -> Result<UnixStream, Errno> {
    // With RLIMIT_NOFILE's soft limit below that (never seen) the channel goes lower, and
    // a unit with sockets is refused ([`run`]): they would land on it.
    let fd = fcntl(0, FcntlArg::F_DUPFD_CLOEXEC(CHANNEL_FD_MIN))
        .or_else(|_| fcntl(0, FcntlArg::F_DUPFD_CLOEXEC(3)))?;
    // SAFETY: fcntl just returned this fd; nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let null = nix::fcntl::open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())?;
    nix::unistd::dup2(null, 0)?;
    nix::unistd::close(null)?;
    Ok(UnixStream::from(owned))
}

pub(crate) fn fail(step: &str, subject: impl Into<String>, error: impl ToString) -> SpawnFailure {
    SpawnFailure {
        step: step.into(),
        subject: subject.into(),
        error: error.to_string(),
        exit_code: 125,
    }
}

fn run(sock: &mut UnixStream, spare_net: bool) -> Result<std::convert::Infallible, SpawnFailure> {
    let (Received { launch, mut spec }, mut passed) = read_spec(sock)?;
    // What came with the spec: the process's stdin, or a container's overlay, then the
    // unit's sockets.
    let wanted = spec.sockets.len();
    if passed.len() < wanted {
        return Err(fail(
            "receive the unit's sockets",
            "",
            format!(
                "{} descriptors came, {wanted} sockets expected",
                passed.len()
            ),
        ));
    }
    if wanted > 0 && sock.as_raw_fd() < CHANNEL_FD_MIN {
        return Err(fail(
            "pass the unit's sockets",
            "",
            format!("RLIMIT_NOFILE is below {CHANNEL_FD_MIN}: raise it to pass sockets"),
        ));
    }
    let sockets = passed.split_off(passed.len() - wanted);
    // Kept open (close-on-exec) until become_service puts them in place.
    spec.socket_fds = sockets.into_iter().map(IntoRawFd::into_raw_fd).collect();
    let mut held = None;
    if let Some(fd) = passed.into_iter().next() {
        if spec.stdin_passed {
            nix::unistd::dup2(fd.as_raw_fd(), 0).map_err(|e| fail("set up stdin", "", e.desc()))?;
        } else if spec
            .container
            .as_ref()
            .is_some_and(|c| c.plan.overlay == Overlay::Held)
        {
            held = Some(fd);
        }
    }
    if spec.argv.is_empty() {
        return Err(fail("exec", "", "empty command"));
    }
    reset_signals();
    // First of all: into the unit's cgroup, so that everything this process becomes or
    // forks is limited and accounted, and dies with the unit. A container whose v1
    // hierarchies the daemon is still making (`V1Join::AfterUnshare`) joins them once its
    // namespaces are made (container.rs).
    if spec.v1 != V1Join::AfterUnshare {
        join_cgroups(&spec, launch, sock.as_raw_fd())?;
    }
    if spec.new_session {
        nix::unistd::setsid().map_err(|e| fail("setsid", "", e.desc()))?;
    }
    match (&spec.container, &spec.join) {
        (Some(c), _) => container::run(&spec, c, sock.as_raw_fd(), held, launch, spare_net),
        (None, Some(j)) => container::join(&spec, j, sock.as_raw_fd()),
        (None, None) => {
            if let Some(size) = spec.tty {
                terminal::attach(size, sock.as_raw_fd())?;
            }
            become_service(&spec, false)
        }
    }
}

/// The spec: a length (`u32`, little-endian) then that much JSON, the first read carrying
/// the process's stdin if passed. Read exactly: what follows on the channel is for
/// [`join_cgroups`].
fn read_spec(sock: &mut UnixStream) -> Result<(Received, Vec<OwnedFd>), SpawnFailure> {
    let bad = |e: std::io::Error| fail("read spawn spec", "", e);
    let mut len = [0u8; 4];
    let (n, passed) = recv_with_fds(sock.as_raw_fd(), &mut len).map_err(bad)?;
    let passed = passed.map_err(bad)?;
    sock.read_exact(&mut len[n..]).map_err(bad)?;
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    sock.read_exact(&mut body).map_err(bad)?;
    let order: Received =
        serde_json::from_slice(&body).map_err(|e| fail("decode spawn spec", "", e))?;
    Ok((order, passed))
}

/// Joins the unit's cgroup: every file of `cgroup_procs` (but the one of the cgroup this
/// process was born in, `launch` says whether it was). With `V1Join::AfterUnshare`, first
/// waits for the daemon to have made it all: EOF on the channel says so; a `SpawnFailure`
/// instead says why it could not. `0`: the writer itself (see `UnitCgroup::join_files` on
/// why not the pid).
pub(crate) fn join_cgroups(
    spec: &SpawnSpec,
    launch: Launch,
    sock: std::os::fd::RawFd,
) -> Result<(), SpawnFailure> {
    if spec.v1 == V1Join::AfterUnshare {
        let mut said = Vec::new();
        // SAFETY: `sock` is this process's channel, open for the whole call; ManuallyDrop
        // keeps it open afterwards.
        let ch = std::mem::ManuallyDrop::new(unsafe { UnixStream::from_raw_fd(sock) });
        (&*ch)
            .read_to_end(&mut said)
            .map_err(|e| fail("wait for the unit's cgroup", "", e))?;
        if !said.is_empty() {
            return Err(
                serde_json::from_slice::<SpawnFailure>(&said).unwrap_or_else(|e| {
                    fail(
                        "wait for the unit's cgroup",
                        "",
                        format!("unreadable answer: {e}"),
                    )
                }),
            );
        }
    }
    for procs in &spec.cgroup_procs {
        let born_here = spec.unified.as_ref().is_some_and(|d| procs.starts_with(d));
        if born_here && launch.born_in_cgroup() {
            continue;
        }
        std::fs::write(procs, "0")
            .map_err(|e| fail("join cgroup", procs.display().to_string(), e))?;
    }
    Ok(())
}

/// One read from a spawn channel into `buf`, which may carry a file descriptor (the
/// helper's first read: the process's stdin or a container's overlay; the daemon's, from a
/// container's init: its overlay): how many bytes, and the first descriptor (close-on-exec;
/// any other is closed), or why the descriptors were lost (the kernel truncated them, the
/// receiver being out of descriptors).
pub(crate) fn recv_with_fd(
    sock: RawFd,
    buf: &mut [u8],
) -> std::io::Result<(usize, std::io::Result<Option<OwnedFd>>)> {
    let (n, fds) = recv_with_fds(sock, buf)?;
    Ok((n, fds.map(|fds| fds.into_iter().next())))
}

/// [`recv_with_fd`] with every descriptor that came (up to the stdin or overlay and
/// `MAX_SOCKETS` sockets), in order.
fn recv_with_fds(
    sock: RawFd,
    buf: &mut [u8],
) -> std::io::Result<(usize, std::io::Result<Vec<OwnedFd>>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut space = nix::cmsg_space!([RawFd; 1 + kennel_units::socket::MAX_SOCKETS]);
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let fds = msg.cmsgs().map_err(std::io::Error::from).map(|cmsgs| {
        let mut fds = Vec::new();
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = c {
                // SAFETY: the kernel just installed these fds for us.
                fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
            }
        }
        fds
    });
    Ok((msg.bytes, fds))
}

/// Hands the daemon `fd` over the helper's channel `report`, marked by the one byte `mark`
/// (the kind of descriptor: the kept overlay, the init's exit note, a terminal). A failure
/// report is JSON, which has none of these bytes.
pub(crate) fn send_marked(
    report: std::os::fd::RawFd,
    mark: u8,
    fd: &impl AsRawFd,
) -> nix::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd.as_raw_fd()];
    let byte = [mark];
    let iov = [std::io::IoSlice::new(&byte)];
    sendmsg::<()>(
        report,
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map(|_| ())
}

/// The last steps of every spawn: the user, the environment, the working directory, exec.
/// In a container this runs after `pivot_root`, so the user is looked up in the
/// container's `/etc/passwd` and the command in its PATH. `confined`: the seccomp filter and the bounding set are already in place
/// ([`security::confine`]).
pub(crate) fn become_service(
    spec: &SpawnSpec,
    confined: bool,
) -> Result<std::convert::Infallible, SpawnFailure> {
    // In a container (or joined into one), the accounts are the container's files.
    let db = if spec.container.is_some() || spec.join.is_some() {
        Accounts::Files
    } else {
        Accounts::Host
    };
    let who = resolve_user(spec.user.as_deref(), db)?;
    let mut vars = env::Env::new();
    vars.extend(spec.base_env.iter().cloned());
    if let Some(u) = &who.passwd {
        vars.set("HOME", &u.dir);
        vars.set("USER", &u.name);
        vars.set("LOGNAME", &u.name);
        vars.set("SHELL", &u.shell);
    }
    if let Some(file) = &spec.environment_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| fail("read environment_file", file.display().to_string(), e))?;
        let parsed = env::parse_env_file(&text).map_err(|e| {
            fail(
                "read environment_file",
                format!("{}:{}", file.display(), e.line()),
                e,
            )
        })?;
        vars.extend(parsed);
    }
    vars.extend(spec.env.iter().cloned());

    if spec.tty.is_some() {
        // SAFETY: ioctl on fd 0 with an integer argument.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
            return Err(fail(
                "set controlling terminal",
                "",
                std::io::Error::last_os_error(),
            ));
        }
        // The terminal is the user's, as a login's is (its group stays devpts's `tty`).
        if let Some(uid) = who.uid {
            nix::unistd::fchown(0, Some(uid), None)
                .map_err(|e| fail("give the terminal to", uid.to_string(), e.desc()))?;
        }
    }
    let root = who
        .uid
        .map_or_else(|| Uid::current().is_root(), |u| u.is_root());
    if let Some(sec) = &spec.security {
        security::before_user(&sec.settings, root, &sec.profile, confined)?;
    }
    drop_privileges(&who, db, spec.groups.as_deref())?;
    if let Some(sec) = &spec.security {
        security::after_user(&sec.settings, root)?;
    }
    if let Some(mask) = spec.umask {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask as libc::mode_t));
    }
    let dir = spec.working_dir.as_deref().unwrap_or(Path::new("/"));
    nix::unistd::chdir(dir).map_err(|e| fail("chdir", dir.display().to_string(), e.desc()))?;
    if !spec.socket_fds.is_empty() {
        place_sockets(&spec.socket_fds)?;
        // sd_listen_fds(3): LISTEN_PID is this process's own pid (the service's, in its
        // pid namespace), known only here, after every fork.
        vars.set("LISTEN_FDS", &spec.socket_fds.len().to_string());
        vars.set("LISTEN_PID", &std::process::id().to_string());
        vars.set("LISTEN_FDNAMES", &spec.sockets.join(":"));
    }

    exec(&spec.argv, &vars)
}

/// The unit's sockets onto 3, 4 ... without close-on-exec, the last step before exec
/// (descriptors on those numbers until now, close-on-exec, are closed by it). First each
/// goes above the range, so that none is overwritten before it is moved.
fn place_sockets(fds: &[RawFd]) -> Result<(), SpawnFailure> {
    let first = 3;
    let end = first + fds.len() as RawFd;
    let moved = fds
        .iter()
        .map(|&fd| {
            if (first..end).contains(&fd) || fd < first {
                fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(end))
            } else {
                Ok(fd)
            }
        })
        .collect::<Result<Vec<RawFd>, Errno>>()
        .map_err(|e| fail("pass the unit's sockets", "", e.desc()))?;
    for (i, fd) in moved.into_iter().enumerate() {
        // dup2 leaves the new descriptor without close-on-exec.
        nix::unistd::dup2(fd, first + i as RawFd).map_err(|e| {
            fail(
                "pass the unit's sockets",
                format!("fd {}", first + i as RawFd),
                e.desc(),
            )
        })?;
    }
    Ok(())
}

/// Every signal disposition back to its default and an empty mask, whatever this process
/// inherited (the daemon's handling, or what kennel itself was started with: under
/// `nohup`, SIGHUP ignored): an exec keeps ignored dispositions and the mask, and every
/// process kennel starts must begin with neither. Only system calls: also called between
/// fork and exec (`kennel run`).
pub(crate) fn reset_signals() {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    // The raw system call: glibc's sigaction refuses the real-time signals it reserves
    // (32, 33), which an exec inherits ignored like any other. A zeroed kernel sigaction
    // is SIG_DFL, no flags, an empty mask, on every architecture's layout.
    let default = [0u64; 4];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction reads `default` (large enough for any layout) and writes
        // nothing (no old action); errors are irrelevant.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default.as_ptr(),
                std::ptr::null::<u8>(),
                8usize,
            );
        }
    }
}

/// An account: what the environment and the supplementary groups need.
struct Account {
    name: String,
    dir: String,
    shell: String,
    uid: u32,
    gid: u32,
}

impl From<User> for Account {
    fn from(u: User) -> Account {
        Account {
            name: u.name,
            dir: u.dir.to_string_lossy().into_owned(),
            shell: u.shell.to_string_lossy().into_owned(),
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }
    }
}

/// Where users and groups are looked up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Accounts {
    /// The host's name service (NSS: files, LDAP, ...), for services on the host.
    Host,
    /// A container's `/etc/passwd` and `/etc/group`, read as plain files: never through
    /// NSS, which would load the libraries an image's `/etc/nsswitch.conf` names into this
    /// process while it still has the host's privileges.
    Files,
}

/// Why an account could not be looked up.
#[derive(Debug, thiserror::Error)]
enum AccountsError {
    /// The name service failed.
    #[error("{}", .0.desc())]
    NameService(nix::errno::Errno),
    /// `/etc/passwd` or `/etc/group` exists but cannot be read.
    #[error("read {path}: {source}")]
    Read {
        path: &'static str,
        source: std::io::Error,
    },
}

impl Accounts {
    fn user_by_uid(self, uid: u32) -> Result<Option<Account>, AccountsError> {
        match self {
            Accounts::Host => User::from_uid(Uid::from_raw(uid))
                .map(|u| u.map(Account::from))
                .map_err(AccountsError::NameService),
            Accounts::Files => Ok(passwd()?.into_iter().find(|a| a.uid == uid)),
        }
    }

    fn user_by_name(self, name: &str) -> Result<Option<Account>, AccountsError> {
        match self {
            Accounts::Host => User::from_name(name)
                .map(|u| u.map(Account::from))
                .map_err(AccountsError::NameService),
            Accounts::Files => Ok(passwd()?.into_iter().find(|a| a.name == name)),
        }
    }

    fn group_by_name(self, name: &str) -> Result<Option<u32>, AccountsError> {
        match self {
            Accounts::Host => Group::from_name(name)
                .map(|g| g.map(|g| g.gid.as_raw()))
                .map_err(AccountsError::NameService),
            Accounts::Files => Ok(groups()?.into_iter().find(|g| g.0 == name).map(|g| g.1)),
        }
    }
}

/// `/etc/passwd` of the current root as accounts (`name:x:uid:gid:gecos:dir:shell`);
/// malformed lines are skipped, a missing file is empty.
fn passwd() -> Result<Vec<Account>, AccountsError> {
    let text = read_db("/etc/passwd")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let [name, _, uid, gid, _, dir, shell] = f.as_slice() else {
                return None;
            };
            Some(Account {
                name: name.to_string(),
                dir: dir.to_string(),
                shell: shell.to_string(),
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
            })
        })
        .collect())
}

/// `/etc/group` of the current root: (name, gid, members).
fn groups() -> Result<Vec<(String, u32, Vec<String>)>, AccountsError> {
    let text = read_db("/etc/group")?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let [name, _, gid, members] = f.as_slice() else {
                return None;
            };
            let members = members
                .split(',')
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect();
            Some((name.to_string(), gid.parse().ok()?, members))
        })
        .collect())
}

fn read_db(path: &'static str) -> Result<String, AccountsError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(AccountsError::Read { path, source }),
    }
}

/// The identity to run as.
struct Identity {
    uid: Option<Uid>,
    gid: Option<Gid>,
    passwd: Option<Account>,
}

fn resolve_user(spec: Option<&str>, db: Accounts) -> Result<Identity, SpawnFailure> {
    let Some(spec) = spec else {
        let me = db.user_by_uid(Uid::current().as_raw()).ok().flatten();
        return Ok(Identity {
            uid: None,
            gid: None,
            passwd: me,
        });
    };
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = match user_part.parse::<u32>() {
        Ok(n) => db
            .user_by_uid(n)
            .map_err(|e| fail("look up user", spec, e))?,
        Err(_) => Some(
            db.user_by_name(user_part)
                .map_err(|e| fail("look up user", spec, e))?
                .ok_or_else(|| fail("look up user", user_part, "no such user in /etc/passwd"))?,
        ),
    };
    let uid = match (&passwd, user_part.parse::<u32>()) {
        (_, Ok(n)) => Uid::from_raw(n),
        (Some(p), Err(_)) => Uid::from_raw(p.uid),
        (None, Err(_)) => return Err(fail("look up user", spec, "no such user")),
    };
    let gid = match group_part {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => Gid::from_raw(n),
            Err(_) => Gid::from_raw(
                db.group_by_name(g)
                    .map_err(|e| fail("look up group", g, e))?
                    .ok_or_else(|| fail("look up group", g, "no such group in /etc/group"))?,
            ),
        },
        None => match &passwd {
            Some(p) => Gid::from_raw(p.gid),
            None => Gid::from_raw(uid.as_raw()),
        },
    };
    Ok(Identity {
        uid: Some(uid),
        gid: Some(gid),
        passwd,
    })
}

fn drop_privileges(
    who: &Identity,
    db: Accounts,
    exact_groups: Option<&[u32]>,
) -> Result<(), SpawnFailure> {
    let (Some(uid), Some(gid)) = (who.uid, who.gid) else {
        return Ok(());
    };
    match (&who.passwd, db) {
        _ if exact_groups.is_some() => {
            let list: Vec<Gid> = exact_groups
                .unwrap_or_default()
                .iter()
                .map(|g| Gid::from_raw(*g))
                .collect();
            nix::unistd::setgroups(&list)
                .map_err(|e| fail("setgroups", format!("{list:?}"), e.desc()))?;
        }
        (Some(p), Accounts::Host) => {
            let name = CString::new(p.name.as_bytes())
                .map_err(|_| fail("initgroups", p.name.clone(), "name contains NUL"))?;
            nix::unistd::initgroups(&name, gid)
                .map_err(|e| fail("initgroups", p.name.clone(), e.desc()))?;
        }
        (Some(p), Accounts::Files) => {
            // initgroups(3) by hand: the group itself and every group listing the user.
            let mut list = vec![gid];
            for (_, g, members) in groups().map_err(|e| fail("read groups", p.name.clone(), e))? {
                if members.contains(&p.name) && !list.contains(&Gid::from_raw(g)) {
                    list.push(Gid::from_raw(g));
                }
            }
            nix::unistd::setgroups(&list)
                .map_err(|e| fail("setgroups", p.name.clone(), e.desc()))?;
        }
        (None, _) => nix::unistd::setgroups(&[gid])
            .map_err(|e| fail("setgroups", gid.to_string(), e.desc()))?,
    }
    nix::unistd::setgid(gid).map_err(|e| fail("setgid", gid.to_string(), e.desc()))?;
    nix::unistd::setuid(uid).map_err(|e| fail("setuid", uid.to_string(), e.desc()))?;
    Ok(())
}

fn exec(argv: &[String], vars: &env::Env) -> Result<std::convert::Infallible, SpawnFailure> {
    let cstr = |s: &str| {
        CString::new(s.as_bytes()).map_err(|_| fail("exec", s.to_string(), "argument contains NUL"))
    };
    let args = argv
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = vars
        .to_cstrings()
        .map_err(|e| fail("exec", e.0, "environment contains NUL"))?;
    let prog = &argv[0];
    let candidates: Vec<String> = if prog.contains('/') {
        vec![prog.clone()]
    } else {
        let path = vars.get("PATH").unwrap_or(env::DEFAULT_PATH);
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{d}/{prog}"))
            .collect()
    };
    let mut denied = None;
    for cand in &candidates {
        let c = cstr(cand)?;
        let err = match nix::unistd::execve(&c, &args, &envp) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        match err {
            Errno::ENOENT | Errno::ENOTDIR => continue,
            Errno::EACCES | Errno::ENOEXEC | Errno::EPERM => {
                denied = Some((cand.clone(), err));
                if prog.contains('/') {
                    break;
                }
            }
            other => {
                return Err(SpawnFailure {
                    exit_code: 126,
                    ..fail("exec", cand.clone(), other.desc())
                })
            }
        }
    }
    Err(match denied {
        Some((cand, e)) => SpawnFailure {
            exit_code: 126,
            ..fail("exec", cand, e.desc())
        },
        None if prog.contains('/') => SpawnFailure {
            exit_code: 127,
            ..fail("exec", prog.clone(), "no such file or directory")
        },
        None => SpawnFailure {
            exit_code: 127,
            ..fail("exec", prog.clone(), "command not found in PATH")
        },
    })
}
