//! Building a container's root filesystem inside its new mount namespace: the overlay of
//! the read-only layers + the init layer + the writable layer, then `/proc`, `/sys`,
//! `/dev`, the volumes, `pivot_root`, and the masked and read-only paths.
//!
//! Every mount happens in the container's own mount namespace, so nothing is left mounted
//! on the host when the container ends, whatever happened.
//!
//! Every system call goes through a [`Sys`] ([`build`] passes the real one, [`LinuxSys`]);
//! the tests below pass a recorder and assert the exact calls of a start, in order.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{makedev, Mode, SFlag};

use kennel_cgroups::Hierarchy;
use kennel_core::start::CgroupFs;

use super::layers::Dirs;
use super::userns::{self, UserNs};
use crate::spawn::spec::{ContainerSpec, MountSpec, SpawnFailure};
use crate::spawn::sys::{Kind, LinuxSys, Sys};

/// A failed step of building the rootfs (also of preparing its directories, layers.rs).
pub(crate) fn fail(step: &str, subject: &Path, error: impl ToString) -> SpawnFailure {
    SpawnFailure {
        step: step.into(),
        subject: subject.display().to_string(),
        error: error.to_string(),
        exit_code: 125,
    }
}

pub(super) fn errno(e: Errno) -> String {
    format!("{e}: {}", e.desc())
}

/// In the new mount namespace: build the rootfs and switch to it. Afterwards `/` is the
/// container's root and the host's filesystem is no longer reachable. With a user
/// namespace, the layers and the container's directory are first mounted idmapped over
/// themselves (in this mount namespace only), and the rest is built with the container
/// root's file-system ids (see [`super::userns`]).
///
/// `overlay`: the overlay a previous run handed back, to mount instead of a new one
/// (layers.rs decided the layers allow it). Returns whether the rootfs was entered with
/// `pivot_root`, which moves the root of every process of this mount namespace: false
/// after the `chroot` fallback (an initramfs root), which moves this process's alone.
pub fn build(
    c: &ContainerSpec,
    d: &Dirs,
    user: Option<&UserNs>,
    overlay: Option<OwnedFd>,
) -> Result<bool, SpawnFailure> {
    build_with(&LinuxSys, c, d, user, overlay)
}

/// [`build`], making its system calls through `sys`.
pub fn build_with(
    sys: &dyn Sys,
    c: &ContainerSpec,
    d: &Dirs,
    user: Option<&UserNs>,
    overlay: Option<OwnedFd>,
) -> Result<bool, SpawnFailure> {
    let root = Path::new("/");
    sys.mount(
        None,
        root,
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
    .map_err(|e| fail("make mounts private", root, errno(e)))?;
    if let Some(b) = &c.bundle {
        return super::bundle::build(sys, c, b);
    }
    if let Some(u) = user {
        let mut done: Vec<&Path> = Vec::new();
        for dir in c
            .layers
            .iter()
            .map(PathBuf::as_path)
            .chain([c.dir.as_path()])
        {
            if !done.contains(&dir) {
                userns::idmap_over(sys, dir, &u.user, false, false)?;
                done.push(dir);
            }
        }
        userns::act_as_root_of(sys, u)?;
    }
    let owner = user.map(|u| Owner {
        uid: u.root.0,
        gid: u.root.1,
        tty_gid: u.tty_gid,
    });

    match overlay {
        Some(held) => attach(sys, held, &d.rootfs)?,
        None => mount_overlay(sys, c, d, user.is_some())?,
    }

    let r = &d.rootfs;
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs(sys, r, "/proc", "proc", nosuid, None)?;
    if let Err(e) = mount_fs(sys, r, "/sys", "sysfs", nosuid | MsFlags::MS_RDONLY, None) {
        // Without a network namespace of its own, sysfs cannot be mounted afresh: bind the
        // host's, read-only.
        let target = inside(sys, r, Path::new("/sys"), true)?;
        sys.mount(
            Some(Path::new("/sys")),
            &target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .map_err(|_| e)?;
        remount_ro(sys, &target)?;
    }
    mount_cgroup_fs(sys, r, c)?;
    build_dev(sys, r, owner.as_ref())?;
    for d in &c.devices {
        let p = inside(sys, r, &d.path, true)?;
        let _ = sys.remove_dir(&p);
        let kind = if d.kind == 'b' {
            SFlag::S_IFBLK
        } else {
            SFlag::S_IFCHR
        };
        sys.mknod(
            &p,
            kind,
            Mode::from_bits_truncate(d.mode),
            makedev(d.major.into(), d.minor.into()),
        )
        .map_err(|e| fail("mknod", &d.path, errno(e)))?;
    }
    for v in &c.volumes {
        mount_volume(sys, r, v, user, owner.as_ref())?;
    }
    let pivoted = pivot(sys, r)?;
    mask_paths(sys)?;
    Ok(pivoted)
}

/// Where a container sees its cgroup file system.
const CGROUP_FS: &str = "/sys/fs/cgroup";

/// `/sys/fs/cgroup` of a container whose cgroup subtree is delegated to it (the plan's
/// [`CgroupFs`]), mounted writable in its cgroup namespace (created at the unit's
/// `payload`, which each mount then has as its root): cgroup2 on v2; on v1 and hybrid
/// hosts a tmpfs, read-only once filled, with each of the unit's v1 hierarchies at the
/// name of its controllers (`name=systemd` at `systemd`; each of co-mounted controllers
/// also a symlink, `cpu -> cpu,cpuacct`) and the unified tree at `unified`.
fn mount_cgroup_fs(sys: &dyn Sys, r: &Path, c: &ContainerSpec) -> Result<(), SpawnFailure> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_cgroup_at(sys, r, c, Path::new(CGROUP_FS), flags, true)
}

/// The cgroup file system of the plan at `at` inside the rootfs `r`, mounted with
/// `flags`: cgroup2, or a tmpfs holding each hierarchy, the tmpfs read-only once filled
/// when `seal` or `flags` say so (a unit's: its hierarchies stay writable).
pub(super) fn mount_cgroup_at(
    sys: &dyn Sys,
    r: &Path,
    c: &ContainerSpec,
    at: &Path,
    flags: MsFlags,
    seal: bool,
) -> Result<(), SpawnFailure> {
    let ro = seal || flags.contains(MsFlags::MS_RDONLY);
    let at_str = at.display().to_string();
    let cgroup_fs = at_str.as_str();
    match c.plan.cgroup_fs {
        CgroupFs::None => Ok(()),
        CgroupFs::Unified => {
            mount_fs(sys, r, cgroup_fs, "cgroup2", flags, None)?;
            bind_own_cgroup(sys, r, cgroup_fs, &[])
        }
        CgroupFs::Hierarchies => {
            let tmpfs_flags = flags - MsFlags::MS_RDONLY;
            mount_fs(sys, r, cgroup_fs, "tmpfs", tmpfs_flags, Some("mode=755"))?;
            for h in &c.cgroup_hierarchies {
                let (name, fstype, data) = match h {
                    Hierarchy::Unified => ("unified".to_string(), "cgroup2", None),
                    Hierarchy::V1 { controllers } => {
                        let names: Vec<&str> = controllers
                            .iter()
                            .map(|c| c.strip_prefix("name=").unwrap_or(c))
                            .collect();
                        (names.join(","), "cgroup", Some(controllers.join(",")))
                    }
                };
                let at = format!("{cgroup_fs}/{name}");
                mount_fs(sys, r, &at, fstype, flags, data.as_deref())?;
                let controllers = match h {
                    Hierarchy::Unified => &[][..],
                    Hierarchy::V1 { controllers } => controllers.as_slice(),
                };
                bind_own_cgroup(sys, r, &at, controllers)?;
                if let Hierarchy::V1 { controllers } = h {
                    for one in controllers
                        .iter()
                        .filter(|c| controllers.len() > 1 && !c.starts_with("name="))
                    {
                        let link = inside(sys, r, Path::new(cgroup_fs), true)?.join(one);
                        sys.symlink(Path::new(&name), &link)
                            .map_err(|e| fail("symlink", &link, e))?;
                    }
                }
            }
            if !ro {
                return Ok(());
            }
            let target = inside(sys, r, Path::new(cgroup_fs), true)?;
            sys.mount(
                None,
                &target,
                None,
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | tmpfs_flags,
                None,
            )
            .map_err(|e| fail("remount read-only", &target, errno(e)))
        }
    }
}

/// Without a cgroup namespace of its own (an OCI bundle's, as podman's on v1), a cgroup
/// file system mounted at `at` shows the hierarchy from its root: the process's own cgroup
/// (from `/proc/self/cgroup`, for the hierarchy of `controllers`, none for cgroup2) is
/// bound over it, so that the container sees its cgroup as the root, as with runc. In a
/// cgroup namespace the path is `/`: nothing to do.
fn bind_own_cgroup(
    sys: &dyn Sys,
    r: &Path,
    at: &str,
    controllers: &[String],
) -> Result<(), SpawnFailure> {
    let Ok(table) = sys.read_to_string(Path::new("/proc/self/cgroup")) else {
        return Ok(());
    };
    let Some(own) = own_cgroup(&table, controllers) else {
        return Ok(());
    };
    let target = inside(sys, r, Path::new(at), true)?;
    let source = target.join(own);
    sys.mount(Some(&source), &target, None, MsFlags::MS_BIND, None)
        .map_err(|e| fail("bind the container's own cgroup on", &target, errno(e)))
}

/// The path (relative, never `/` or above the root) of the cgroup of the hierarchy with
/// `controllers` (none: cgroup2) in a `/proc/PID/cgroup` table.
fn own_cgroup<'a>(table: &'a str, controllers: &[String]) -> Option<&'a str> {
    let mut want: Vec<&str> = controllers.iter().map(String::as_str).collect();
    want.sort_unstable();
    table.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
        let mut have: Vec<&str> = list.split(',').filter(|c| !c.is_empty()).collect();
        have.sort_unstable();
        let rel = path.strip_prefix('/')?;
        (have == want && !rel.is_empty() && !rel.split('/').any(|c| c == "..")).then_some(rel)
    })
}

/// The overlay's options (without `volatile`), its mount flags, and whether it is mounted
/// `volatile`.
fn overlay_options(c: &ContainerSpec, d: &Dirs) -> (String, MsFlags, bool) {
    // lowerdir lists the top layer first; the init layer sits right under the writable
    // layer, so its files win over the image's but never land in `upper`.
    let mut lowers = vec![d.init.display().to_string()];
    lowers.extend(c.layers.iter().rev().map(|l| l.display().to_string()));
    let mut opts = format!("lowerdir={}", lowers.join(":"));
    let mut flags = MsFlags::empty();
    if c.read_only {
        flags |= MsFlags::MS_RDONLY;
    } else {
        opts.push_str(&format!(
            ",upperdir={},workdir={}",
            d.upper.display(),
            d.work.display()
        ));
    }
    // A writable layer thrown away at the next start needs no syncing: `volatile` spares
    // the sync of the upper filesystem when the container's mount namespace goes away.
    let volatile = !c.read_only && !c.persist;
    (opts, flags, volatile)
}

/// What the overlay [`build`] mounts for `c` is made of: its options, and each layer's
/// real path, device and inode (a name re-pointed to another layer, or a layer deleted and
/// made again, changes it). An overlay a run handed back is reused only by a start with the
/// same key.
pub fn overlay_key(c: &ContainerSpec) -> String {
    use std::os::unix::fs::MetadataExt;
    let (opts, flags, volatile) = overlay_options(c, &Dirs::new(&c.dir));
    let mut key = format!(
        "{opts};ro={};volatile={volatile}",
        flags.contains(MsFlags::MS_RDONLY)
    );
    for l in &c.layers {
        match (fs::canonicalize(l), fs::metadata(l)) {
            (Ok(p), Ok(m)) => key.push_str(&format!(";{}={}:{}", p.display(), m.dev(), m.ino())),
            _ => key.push_str(";?"),
        }
    }
    key
}

fn mount_overlay(
    sys: &dyn Sys,
    c: &ContainerSpec,
    d: &Dirs,
    idmapped: bool,
) -> Result<(), SpawnFailure> {
    let (opts, flags, volatile) = overlay_options(c, d);
    // Kernels before 5.10 refuse `volatile`: then mount without it.
    let with_volatile = format!("{opts},volatile");
    let first = if volatile {
        with_volatile.as_str()
    } else {
        opts.as_str()
    };
    let overlay = Path::new("overlay");
    sys.mount(
        Some(overlay),
        &d.rootfs,
        Some("overlay"),
        flags,
        Some(first),
    )
    .or_else(|e| {
        if volatile && e == Errno::EINVAL {
            sys.mount(
                Some(overlay),
                &d.rootfs,
                Some("overlay"),
                flags,
                Some(opts.as_str()),
            )
        } else {
            Err(e)
        }
    })
    .map_err(|e| {
        let hint = if idmapped && e == Errno::EINVAL {
            "; overlayfs takes idmapped layers since Linux 5.19: on older kernels remove \"user\" from container.namespaces"
        } else {
            ""
        };
        fail(
            "mount overlay on",
            &d.rootfs,
            format!("{} ({opts}){hint}", errno(e)),
        )
    })
}

/// Mounts `held` (a detached overlay mount a previous run handed back: [`clone_root`]) on
/// `target`: the same overlay instance, its layers as that run left them (empty, as
/// layers.rs checked). Linux 5.2.
fn attach(sys: &dyn Sys, held: OwnedFd, target: &Path) -> Result<(), SpawnFailure> {
    let path = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| fail("mount the kept overlay on", target, "path contains NUL"))?;
    sys.move_mount(
        held.as_raw_fd(),
        c"",
        libc::AT_FDCWD,
        &path,
        libc::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| fail("mount the kept overlay on", target, errno(e)))
}

/// A detached copy of this mount namespace's root mount (the container's overlay, once
/// [`build`] switched to it), to hand to the daemon for the next start: `open_tree(2)`
/// with `OPEN_TREE_CLONE`, without the mounts under it. None where unsupported (before
/// Linux 5.2) or refused.
pub fn clone_root() -> Option<OwnedFd> {
    LinuxSys
        .open_tree(
            libc::AT_FDCWD,
            c"/",
            libc::OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
        .ok()
}

/// `rootfs + path`, refusing to walk through a symlink (which could point out of the
/// rootfs), creating missing directories (the last one as a file when `dir` is false).
pub(super) fn inside(
    sys: &dyn Sys,
    rootfs: &Path,
    path: &Path,
    dir: bool,
) -> Result<PathBuf, SpawnFailure> {
    let mut cur = rootfs.to_path_buf();
    let comps: Vec<_> = path
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    for (i, comp) in comps.iter().enumerate() {
        cur.push(comp);
        let last = i + 1 == comps.len();
        match sys.lstat(&cur).map(|st| st.kind) {
            Ok(Kind::Symlink) => {
                return Err(fail(
                    "mount target",
                    path,
                    format!("{} is a symlink in the rootfs", cur.display()),
                ));
            }
            Ok(_) => {}
            Err(_) if last && !dir => {
                sys.write(&cur, b"")
                    .map_err(|e| fail("create mount target", path, e))?;
            }
            Err(_) => sys
                .mkdir(&cur)
                .map_err(|e| fail("create mount target", path, e))?,
        }
    }
    Ok(cur)
}

fn mount_fs(
    sys: &dyn Sys,
    r: &Path,
    at: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), SpawnFailure> {
    let target = inside(sys, r, Path::new(at), true)?;
    sys.mount(Some(Path::new(fstype)), &target, Some(fstype), flags, data)
        .map_err(|e| fail(&format!("mount {fstype} on"), &target, errno(e)))
}

/// Make the (recursive) bind mount at `target` read-only: `target` itself and every mount
/// under it, since a read-only remount applies to one mount only and would leave the
/// submounts of a bound tree writable. Each mount keeps its own nosuid, nodev, noexec and
/// atime flags.
pub(super) fn remount_ro(sys: &dyn Sys, target: &Path) -> Result<(), SpawnFailure> {
    let path = CString::new(target.as_os_str().as_bytes())
        .map_err(|_| fail("remount read-only", target, "path contains NUL"))?;
    // One call for the whole tree, setting the read-only flag alone (Linux 5.12). Before,
    // ENOSYS; EINVAL for a flag or a call the kernel does not know: one remount per mount.
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    match sys.mount_setattr(libc::AT_FDCWD, &path, libc::AT_RECURSIVE, &attr) {
        Ok(()) => Ok(()),
        Err(Errno::ENOSYS | Errno::EINVAL) => remount_ro_each(sys, target),
        Err(e) => Err(fail("remount read-only", target, errno(e))),
    }
}

/// [`remount_ro`] on kernels without mount_setattr: the mounts under `target` from
/// /proc/self/mountinfo, each remounted read-only with the flags it has (a bind remount
/// replaces them all).
fn remount_ro_each(sys: &dyn Sys, target: &Path) -> Result<(), SpawnFailure> {
    let mut points = vec![target.to_path_buf()];
    let real = sys
        .canonicalize(target)
        .unwrap_or_else(|_| target.to_path_buf());
    let mountinfo = sys
        .read_to_string(Path::new("/proc/self/mountinfo"))
        .map_err(|e| fail("read mounts under", target, e))?;
    for line in mountinfo.lines() {
        let Some(point) = line.split(' ').nth(4).map(crate::octal::unescape) else {
            continue;
        };
        let p = PathBuf::from(point);
        if p != real && p.starts_with(&real) && !points.contains(&p) {
            points.push(p);
        }
    }
    for p in &points {
        let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        if let Ok(st) = sys.statvfs(p) {
            use nix::sys::statvfs::FsFlags;
            // Linux's ST_RELATIME (statvfs(3)); nix names it only for glibc.
            const ST_RELATIME: FsFlags = FsFlags::from_bits_retain(0x1000);
            for (has, keep) in [
                (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
                (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
                (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
                (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
                (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
                (ST_RELATIME, MsFlags::MS_RELATIME),
            ] {
                if st.contains(has) {
                    flags |= keep;
                }
            }
        }
        sys.mount(None, p.as_path(), None, flags, None)
            .map_err(|e| fail("remount read-only", p, errno(e)))?;
    }
    Ok(())
}

/// With a user namespace: the host ids of the container's root and `tty` group, which own
/// the file systems mounted afresh (`/dev`, tmpfs volumes) and the terminals.
struct Owner {
    uid: u32,
    gid: u32,
    tty_gid: Option<u32>,
}

impl Owner {
    /// `,uid=U,gid=G` for a tmpfs mount; empty without a user namespace.
    fn tmpfs(o: Option<&Owner>) -> String {
        o.map(|o| format!(",uid={},gid={}", o.uid, o.gid))
            .unwrap_or_default()
    }
}

/// `/dev` as a tmpfs with the standard nodes, devpts, shm and the fd links.
fn build_dev(sys: &dyn Sys, r: &Path, owner: Option<&Owner>) -> Result<(), SpawnFailure> {
    let ids = Owner::tmpfs(owner);
    mount_fs(
        sys,
        r,
        "/dev",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some(&format!("mode=755,size=65536k{ids}")),
    )?;
    let dev = r.join("dev");
    for (name, major, minor) in STANDARD_DEVICES {
        let p = dev.join(name);
        sys.mknod(
            &p,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(|e| fail("mknod", &p, errno(e)))?;
        // The umask may have trimmed the mode.
        let _ = sys.chmod(&p, 0o666);
    }
    // Terminals belong to the container's tty group (5), or no group when the map leaves
    // it out.
    let tty = match owner {
        None => ",gid=5".to_string(),
        Some(o) => o.tty_gid.map(|g| format!(",gid={g}")).unwrap_or_default(),
    };
    mount_fs(
        sys,
        r,
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some(&format!("newinstance,ptmxmode=0666,mode=0620{tty}")),
    )?;
    mount_fs(
        sys,
        r,
        "/dev/shm",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(&format!("mode=1777,size=65536k{ids}")),
    )?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let p = dev.join(link);
        sys.symlink(Path::new(to), &p)
            .map_err(|e| fail("symlink", &p, e))?;
    }
    Ok(())
}

fn mount_volume(
    sys: &dyn Sys,
    r: &Path,
    v: &MountSpec,
    user: Option<&UserNs>,
    owner: Option<&Owner>,
) -> Result<(), SpawnFailure> {
    match v {
        MountSpec::Bind {
            source,
            target,
            read_only,
            idmap,
        } => {
            let kind = sys
                .stat(source)
                .map_err(|e| fail("bind volume source", source, e))?;
            let dst = inside(sys, r, target, kind == Kind::Dir)?;
            if let (true, Some(u)) = (*idmap, user) {
                return userns::idmap_onto(sys, source, &dst, &u.user, true, *read_only).map_err(
                    |mut e| {
                        e.error.push_str(&format!(
                            " (for the volume on {}: or set idmap = false on it)",
                            target.display()
                        ));
                        e
                    },
                );
            }
            sys.mount(
                Some(source.as_path()),
                &dst,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(|e| {
                fail(
                    "bind mount",
                    source,
                    format!("on {}: {}", target.display(), errno(e)),
                )
            })?;
            if *read_only {
                remount_ro(sys, &dst)?;
            }
        }
        MountSpec::Tmpfs { target, size } => {
            let dst = inside(sys, r, target, true)?;
            let ids = Owner::tmpfs(owner);
            let data = match size {
                Some(s) => format!("mode=1777,size={s}{ids}"),
                None => format!("mode=1777{ids}"),
            };
            sys.mount(
                Some(Path::new("tmpfs")),
                &dst,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(data.as_str()),
            )
            .map_err(|e| fail("mount tmpfs on", target, errno(e)))?;
        }
    }
    Ok(())
}

/// Make `r` the root: `pivot_root(".", ".")` and detach the old root; where pivot_root is
/// refused (an initramfs root has no parent mount), move the mount and chroot instead.
pub(super) fn pivot(sys: &dyn Sys, r: &Path) -> Result<bool, SpawnFailure> {
    let (dot, root) = (Path::new("."), Path::new("/"));
    sys.chdir(r).map_err(|e| fail("chdir", r, errno(e)))?;
    let pivoted = match sys.pivot_root(dot, dot) {
        Ok(()) => {
            sys.umount2(dot, MntFlags::MNT_DETACH)
                .map_err(|e| fail("detach old root", r, errno(e)))?;
            true
        }
        Err(Errno::EINVAL) => {
            sys.mount(Some(dot), root, None, MsFlags::MS_MOVE, None)
                .map_err(|e| fail("move rootfs to /", r, errno(e)))?;
            sys.chroot(dot).map_err(|e| fail("chroot", r, errno(e)))?;
            false
        }
        Err(e) => return Err(fail("pivot_root", r, errno(e))),
    };
    sys.chdir(root).map_err(|e| fail("chdir", root, errno(e)))?;
    Ok(pivoted)
}

/// What runc masks (hidden behind /dev/null or an empty read-only tmpfs) and makes
/// read-only by default. Paths the kernel does not have are skipped.
const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READ_ONLY: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The character devices every container's `/dev` has: name, major, minor.
pub(super) const STANDARD_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn mask_paths(sys: &dyn Sys) -> Result<(), SpawnFailure> {
    for p in MASKED {
        mask(sys, Path::new(p))?;
    }
    for p in READ_ONLY {
        let path = Path::new(p);
        if sys.lstat(path).is_err() {
            continue;
        }
        sys.mount(
            Some(path),
            path,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .map_err(|e| fail("bind for read-only", path, errno(e)))?;
        remount_ro(sys, path)?;
    }
    Ok(())
}

/// Masks `path`: a directory behind an empty read-only tmpfs, anything else behind
/// /dev/null; a path that does not exist is skipped. Also used for an OCI bundle's
/// `maskedPaths` (bundle.rs).
pub(super) fn mask(sys: &dyn Sys, path: &Path) -> Result<(), SpawnFailure> {
    let Ok(kind) = sys.lstat(path).map(|st| st.kind) else {
        return Ok(());
    };
    let res = if kind == Kind::Dir {
        sys.mount(
            Some(Path::new("tmpfs")),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0"),
        )
    } else {
        sys.mount(
            Some(Path::new("/dev/null")),
            path,
            None,
            MsFlags::MS_BIND,
            None,
        )
    };
    res.map_err(|e| fail("mask", path, errno(e)))
}

#[cfg(test)]
mod tests;
