//! The helper's container path: join the cgroup (done by the caller), create the
//! namespaces, become (or fork) the pid namespace's init, build the rootfs, then exec the
//! service, or fork it under the tiny init.
//!
//! With a user namespace, see [`super::userns`] for who creates and owns which namespace.
//!
//! With the tiny init and no user namespace, the init forks the service before it builds
//! the rootfs: the service confines itself (kennel's default seccomp filter, the bounding
//! set) meanwhile on another CPU, then waits until the rootfs is complete (`pivot_root`
//! moves its root there too; after the chroot fallback it is replaced: `Early::cancel`).
//!
//! Processes, for a unit with a pid namespace and `init = true`, when the zygote forked
//! the helper right into a new pid namespace (`Launch::Zygote { pid_ns: true, .. }`):
//!
//! ```text
//! kennel ─ helper = init (host pid P: the unit's pid; PID 1 inside; forwards signals)
//!            └─ service (PID 2 inside)
//! ```
//!
//! Otherwise (an exec'd helper, or a user namespace, whose maps the helper writes from
//! outside):
//!
//! ```text
//! kennel ─ helper (host pid P: the unit's pid; forwards signals, exits with the code)
//!            └─ init (PID 1 inside; new session; dies with P via PDEATHSIG)
//!                 └─ service (PID 2 inside)
//! ```

use std::convert::Infallible;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sched::CloneFlags;
use nix::unistd::{ForkResult, Pid};

use super::layers;
use super::rootfs;
use super::userns;
use super::{become_service, fail, reset_signals};
use crate::spawn::init;
use crate::spawn::spec::{ContainerSpec, SpawnFailure, SpawnSpec};
use crate::spawn::title;
use kennel_core::start::{Launch, Pid1, V1Join};
use kennel_units::Namespace;

/// What [`fork_into_pid_namespace`] forks a container's init for (else an exec).
const INIT_ROLE: &str = "container init";

fn flags(ns: &[Namespace]) -> CloneFlags {
    let mut f = CloneFlags::CLONE_NEWNS;
    for n in ns {
        f |= match n {
            Namespace::Pid => CloneFlags::CLONE_NEWPID,
            Namespace::Mount => CloneFlags::CLONE_NEWNS,
            Namespace::Uts => CloneFlags::CLONE_NEWUTS,
            Namespace::Ipc => CloneFlags::CLONE_NEWIPC,
            Namespace::Net => CloneFlags::CLONE_NEWNET,
            Namespace::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            // Created apart (userns::create), before the others.
            Namespace::User => CloneFlags::empty(),
        };
    }
    f
}

/// Run the container path; `report` is the helper's socket to the daemon (close-on-exec).
/// `held`: the overlay a previous run handed back (`Overlay::Held`). `launch`: how this
/// helper was made (into a new pid namespace as its PID 1, or not); `spare_net`: the
/// zygote gave it a network namespace ready for use.
pub fn run(
    spec: &SpawnSpec,
    c: &ContainerSpec,
    report: RawFd,
    held: Option<OwnedFd>,
    launch: Launch,
    spare_net: bool,
) -> Result<Infallible, SpawnFailure> {
    if let Some(path) = &c.join_net {
        let fd = std::fs::File::open(path)
            .map_err(|e| fail("open network namespace", path.display().to_string(), e))?;
        nix::sched::setns(&fd, CloneFlags::CLONE_NEWNET).map_err(|e| {
            fail(
                "join network namespace",
                path.display().to_string(),
                e.desc(),
            )
        })?;
    }
    // The start gate (`kennel oci create`): opened while the host's files are reachable.
    let gate = spec
        .start_gate
        .as_ref()
        .map(super::gate::open)
        .transpose()?;
    for (name, path) in &c.join_paths {
        join_path(name, path)?;
    }
    let mut dirs = match &c.bundle {
        // A bundle's rootfs is its directory: no layers to prepare.
        Some(_) => layers::Dirs::new(&c.dir),
        None => layers::prepare_dirs(c, held)?,
    };
    let mut flags = flags(&c.namespaces);
    // The zygote's spare network namespace (`lo` already up), when it gave one: joined
    // instead of created. Closed either way: the service must not inherit it.
    let given_net = spare_net;
    let mut spare_net = false;
    if given_net {
        // SAFETY: the zygote put this descriptor here for this process alone.
        let spare = unsafe { OwnedFd::from_raw_fd(crate::spawn::zygote::SPARE_NET_FD) };
        if flags.contains(CloneFlags::CLONE_NEWNET) && c.user_ns.is_none() {
            nix::sched::setns(&spare, CloneFlags::CLONE_NEWNET)
                .map_err(|e| fail("join network namespace", "(new)", e.desc()))?;
            flags -= CloneFlags::CLONE_NEWNET;
            spare_net = true;
        }
    }
    let user = match &c.user_ns {
        Some(maps) => {
            // The user namespace owns the network, UTS and IPC namespaces; this process
            // joins them and creates the rest as host root.
            let owned = flags
                & (CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC);
            flags -= owned;
            Some(userns::create(maps, owned)?)
        }
        None => None,
    };
    // Forked by the zygote right into a new pid namespace, as its PID 1: this process is
    // the container's init, and the daemon's child; no fork, no process left outside.
    let pid_init = launch.pid_ns() && user.is_none();
    if pid_init {
        flags -= CloneFlags::CLONE_NEWPID;
    }
    // A cgroup namespace is rooted at the cgroups of its creator: with the v1 hierarchies
    // still to join (`V1Join::AfterUnshare`), it is created after joining them.
    let cgroup_ns = flags & CloneFlags::CLONE_NEWCGROUP;
    let join_later = spec.v1 == V1Join::AfterUnshare;
    if join_later {
        flags -= cgroup_ns;
    }
    nix::sched::unshare(flags).map_err(|e| fail("unshare", format!("{flags:?}"), e.desc()))?;
    if join_later {
        // The daemon made the v1 hierarchies meanwhile; before anything of the container
        // (its mounts, the init's fork) is charged.
        super::join_cgroups(spec, launch, report)?;
        if !cgroup_ns.is_empty() {
            nix::sched::unshare(cgroup_ns)
                .map_err(|e| fail("unshare", format!("{cgroup_ns:?}"), e.desc()))?;
        }
    }

    let signals = if pid_init {
        title::set(title::INIT);
        Some(init::block_all_signals())
    } else if flags.contains(CloneFlags::CLONE_NEWPID) {
        Some(fork_into_pid_namespace(report, INIT_ROLE)?)
    } else {
        None
    };

    // With the tiny init and no user namespace, the service is forked now: it confines
    // itself (seccomp, bounding set) on another CPU while this process builds the rootfs,
    // and goes on when it is complete (`Early`).
    let init = matches!(c.plan.pid1, Pid1::Init { .. });
    let early = match (c.plan.pid1, &signals, &user) {
        (
            Pid1::Init {
                service_early: true,
            },
            Some(_),
            None,
        ) => Some(fork_service_early(spec, pid_init)?),
        _ => None,
    };

    if c.namespaces.contains(&Namespace::Uts) {
        nix::unistd::sethostname(&c.hostname)
            .map_err(|e| fail("sethostname", c.hostname.clone(), e.desc()))?;
    }
    if c.namespaces.contains(&Namespace::Net) && !spare_net {
        loopback_up()?;
    }
    if let (Some(_), Some(sec)) = (&user, &spec.security) {
        // Limits and OOM score while this process is still plainly host root (not yet with
        // the container root's file-system ids, with which /proc/self is not writable).
        super::security::resources(&sec.settings)?;
    }
    let overlay = dirs.overlay.take();
    let pivoted = rootfs::build(c, &dirs, user.as_ref(), overlay)?;
    // Before any of the service's code runs (it shares this mount namespace).
    offer_overlay(c, report);
    if let Some(u) = user {
        // The init and the service are the user namespace's root from here on.
        userns::enter(&u.user, signals.is_some())?;
    }

    match (init, signals) {
        (true, Some(set)) => {
            let child = match early {
                // pivot_root moved the waiting service's root with the init's; a chroot
                // moves the init's alone.
                Some(early) if pivoted => early.go()?,
                Some(early) => {
                    early.cancel();
                    fork_service(spec, pid_init)?
                }
                None => fork_service(spec, pid_init)?,
            };
            drop(dirs.declined.take());
            let note = init::exit_note(report);
            close(report);
            // The init inside is as locked down as the service it watches.
            if let Some(sec) = &spec.security {
                let locked = super::security::before_user(&sec.settings, true, &sec.profile, false)
                    .and_then(|()| super::security::after_user(&sec.settings, true));
                if let Err(e) = locked {
                    eprintln!("kennel init: {e}");
                }
            }
            let status = init::supervise(child.as_raw(), child.as_raw(), &set);
            init::note_exit(note.as_ref(), status);
            std::process::exit(status.as_code());
        }
        _ => {
            drop(dirs.declined.take());
            reset_signals();
            if let Some(size) = spec.tty {
                super::terminal::attach(size, report)?;
            }
            if let Some(gate) = gate {
                super::gate::wait(gate, report)?;
            }
            become_service(spec, false)
        }
    }
}

/// Joins the existing namespace at `path` (an OCI bundle's `linux.namespaces[].path`).
fn join_path(name: &str, path: &std::path::Path) -> Result<(), SpawnFailure> {
    let flag = match name {
        "net" => CloneFlags::CLONE_NEWNET,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        other => {
            return Err(fail(
                "join namespace",
                other,
                "not a namespace kennel joins by path",
            ))
        }
    };
    let fd = std::fs::File::open(path)
        .map_err(|e| fail("open namespace", path.display().to_string(), e))?;
    nix::sched::setns(&fd, flag)
        .map_err(|e| fail("join namespace", path.display().to_string(), e.desc()))
}

/// Hands the daemon a detached clone of the container's overlay (`/`, once built) over
/// `report`, marked by one NUL byte (a failure report is JSON, which has none), when the
/// plan asks for it (`ContainerPlan::offer_overlay`). Best effort: without it the next
/// start mounts a new overlay.
fn offer_overlay(c: &ContainerSpec, report: RawFd) {
    if !c.plan.offer_overlay {
        return;
    }
    let Some(clone) = rootfs::clone_root() else {
        return;
    };
    let _ = super::send_marked(report, 0, &clone);
}

/// In the service, forked by the init: out of the init's process group when the init is
/// the daemon's child (which the daemon signals as the unit's: the init forwards each
/// signal, once), and with the signals the init blocked back to their defaults.
fn service_first_steps(pid_init: bool) -> Result<(), SpawnFailure> {
    if pid_init {
        nix::unistd::setsid().map_err(|e| fail("setsid", "service", e.desc()))?;
    }
    title::set(title::HELPER);
    reset_signals();
    Ok(())
}

/// Fork the service under the init, the rootfs complete. Returns (in the init) its pid.
fn fork_service(spec: &SpawnSpec, pid_init: bool) -> Result<Pid, SpawnFailure> {
    // SAFETY: the helper is single-threaded; the child only runs the helper's own code
    // until it execs or exits.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(fail("fork", "service", e.desc())),
        Ok(ForkResult::Parent { child }) => Ok(child),
        Ok(ForkResult::Child) => {
            service_first_steps(pid_init)?;
            Err(failure_of(become_service(spec, false)))
        }
    }
}

/// A service forked before its rootfs was built (by the init, PID 1 of the container's pid
/// namespace: if the init fails and exits, the kernel kills it), waiting to be let go.
struct Early {
    child: Pid,
    go: OwnedFd,
}

impl Early {
    /// The rootfs is complete and `pivot_root` moved the service's root and working
    /// directory into it with the init's: let it go on, telling it which `/` it must now
    /// have (device and inode, which it checks). Returns its pid.
    fn go(self) -> Result<Pid, SpawnFailure> {
        let root = root_id()?;
        // A service that failed meanwhile has closed its end (EPIPE: SIGPIPE is blocked in
        // the init); it reports why itself, and the init reaps it.
        let _ = nix::unistd::write(&self.go, &root);
        Ok(self.child)
    }

    /// The rootfs was entered with `chroot` (pivot_root refused: an initramfs root), which
    /// moved the init's root alone: the waiting service, still on the old root, is killed
    /// and reaped.
    fn cancel(self) {
        let _ = nix::sys::signal::kill(self.child, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.child, None);
    }
}

/// This process's `/`: its device and inode number, little-endian.
fn root_id() -> Result<[u8; 16], SpawnFailure> {
    let st = nix::sys::stat::stat("/").map_err(|e| fail("stat", "/", e.desc()))?;
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&st.st_dev.to_le_bytes());
    id[8..].copy_from_slice(&st.st_ino.to_le_bytes());
    Ok(id)
}

/// Fork the service before the rootfs exists. The child leaves the init's process group,
/// resets its signals and confines itself ([`super::security::confine_early`]: kennel's
/// default seccomp filter and the bounding set, which need nothing of the container's
/// files and let every later step through), then waits for [`Early::go`], checks that its
/// `/` is the container's, and becomes the service. A step that failed before the wait
/// is reported only once the init said go: if the init closes the pipe without a word, it
/// failed and reports why, and the child exits quietly. Its root and working directory
/// are the mount namespace's root, which `pivot_root` moves to the container's.
fn fork_service_early(spec: &SpawnSpec, pid_init: bool) -> Result<Early, SpawnFailure> {
    let (wait, go) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| fail("pipe", "service", e.desc()))?;
    // SAFETY: as in fork_service.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(fail("fork", "service", e.desc())),
        Ok(ForkResult::Parent { child }) => {
            drop(wait);
            Ok(Early { child, go })
        }
        Ok(ForkResult::Child) => {
            drop(go);
            let prepared = service_first_steps(pid_init)
                .and_then(|()| nix::unistd::chdir("/").map_err(|e| fail("chdir", "/", e.desc())))
                .and_then(|()| match &spec.security {
                    Some(sec) => super::security::confine_early(&sec.settings),
                    None => Ok(true),
                });
            let mut root = [0u8; 16];
            let mut got = 0;
            while got < root.len() {
                match nix::unistd::read(wait.as_raw_fd(), &mut root[got..]) {
                    Ok(0) => {
                        // SAFETY: _exit ends this process at once; the init reports.
                        unsafe { libc::_exit(125) }
                    }
                    Ok(n) => got += n,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(fail("wait for the rootfs", "", e.desc())),
                }
            }
            drop(wait);
            let confined = prepared?;
            if root_id()? != root {
                return Err(fail(
                    "enter the rootfs",
                    "/",
                    "the service's root is not the container's",
                ));
            }
            Err(failure_of(become_service(spec, confined)))
        }
    }
}

/// What a path that only returns on failure returned.
fn failure_of(r: Result<Infallible, SpawnFailure>) -> SpawnFailure {
    match r {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

fn close(fd: RawFd) {
    // SAFETY: this process never uses `fd` again (it only waits and exits).
    unsafe {
        libc::close(fd);
    }
}

/// Bring `lo` up in the new network namespace.
pub(crate) fn loopback_up() -> Result<(), SpawnFailure> {
    // SAFETY: socket/ioctl/close on a local fd with a zeroed, correctly sized ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(fail("socket", "lo", std::io::Error::last_os_error()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut rc = libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req);
        if rc == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            rc = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req);
        }
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if rc != 0 {
            return Err(fail("bring up", "lo", err));
        }
    }
    Ok(())
}

/// Enter a running unit's namespaces (`kennel exec`, probes of a container unit): open
/// every `/proc/PID/ns/*` first (joining the mount namespace changes what `/proc` is),
/// `setns()` into each, the mount namespace last (which also moves the root to the
/// container's); with a pid namespace, fork so the command is inside it, this process
/// staying outside to relay signals and pass the exit code on.
pub fn join(
    spec: &SpawnSpec,
    j: &crate::spawn::spec::JoinSpec,
    report: RawFd,
) -> Result<Infallible, SpawnFailure> {
    const ORDER: &[(&str, CloneFlags)] = &[
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("mnt", CloneFlags::CLONE_NEWNS),
        // Last: joining it gives up the host's capabilities the others need.
        ("user", CloneFlags::CLONE_NEWUSER),
    ];
    let mut opened = Vec::new();
    for (name, flag) in ORDER {
        if j.namespaces.iter().any(|n| n == name) {
            let path = format!("/proc/{}/ns/{name}", j.pid);
            let f =
                std::fs::File::open(&path).map_err(|e| fail("open namespace", path.clone(), e))?;
            opened.push((path, *flag, f));
        }
    }
    let joins_user = opened.iter().any(|o| o.1 == CloneFlags::CLONE_NEWUSER);
    if let (true, Some(sec)) = (joins_user, &spec.security) {
        // Limits and OOM score now, with the host's /proc and privileges: inside the user
        // namespace neither is left (see security::resources).
        super::security::resources(&sec.settings)?;
    }
    let mut new_pid = false;
    for (path, flag, f) in &opened {
        nix::sched::setns(f, *flag).map_err(|e| fail("join namespace", path.clone(), e.desc()))?;
        new_pid |= *flag == CloneFlags::CLONE_NEWPID;
        if *flag == CloneFlags::CLONE_NEWUSER {
            userns::become_root()?;
        }
    }
    drop(opened);
    if new_pid {
        fork_into_pid_namespace(report, "exec")?;
        reset_signals();
    }
    // In the unit's mount namespace: on its devpts.
    if let Some(size) = spec.tty {
        super::terminal::attach(size, report)?;
    }
    become_service(spec, false)
}

/// After unshare or setns of a pid namespace: fork, so that the child is in it. This
/// process stays outside as the unit's (or the session's) pid: it relays every signal to
/// the child and exits with its code. Returns, in the child only, the blocked signal set;
/// the child dies with the relay (PDEATHSIG) and leads its own session, so that a signal
/// to the relay's group is forwarded once.
fn fork_into_pid_namespace(report: RawFd, what: &str) -> Result<libc::sigset_t, SpawnFailure> {
    let set = init::block_all_signals();
    // SAFETY: the helper is single-threaded; the child only runs the helper's own code
    // until it execs or exits (no locks are held across fork in this process).
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(fail("fork", what, e.desc())),
        Ok(ForkResult::Parent { child }) => {
            title::set(title::RELAY);
            close(report);
            let status = init::supervise(child.as_raw(), child.as_raw(), &set);
            std::process::exit(status.as_code());
        }
        Ok(ForkResult::Child) => {
            // SAFETY: prctl with integer arguments.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            }
            nix::unistd::setsid().map_err(|e| fail("setsid", what, e.desc()))?;
            if what == INIT_ROLE {
                title::set(title::INIT);
            }
            Ok(set)
        }
    }
}
