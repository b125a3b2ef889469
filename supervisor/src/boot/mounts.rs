//! The machine's early mounts, and unmounting everything at the end.

use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// Mount what a machine's init must: `/proc`, `/sys`, `/dev` (devtmpfs), `/dev/pts`,
/// `/dev/shm`, `/run`, and the cgroup v2 hierarchy on `/sys/fs/cgroup`. What is already
/// mounted (by an initramfs, or because this is a container) is left as it is. Returns
/// one line per mount for the console; failures are reported, not fatal.
pub fn early() -> Vec<String> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let table: &[(&str, &str, MsFlags, Option<&str>)] = &[
        ("/proc", "proc", nosuid, None),
        ("/sys", "sysfs", nosuid, None),
        ("/dev", "devtmpfs", MsFlags::MS_NOSUID, Some("mode=0755")),
        (
            "/dev/pts",
            "devpts",
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("gid=5,mode=0620,ptmxmode=0666"),
        ),
        (
            "/dev/shm",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        ),
        (
            "/run",
            "tmpfs",
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        ),
        ("/sys/fs/cgroup", "cgroup2", nosuid, None),
    ];
    let mut lines = Vec::new();
    for (target, fstype, flags, data) in table {
        if is_mounted(target) {
            lines.push(format!("{target} already mounted"));
            continue;
        }
        let _ = std::fs::create_dir_all(target);
        match mount(Some(*fstype), *target, Some(*fstype), *flags, *data) {
            Ok(()) => lines.push(format!("mounted {fstype} on {target}")),
            Err(e) => lines.push(format!("mount {fstype} on {target}: {e}")),
        }
    }
    lines
}

/// Whether `path` is a mount point (per `/proc/self/mountinfo`, once `/proc` is there).
fn is_mounted(path: &str) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .any(|l| l.split_whitespace().nth(4) == Some(path))
}

/// A file system with no data of its own to lose (detached without ceremony).
fn pseudo(fstype: &str) -> bool {
    matches!(
        fstype,
        "proc"
            | "sysfs"
            | "devtmpfs"
            | "devpts"
            | "tmpfs"
            | "mqueue"
            | "cgroup"
            | "cgroup2"
            | "securityfs"
            | "debugfs"
            | "tracefs"
            | "configfs"
            | "fusectl"
            | "pstore"
            | "bpf"
            | "hugetlbfs"
            | "binfmt_misc"
            | "efivarfs"
            | "autofs"
            | "ramfs"
            | "rootfs"
    )
}

/// Unmount everything but `/`, innermost first, then remount `/` read-only, so that each
/// file system is clean for the next boot. A busy file system is remounted read-only (its
/// data written out) before it is detached. Returns the lines to say.
pub fn unmount_all() -> Vec<String> {
    let mut lines = Vec::new();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<(String, String)> = info
        .lines()
        .filter_map(|l| {
            let target = l.split_whitespace().nth(4).map(crate::octal::unescape)?;
            let fstype = l
                .split(" - ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .to_string();
            Some((target, fstype))
        })
        .collect();
    mounts.reverse();
    let ro = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (t, fstype) in mounts {
        if t == "/" {
            continue;
        }
        if pseudo(&fstype) {
            let _ = umount2(Path::new(&t), MntFlags::MNT_DETACH);
            continue;
        }
        match umount2(Path::new(&t), MntFlags::empty()) {
            Ok(()) => lines.push(format!("unmounted {t}")),
            Err(e) => {
                match mount(None::<&str>, Path::new(&t), None::<&str>, ro, None::<&str>) {
                    Ok(()) => lines.push(format!("{t} busy ({e}): remounted read-only")),
                    Err(e2) => lines.push(format!(
                        "cannot unmount {t} ({e}) nor make it read-only ({e2})"
                    )),
                }
                let _ = umount2(Path::new(&t), MntFlags::MNT_DETACH);
            }
        }
    }
    match mount(None::<&str>, "/", None::<&str>, ro, None::<&str>) {
        Ok(()) => lines.push("remounted / read-only".into()),
        Err(e) => lines.push(format!("remount / read-only: {e}")),
    }
    lines
}
