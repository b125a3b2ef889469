//! The rootfs of an OCI bundle (`ContainerSpec::bundle`, `kennel oci`): unlike a unit's
//! (rootfs.rs: layers, an overlay, kennel's standard mounts), the bundle's directory is
//! the root as it is, and only the mounts config.json lists are made, in its order. As
//! runc: the standard device nodes and symlinks in `/dev` (kept where a bind mount
//! brought them), the bundle's devices, `pivot_root`, masked and read-only paths, then
//! the root read-only if asked.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::stat::{makedev, Mode, SFlag};

use super::rootfs::{errno, fail, inside, mount_cgroup_at, pivot, remount_ro};
use crate::spawn::spec::{BundleRootfs, ContainerSpec, FsMount, SpawnFailure};
use crate::spawn::sys::{Kind, Sys};

/// In the container's new mount namespace (already made private by the caller): build
/// the bundle's rootfs and enter it. Returns whether `pivot_root` was used.
pub fn build(sys: &dyn Sys, c: &ContainerSpec, b: &BundleRootfs) -> Result<bool, SpawnFailure> {
    let r = b.path.as_path();
    sys.mount(Some(r), r, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
        .map_err(|e| fail("bind the bundle's rootfs on itself", r, errno(e)))?;
    if b.propagation != 0 {
        let p = MsFlags::from_bits_truncate(b.propagation as libc::c_ulong);
        sys.mount(None, r, None, p, None)
            .map_err(|e| fail("set the rootfs propagation", r, errno(e)))?;
    }
    for m in &b.mounts {
        mount_one(sys, c, r, m)?;
    }
    make_devices(sys, r, b)?;
    let pivoted = pivot(sys, r)?;
    for (key, value) in &b.sysctl {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        sys.write(&path, value.as_bytes())
            .map_err(|e| fail("sysctl", &path, e))?;
    }
    mask(sys, &b.masked)?;
    for p in &b.read_only_paths {
        if sys.lstat(p).is_err() {
            continue;
        }
        sys.mount(Some(p), p, None, MsFlags::MS_BIND | MsFlags::MS_REC, None)
            .map_err(|e| fail("bind for read-only", p, errno(e)))?;
        remount_ro(sys, p)?;
    }
    if c.read_only {
        let root = Path::new("/");
        sys.mount(
            None,
            root,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None,
        )
        .map_err(|e| fail("remount read-only", root, errno(e)))?;
    }
    Ok(pivoted)
}

fn mount_one(sys: &dyn Sys, c: &ContainerSpec, r: &Path, m: &FsMount) -> Result<(), SpawnFailure> {
    let flags = MsFlags::from_bits_truncate(m.flags as libc::c_ulong);
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    let dst = if m.fstype == "bind" {
        let kind = sys
            .stat(&m.source)
            .map_err(|e| fail("bind mount source", &m.source, e))?;
        let dst = inside(sys, r, &m.target, kind == Kind::Dir)?;
        let bind = flags & (MsFlags::MS_BIND | MsFlags::MS_REC);
        sys.mount(Some(m.source.as_path()), &dst, None, bind, None)
            .map_err(|e| {
                fail(
                    "bind mount",
                    &m.source,
                    format!("on {}: {}", m.target.display(), errno(e)),
                )
            })?;
        let rest = flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        if !rest.is_empty() {
            sys.mount(
                None,
                &dst,
                None,
                rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None,
            )
            .map_err(|e| fail("remount bind mount", &m.target, errno(e)))?;
        }
        dst
    } else if m.fstype == "cgroup" || m.fstype == "cgroup2" {
        mount_cgroup_at(sys, r, c, &m.target, flags, false)?;
        inside(sys, r, &m.target, true)?
    } else {
        let dst = inside(sys, r, &m.target, true)?;
        let fs = Path::new(&m.fstype);
        // tmpcopyup: the covered directory, still reachable through a descriptor opened
        // before the tmpfs hides it.
        let covered = m
            .copy_up
            .then(|| std::fs::File::open(&dst))
            .transpose()
            .map_err(|e| fail("open for tmpcopyup", &m.target, e))?;
        let made = sys.mount(Some(m.source.as_path()), &dst, Some(&m.fstype), flags, data);
        match made {
            Ok(()) => {
                if let Some(dir) = covered {
                    use std::os::fd::AsRawFd;
                    let from = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
                    copy_tree(&from, &dst).map_err(|e| fail("tmpcopyup into", &m.target, e))?;
                }
            }
            // Without a network namespace of its own, sysfs cannot be mounted afresh:
            // the host's, bound (read-only when asked).
            Err(nix::errno::Errno::EPERM) if m.fstype == "sysfs" => {
                sys.mount(
                    Some(Path::new("/sys")),
                    &dst,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )
                .map_err(|e| fail("bind the host's /sys on", &dst, errno(e)))?;
                if flags.contains(MsFlags::MS_RDONLY) {
                    remount_ro(sys, &dst)?;
                }
            }
            Err(e) => {
                return Err(fail(
                    &format!("mount {} on", fs.display()),
                    &m.target,
                    errno(e),
                ))
            }
        }
        dst
    };
    if m.propagation != 0 {
        let p = MsFlags::from_bits_truncate(m.propagation as libc::c_ulong);
        sys.mount(None, &dst, None, p, None)
            .map_err(|e| fail("set propagation of", &m.target, errno(e)))?;
    }
    Ok(())
}

/// Copies what directory `from` holds into `to` (which exists): directories, files,
/// symlinks and other nodes, with their modes and owners.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let meta = std::fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if kind.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            nix::sys::stat::mknod(
                &dst,
                SFlag::from_bits_truncate(meta.mode() & libc::S_IFMT),
                Mode::from_bits_truncate(meta.mode()),
                meta.rdev(),
            )?;
        }
        std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
        if !kind.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// The standard nodes and symlinks of `/dev` (what is there already stays: a bind mount
/// of the host's /dev), then the bundle's devices.
fn make_devices(sys: &dyn Sys, r: &Path, b: &BundleRootfs) -> Result<(), SpawnFailure> {
    let dev = inside(sys, r, Path::new("/dev"), true)?;
    // A /dev of the container's own (not the host's, bound): /dev/ptmx stays the link to
    // the container's devpts made above, whatever `linux.devices` says (podman
    // `--privileged` lists the host's 5:2 node there), as runc does, so that a terminal
    // opened in the container is on its own devpts instance.
    let own_dev = !b
        .mounts
        .iter()
        .any(|m| m.fstype == "bind" && m.target == Path::new("/dev"));
    for (name, major, minor) in super::rootfs::STANDARD_DEVICES {
        let p = dev.join(name);
        if sys.lstat(&p).is_ok() {
            continue;
        }
        sys.mknod(
            &p,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(|e| fail("mknod", &p, errno(e)))?;
        let _ = sys.chmod(&p, 0o666);
    }
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("core", "/proc/kcore"),
    ] {
        let p = dev.join(link);
        if sys.lstat(&p).is_ok() {
            continue;
        }
        sys.symlink(Path::new(to), &p)
            .map_err(|e| fail("symlink", &p, e))?;
    }
    for d in &b.devices {
        if own_dev && d.node.path == Path::new("/dev/ptmx") {
            continue;
        }
        let p = inside(sys, r, &d.node.path, true)?;
        let _ = sys.remove_dir(&p);
        let _ = std::fs::remove_file(&p);
        let kind = match d.node.kind {
            'b' => SFlag::S_IFBLK,
            'p' => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        sys.mknod(
            &p,
            kind,
            Mode::from_bits_truncate(d.node.mode),
            makedev(d.node.major.into(), d.node.minor.into()),
        )
        .map_err(|e| fail("mknod", &d.node.path, errno(e)))?;
        let _ = sys.chmod(&p, d.node.mode & 0o7777);
        if d.uid.is_some() || d.gid.is_some() {
            nix::unistd::chown(
                &p,
                d.uid.map(nix::unistd::Uid::from_raw),
                d.gid.map(nix::unistd::Gid::from_raw),
            )
            .map_err(|e| fail("chown", &d.node.path, errno(e)))?;
        }
    }
    Ok(())
}

/// Masked paths (see [`rootfs::mask`](super::rootfs::mask)).
fn mask(sys: &dyn Sys, paths: &[PathBuf]) -> Result<(), SpawnFailure> {
    for path in paths {
        super::rootfs::mask(sys, path)?;
    }
    Ok(())
}
