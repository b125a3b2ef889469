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

/// Unmount everything but `/`, innermost first; what cannot be unmounted (busy) is
/// remounted read-only. Returns the lines to log.
pub fn unmount_all() -> Vec<String> {
    let mut lines = Vec::new();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut targets: Vec<String> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(crate::octal::unescape))
        .collect();
    targets.reverse();
    for t in targets {
        if t == "/" {
            continue;
        }
        if umount2(Path::new(&t), MntFlags::MNT_DETACH).is_err() {
            let ro = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            match mount(None::<&str>, Path::new(&t), None::<&str>, ro, None::<&str>) {
                Ok(()) => lines.push(format!("remounted {t} read-only")),
                Err(e) => lines.push(format!("cannot unmount {t}: {e}")),
            }
        }
    }
    let ro = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    if let Err(e) = mount(None::<&str>, "/", None::<&str>, ro, None::<&str>) {
        lines.push(format!("remount / read-only: {e}"));
    }
    lines
}
