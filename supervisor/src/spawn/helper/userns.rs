//! User namespaces (`namespaces = [..., "user"]`): the container's ids mapped to an
//! unprivileged host range, so that its root is nobody on the host.
//!
//! Who owns what (see docs/security.md):
//!
//! - a short-lived *holder* child creates the user namespace `U`; the helper writes its
//!   `uid_map` and `gid_map` from outside (as host root, so any range is allowed and
//!   `setgroups` stays usable inside); the holder then creates the network, UTS and IPC
//!   namespaces, which `U` therefore owns: the container's root can bind low ports, use raw
//!   sockets, set its hostname when given the capabilities, as without a user namespace;
//! - the helper joins those, and creates the mount, pid and cgroup namespaces itself, as
//!   host root: they stay owned by the host's user namespace, so no capability inside `U`
//!   lets the container mount, unmount or reboot, and the helper can still build the rootfs
//!   with host privileges;
//! - the layers, the container's directory (writable layer, init layer) and the bind and
//!   named volumes are mounted *idmapped* with `U`: on disk their ids stay the container's
//!   (a layer owned by 0 is owned by the container's root, whatever the map), so layers are
//!   shared unchanged between containers with and without user namespaces, and
//!   `kennel commit` sees the same ids either way;
//! - the rootfs is built with the file-system ids of the container's root, so that what the
//!   helper creates on the overlay is the container root's;
//! - last, the container's init (or the service) joins `U` and becomes its root.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use kennel_units::IdMap;
use nix::sched::CloneFlags;
use nix::unistd::ForkResult;
use serde::{Deserialize, Serialize};

use crate::spawn::spec::SpawnFailure;
use crate::spawn::sys::Sys;

/// The maps, resolved by the daemon (the unit's, or `/etc/subuid` and `/etc/subgid`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNsSpec {
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
}

impl UserNsSpec {
    /// The host uid and gid of the container's root.
    pub fn root(&self) -> Result<(u32, u32), SpawnFailure> {
        let uid = IdMap::to_host(&self.uid_map, 0);
        let gid = IdMap::to_host(&self.gid_map, 0);
        match (uid, gid) {
            (Some(u), Some(g)) => Ok((u, g)),
            _ => Err(fail(
                "user namespace",
                "",
                "the uid_map and gid_map must map the container's root (id 0)",
            )),
        }
    }
}

fn fail(step: &str, subject: impl Into<String>, error: impl ToString) -> SpawnFailure {
    SpawnFailure {
        step: step.into(),
        subject: subject.into(),
        error: error.to_string(),
        exit_code: 125,
    }
}

/// A user namespace with its maps written, and the namespaces it owns.
pub struct UserNs {
    /// `/proc/HOLDER/ns/user`.
    pub user: OwnedFd,
    /// The container root's host uid and gid.
    pub root: (u32, u32),
    /// The host gid of the container's `tty` group (5), for devpts.
    pub tty_gid: Option<u32>,
}

/// Create `U` with `spec`'s maps, then, owned by it, the namespaces of `owned` (net, uts,
/// ipc); this process joins those. The holder process is gone when this returns.
pub fn create(spec: &UserNsSpec, owned: CloneFlags) -> Result<UserNs, SpawnFailure> {
    let root = spec.root()?;
    let (from_child, child_w) = pipe()?;
    let (child_r, to_child) = pipe()?;
    // SAFETY: the helper is single-threaded; the child only makes system calls on
    // descriptors it owns and leaves with _exit.
    let child = match unsafe { nix::unistd::fork() } {
        Err(e) => return Err(fail("fork", "user namespace holder", e.desc())),
        Ok(ForkResult::Child) => {
            drop(from_child);
            drop(to_child);
            holder(child_w.as_raw_fd(), child_r.as_raw_fd(), owned)
        }
        Ok(ForkResult::Parent { child }) => child,
    };
    drop(child_w);
    drop(child_r);
    let mut holder = Holder {
        pid: child.as_raw(),
        from: File::from(from_child),
        to: Some(File::from(to_child)),
    };
    let result = holder.set_up(spec, owned, root);
    holder.finish();
    result
}

/// The holder's side: unshare the user namespace, wait for the maps, unshare `owned`,
/// report each step's errno (0: done), wait for the parent to close its end.
fn holder(w: RawFd, r: RawFd, owned: CloneFlags) -> ! {
    let report = |e: i32| {
        let b = e.to_ne_bytes();
        // SAFETY: write of a local buffer to a descriptor this process owns.
        unsafe { libc::write(w, b.as_ptr().cast(), b.len()) };
    };
    let wait = || {
        let mut b = [0u8; 1];
        // SAFETY: read into a local buffer.
        unsafe { libc::read(r, b.as_mut_ptr().cast(), 1) == 1 }
    };
    let errno = |rc: nix::Result<()>| rc.err().map_or(0, |e| e as i32);
    let e = errno(nix::sched::unshare(CloneFlags::CLONE_NEWUSER));
    report(e);
    if e != 0 || !wait() {
        // SAFETY: leaving the forked child without running the parent's destructors.
        unsafe { libc::_exit(1) };
    }
    report(if owned.is_empty() {
        0
    } else {
        errno(nix::sched::unshare(owned))
    });
    wait();
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

struct Holder {
    pid: libc::pid_t,
    from: File,
    to: Option<File>,
}

impl Holder {
    fn step(&mut self, what: &str) -> Result<(), SpawnFailure> {
        let mut b = [0u8; 4];
        self.from
            .read_exact(&mut b)
            .map_err(|e| fail(what, "", format!("the holder process ended: {e}")))?;
        match i32::from_ne_bytes(b) {
            0 => Ok(()),
            e => {
                let errno = nix::errno::Errno::from_raw(e);
                Err(fail(what, "", explain(what, errno)))
            }
        }
    }

    fn set_up(
        &mut self,
        spec: &UserNsSpec,
        owned: CloneFlags,
        root: (u32, u32),
    ) -> Result<UserNs, SpawnFailure> {
        self.step("create user namespace")?;
        write_map(self.pid, "uid_map", &spec.uid_map)?;
        write_map(self.pid, "gid_map", &spec.gid_map)?;
        if let Some(to) = self.to.as_mut() {
            to.write_all(b"1")
                .map_err(|e| fail("create user namespace", "", e))?;
        }
        self.step("create namespaces owned by the user namespace")?;
        let open = |name: &str| {
            let path = format!("/proc/{}/ns/{name}", self.pid);
            File::open(&path)
                .map(OwnedFd::from)
                .map_err(|e| fail("open namespace", path, e))
        };
        let user = open("user")?;
        for (flag, name) in [
            (CloneFlags::CLONE_NEWNET, "net"),
            (CloneFlags::CLONE_NEWUTS, "uts"),
            (CloneFlags::CLONE_NEWIPC, "ipc"),
        ] {
            if owned.contains(flag) {
                let fd = open(name)?;
                nix::sched::setns(&fd, flag).map_err(|e| fail("join namespace", name, e.desc()))?;
            }
        }
        Ok(UserNs {
            user,
            root,
            tty_gid: IdMap::to_host(&spec.gid_map, 5),
        })
    }

    /// Let the holder go and reap it.
    fn finish(&mut self) {
        self.to = None;
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
}

fn explain(what: &str, e: nix::errno::Errno) -> String {
    use nix::errno::Errno;
    let hint = match (what, e) {
        ("create user namespace", Errno::ENOSPC) => {
            " (the limit of user namespaces is reached: see /proc/sys/user/max_user_namespaces)"
        }
        ("create user namespace", Errno::EINVAL | Errno::ENOSYS) => {
            " (this kernel has no user namespaces: CONFIG_USER_NS)"
        }
        ("create user namespace", Errno::EPERM) => {
            " (user namespaces are disabled here, e.g. kernel.unprivileged_userns_clone or a security module)"
        }
        _ => "",
    };
    format!("{e}: {}{hint}", e.desc())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnFailure> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| fail("pipe", "", e.desc()))
}

fn write_map(pid: libc::pid_t, file: &str, map: &[IdMap]) -> Result<(), SpawnFailure> {
    let path = format!("/proc/{pid}/{file}");
    let text: String = map.iter().map(IdMap::line).collect();
    // One write: the kernel takes a map whole, once.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| fail("write", path, format!("{e} (map {:?})", text.trim_end())))
}

/// Mount the directory `path` over itself, idmapped with `user` (the ids on disk read as
/// the container's), recursively with its submounts when `recursive`, read-only when
/// `read_only`.
pub fn idmap_over(
    sys: &dyn Sys,
    path: &Path,
    user: &OwnedFd,
    recursive: bool,
    read_only: bool,
) -> Result<(), SpawnFailure> {
    idmap_onto(sys, path, path, user, recursive, read_only)
}

/// Mount `source` idmapped with `user` on `target` (see [`idmap_over`]).
pub fn idmap_onto(
    sys: &dyn Sys,
    source: &Path,
    target: &Path,
    user: &OwnedFd,
    recursive: bool,
    read_only: bool,
) -> Result<(), SpawnFailure> {
    let shown = source.display().to_string();
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| fail("idmap", p.display().to_string(), "path contains NUL"))
    };
    let (src, dst) = (c(source)?, c(target)?);
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 };
    let tree = sys
        .open_tree(
            libc::AT_FDCWD,
            &src,
            libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | rec as libc::c_uint,
        )
        .map_err(|e| {
            fail(
                "clone mount (open_tree) of",
                shown.clone(),
                errno_error(e, ""),
            )
        })?;
    let mut attr_set = libc::MOUNT_ATTR_IDMAP;
    if read_only {
        attr_set |= libc::MOUNT_ATTR_RDONLY;
    }
    let attr = libc::mount_attr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: user.as_raw_fd() as u64,
    };
    let empty = c"";
    if let Err(e) = sys.mount_setattr(tree.as_raw_fd(), empty, libc::AT_EMPTY_PATH | rec, &attr) {
        return Err(fail(
            "idmapped mount of",
            shown,
            describe(
                std::io::Error::from(e),
                " (the file system there does not support idmapped mounts on this kernel: ext4, xfs and btrfs do since Linux 5.12, tmpfs since 6.3; or remove \"user\" from container.namespaces)",
            ),
        ));
    }
    sys.move_mount(
        tree.as_raw_fd(),
        empty,
        libc::AT_FDCWD,
        &dst,
        libc::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| {
        fail(
            "attach idmapped mount on",
            target.display().to_string(),
            errno_error(e, ""),
        )
    })
}

/// [`describe`] for what a system call returned.
fn errno_error(e: nix::errno::Errno, hint: &str) -> String {
    describe(std::io::Error::from(e), hint)
}

/// `e`, with `hint` on EINVAL and what ENOSYS means for an idmapped mount.
fn describe(e: std::io::Error, hint: &str) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            " (this kernel has no idmapped mounts: Linux 5.12 or later is needed for user namespaces in kennel)"
        }
        Some(libc::EINVAL) => hint,
        _ => "",
    };
    format!("{e}{hint}")
}

/// Build the rootfs as the container's root would own it: the file-system ids of the
/// container root's host ids (what the helper creates on the idmapped overlay is then the
/// container root's, and the overlay's own copy-up runs as it), keeping every capability
/// effective (changing the fsuid drops the file ones) and the parent-death signal (which
/// any change of ids clears: the container's init must still die with its relay).
pub fn act_as_root_of(sys: &dyn Sys, ns: &UserNs) -> Result<(), SpawnFailure> {
    sys.set_fs_ids(ns.root.0, ns.root.1);
    let permitted = sys
        .read_caps(caps::CapSet::Permitted)
        .map_err(|e| fail("read capabilities", "", e))?;
    sys.set_caps(caps::CapSet::Effective, &permitted)
        .map_err(|e| fail("raise capabilities", "", e))
}

/// Join `U` and become its root (uid and gid 0 inside, no supplementary groups): the last
/// step before the security settings and exec, for the container's init and service, and
/// for what `kennel exec` runs. Re-arms `pdeathsig` (a change of ids clears it).
pub fn enter(user: &OwnedFd, pdeathsig: bool) -> Result<(), SpawnFailure> {
    nix::sched::setns(user, CloneFlags::CLONE_NEWUSER)
        .map_err(|e| fail("join user namespace", "", e.desc()))?;
    become_root()?;
    if pdeathsig {
        // SAFETY: prctl with integer arguments.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        }
    }
    Ok(())
}

/// uid and gid 0 of the current user namespace, no supplementary groups.
pub fn become_root() -> Result<(), SpawnFailure> {
    nix::unistd::setgroups(&[]).map_err(|e| fail("setgroups", "", e.desc()))?;
    let g = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(g, g, g).map_err(|e| fail("setgid", "0", e.desc()))?;
    let u = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(u, u, u).map_err(|e| fail("setuid", "0", e.desc()))
}

/// A line of `/etc/subuid` or `/etc/subgid` for the name looked up that kennel cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubidError {
    #[error("line {line}: expected {name}:START:COUNT, found {text:?}")]
    Syntax {
        line: usize,
        name: String,
        text: String,
    },
    #[error(
        "line {line}: the range starts at host id 0 (root); use an unprivileged range such as {name}:100000:65536"
    )]
    Root { line: usize, name: String },
}

/// The ranges of `name` in an `/etc/subuid` or `/etc/subgid` text (`NAME:START:COUNT`
/// lines), mapped in order from container id 0. Empty when `name` has none.
pub fn subid_ranges(text: &str, name: &str) -> Result<Vec<IdMap>, SubidError> {
    let mut maps = Vec::new();
    let mut next: u64 = 0;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.first() != Some(&name) {
            continue;
        }
        let bad = || SubidError::Syntax {
            line: i + 1,
            name: name.to_string(),
            text: line.to_string(),
        };
        let [_, start, count] = f.as_slice() else {
            return Err(bad());
        };
        let (start, count): (u32, u32) = match (start.parse(), count.parse()) {
            (Ok(s), Ok(c)) if c > 0 => (s, c),
            _ => return Err(bad()),
        };
        if start == 0 {
            return Err(SubidError::Root {
                line: i + 1,
                name: name.to_string(),
            });
        }
        let container = u32::try_from(next).map_err(|_| bad())?;
        if u64::from(start) + u64::from(count) > 1 << 32 || next + u64::from(count) > 1 << 32 {
            return Err(bad());
        }
        maps.push(IdMap {
            container,
            host: start,
            size: count,
        });
        next += u64::from(count);
    }
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spawn::sys::recorder::Recorder;
    use nix::errno::Errno;

    /// A descriptor standing for the user namespace's.
    fn userns_fd(rec: &Recorder) -> OwnedFd {
        let fd = OwnedFd::from(File::open("/dev/null").unwrap_or_else(|e| panic!("{e}")));
        rec.name_fd(&fd, "userns");
        fd
    }

    #[test]
    fn an_idmapped_mount_is_a_clone_mapped_then_attached() {
        let rec = Recorder::new();
        let user = userns_fd(&rec);
        let (src, dst) = (Path::new("/srv/data"), Path::new("/c/rootfs/data"));
        assert_eq!(idmap_onto(&rec, src, dst, &user, false, false), Ok(()));
        assert_eq!(idmap_over(&rec, src, &user, true, true), Ok(()));
        rec.assert_calls(&[
            "open_tree /srv/data CLONE|CLOEXEC",
            "mount_setattr [tree:/srv/data] EMPTY_PATH set=IDMAP userns=[userns]",
            "move_mount [tree:/srv/data] -> /c/rootfs/data F_EMPTY_PATH",
            // Over itself, with its submounts, read-only.
            "open_tree /srv/data CLONE|CLOEXEC|RECURSIVE",
            "mount_setattr [tree:/srv/data] EMPTY_PATH|RECURSIVE set=RDONLY|IDMAP userns=[userns]",
            "move_mount [tree:/srv/data] -> /srv/data F_EMPTY_PATH",
        ]);
    }

    #[test]
    fn each_step_of_an_idmapped_mount_says_what_failed() {
        let (src, dst) = (Path::new("/srv/data"), Path::new("/c/rootfs/data"));
        let cases = [
            (
                "open_tree",
                Errno::ENOSYS,
                "clone mount (open_tree) of /srv/data: Function not implemented (os error 38) (this kernel has no idmapped mounts: Linux 5.12 or later is needed for user namespaces in kennel)",
                1,
            ),
            (
                "open_tree",
                Errno::EINVAL,
                "clone mount (open_tree) of /srv/data: Invalid argument (os error 22)",
                1,
            ),
            (
                "mount_setattr",
                Errno::EINVAL,
                "idmapped mount of /srv/data: Invalid argument (os error 22) (the file system there does not support idmapped mounts on this kernel: ext4, xfs and btrfs do since Linux 5.12, tmpfs since 6.3; or remove \"user\" from container.namespaces)",
                2,
            ),
            (
                "mount_setattr",
                Errno::EPERM,
                "idmapped mount of /srv/data: Operation not permitted (os error 1)",
                2,
            ),
            (
                "move_mount",
                Errno::ENOENT,
                "attach idmapped mount on /c/rootfs/data: No such file or directory (os error 2)",
                3,
            ),
        ];
        for (call, e, message, made) in cases {
            let rec = Recorder::new().fail_on(call, e);
            let user = userns_fd(&rec);
            let err = idmap_onto(&rec, src, dst, &user, false, false).unwrap_err();
            assert_eq!(err.to_string(), message, "{call} {e}");
            assert_eq!(rec.transcript().len(), made, "{call} {e}");
        }
    }

    #[test]
    fn acting_as_the_containers_root_keeps_the_permitted_capabilities_effective() {
        let permitted: caps::CapsHashSet =
            [caps::Capability::CAP_SYS_ADMIN, caps::Capability::CAP_MKNOD].into();
        let rec = Recorder::new().permitted(permitted);
        let ns = UserNs {
            user: userns_fd(&rec),
            root: (100000, 200000),
            tty_gid: None,
        };
        assert_eq!(act_as_root_of(&rec, &ns), Ok(()));
        rec.assert_calls(&[
            "set_fs_ids 100000 200000",
            "set_caps Effective CAP_MKNOD,CAP_SYS_ADMIN",
        ]);
    }

    #[test]
    fn subid_ranges_follow_each_other_from_zero() {
        let text = "root:1:2\n# comment\nkennel:100000:65536\nother:5:5\nkennel:300000:10\n";
        assert_eq!(
            subid_ranges(text, "kennel").unwrap(),
            [
                IdMap {
                    container: 0,
                    host: 100000,
                    size: 65536
                },
                IdMap {
                    container: 65536,
                    host: 300000,
                    size: 10
                }
            ]
        );
        assert_eq!(subid_ranges(text, "nobody").unwrap(), []);
        assert!(subid_ranges("kennel:0:10\n", "kennel")
            .unwrap_err()
            .to_string()
            .contains("host id 0"));
        assert_eq!(
            subid_ranges("kennel:x:10\n", "kennel")
                .unwrap_err()
                .to_string(),
            "line 1: expected kennel:START:COUNT, found \"kennel:x:10\""
        );
        assert!(subid_ranges("kennel:1:0\n", "kennel").is_err());
        assert!(subid_ranges("kennel:4294967295:2\n", "kennel").is_err());
    }

    #[test]
    fn the_root_of_a_map() {
        let spec = UserNsSpec {
            uid_map: vec![IdMap {
                container: 0,
                host: 100000,
                size: 10,
            }],
            gid_map: vec![IdMap {
                container: 0,
                host: 200000,
                size: 10,
            }],
        };
        assert_eq!(spec.root().unwrap(), (100000, 200000));
        assert!(UserNsSpec::default().root().is_err());
    }
}
