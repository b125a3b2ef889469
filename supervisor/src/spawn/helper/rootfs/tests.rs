//! The calls [`build_with`] makes, in order, for each kind of container: a recorder in
//! place of the kernel (no root needed). Each test is the transcript of a start.

use std::fs::File;

use nix::sys::statvfs::FsFlags;

use super::*;
use crate::spawn::spec::DeviceNode;
use crate::spawn::sys::recorder::{Call, Recorder};

/// A container in `/c` on the layers `layers` (bottom first), nothing else.
fn container(layers: &[&str]) -> ContainerSpec {
    ContainerSpec {
        dir: "/c".into(),
        layers: layers.iter().map(PathBuf::from).collect(),
        ..Default::default()
    }
}

/// What the image and the kernel have: the usual top directories in the rootfs, and
/// after the switch to it, some of the masked and read-only paths (others are missing,
/// as on kernels without them).
fn machine() -> Recorder {
    Recorder::new()
        .dirs(["/c/rootfs/proc", "/c/rootfs/sys", "/c/rootfs/dev"])
        .dirs(["/proc/acpi", "/sys/firmware", "/proc/sys"])
        .files(["/proc/kcore", "/proc/sysrq-trigger"])
}

fn build(rec: &Recorder, c: &ContainerSpec) -> Result<bool, SpawnFailure> {
    build_with(rec, c, &Dirs::new(&c.dir), None, None)
}

/// A descriptor to stand for a real one (a held overlay, a user namespace).
fn some_fd(rec: &Recorder, name: &str) -> OwnedFd {
    let fd = OwnedFd::from(File::open("/dev/null").unwrap_or_else(|e| panic!("{e}")));
    rec.name_fd(&fd, name);
    fd
}

fn user_ns(rec: &Recorder, tty_gid: Option<u32>) -> UserNs {
    UserNs {
        user: some_fd(rec, "userns"),
        root: (100000, 200000),
        tty_gid,
    }
}

/// `/dev` without a user namespace.
const DEV: &[&str] = &[
    "mount tmpfs /c/rootfs/dev tmpfs NOSUID|STRICTATIME mode=755,size=65536k",
    "mknod /c/rootfs/dev/null c 1:3 0666",
    "chmod /c/rootfs/dev/null 0666",
    "mknod /c/rootfs/dev/zero c 1:5 0666",
    "chmod /c/rootfs/dev/zero 0666",
    "mknod /c/rootfs/dev/full c 1:7 0666",
    "chmod /c/rootfs/dev/full 0666",
    "mknod /c/rootfs/dev/random c 1:8 0666",
    "chmod /c/rootfs/dev/random 0666",
    "mknod /c/rootfs/dev/urandom c 1:9 0666",
    "chmod /c/rootfs/dev/urandom 0666",
    "mknod /c/rootfs/dev/tty c 5:0 0666",
    "chmod /c/rootfs/dev/tty 0666",
    "mkdir /c/rootfs/dev/pts",
    "mount devpts /c/rootfs/dev/pts devpts NOSUID|NOEXEC newinstance,ptmxmode=0666,mode=0620,gid=5",
    "mkdir /c/rootfs/dev/shm",
    "mount tmpfs /c/rootfs/dev/shm tmpfs NOSUID|NODEV|NOEXEC mode=1777,size=65536k",
    "symlink /c/rootfs/dev/ptmx -> pts/ptmx",
    "symlink /c/rootfs/dev/fd -> /proc/self/fd",
    "symlink /c/rootfs/dev/stdin -> /proc/self/fd/0",
    "symlink /c/rootfs/dev/stdout -> /proc/self/fd/1",
    "symlink /c/rootfs/dev/stderr -> /proc/self/fd/2",
];

/// The switch to the rootfs with `pivot_root`.
const PIVOT: &[&str] = &[
    "chdir /c/rootfs",
    "pivot_root . .",
    "umount2 . DETACH",
    "chdir /",
];

/// The masked and read-only paths of [`machine`].
const MASKS: &[&str] = &[
    "mount tmpfs /proc/acpi tmpfs RDONLY size=0",
    "mount /dev/null /proc/kcore - BIND -",
    "mount tmpfs /sys/firmware tmpfs RDONLY size=0",
    "mount /proc/sys /proc/sys - BIND|REC -",
    "mount_setattr /proc/sys RECURSIVE set=RDONLY",
    "mount /proc/sysrq-trigger /proc/sysrq-trigger - BIND|REC -",
    "mount_setattr /proc/sysrq-trigger RECURSIVE set=RDONLY",
];

/// `parts`, one after the other.
fn lines<'a>(parts: &[&[&'a str]]) -> Vec<&'a str> {
    parts.concat()
}

/// The transcript of the calls from the first one containing `from`, `n` of them.
fn window(rec: &Recorder, from: &str, n: usize) -> Vec<String> {
    let t = rec.transcript();
    let i = t
        .iter()
        .position(|l| l.contains(from))
        .unwrap_or_else(|| panic!("no call with {from:?} in:\n{}", t.join("\n")));
    t[i..(i + n).min(t.len())].to_vec()
}

#[test]
fn a_minimal_container_in_order() {
    let rec = machine();
    assert_eq!(build(&rec, &container(&["/layers/base"])), Ok(true));
    rec.assert_calls(&[
        "mount - / - REC|PRIVATE -",
        "mount overlay /c/rootfs overlay 0 lowerdir=/c/init:/layers/base,upperdir=/c/upper,workdir=/c/work,volatile",
        "mount proc /c/rootfs/proc proc NOSUID|NODEV|NOEXEC -",
        "mount sysfs /c/rootfs/sys sysfs RDONLY|NOSUID|NODEV|NOEXEC -",
        "mount tmpfs /c/rootfs/dev tmpfs NOSUID|STRICTATIME mode=755,size=65536k",
        "mknod /c/rootfs/dev/null c 1:3 0666",
        "chmod /c/rootfs/dev/null 0666",
        "mknod /c/rootfs/dev/zero c 1:5 0666",
        "chmod /c/rootfs/dev/zero 0666",
        "mknod /c/rootfs/dev/full c 1:7 0666",
        "chmod /c/rootfs/dev/full 0666",
        "mknod /c/rootfs/dev/random c 1:8 0666",
        "chmod /c/rootfs/dev/random 0666",
        "mknod /c/rootfs/dev/urandom c 1:9 0666",
        "chmod /c/rootfs/dev/urandom 0666",
        "mknod /c/rootfs/dev/tty c 5:0 0666",
        "chmod /c/rootfs/dev/tty 0666",
        "mkdir /c/rootfs/dev/pts",
        "mount devpts /c/rootfs/dev/pts devpts NOSUID|NOEXEC newinstance,ptmxmode=0666,mode=0620,gid=5",
        "mkdir /c/rootfs/dev/shm",
        "mount tmpfs /c/rootfs/dev/shm tmpfs NOSUID|NODEV|NOEXEC mode=1777,size=65536k",
        "symlink /c/rootfs/dev/ptmx -> pts/ptmx",
        "symlink /c/rootfs/dev/fd -> /proc/self/fd",
        "symlink /c/rootfs/dev/stdin -> /proc/self/fd/0",
        "symlink /c/rootfs/dev/stdout -> /proc/self/fd/1",
        "symlink /c/rootfs/dev/stderr -> /proc/self/fd/2",
        "chdir /c/rootfs",
        "pivot_root . .",
        "umount2 . DETACH",
        "chdir /",
        "mount tmpfs /proc/acpi tmpfs RDONLY size=0",
        "mount /dev/null /proc/kcore - BIND -",
        "mount tmpfs /sys/firmware tmpfs RDONLY size=0",
        "mount /proc/sys /proc/sys - BIND|REC -",
        "mount_setattr /proc/sys RECURSIVE set=RDONLY",
        "mount /proc/sysrq-trigger /proc/sysrq-trigger - BIND|REC -",
        "mount_setattr /proc/sysrq-trigger RECURSIVE set=RDONLY",
    ]);
    // The typed record says the same.
    assert_eq!(
        rec.calls()[2].0,
        Call::Mount {
            source: Some("proc".into()),
            target: "/c/rootfs/proc".into(),
            fstype: Some("proc".into()),
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            data: None,
        }
    );
}

#[test]
fn missing_mount_points_are_made_and_symlinks_refused() {
    // An image without /proc, /sys, /dev: each is made before its mount.
    let rec = Recorder::new();
    assert_eq!(build(&rec, &container(&["/l"])), Ok(true));
    assert_eq!(
        window(&rec, "mkdir /c/rootfs/proc", 6),
        [
            "mkdir /c/rootfs/proc",
            "mount proc /c/rootfs/proc proc NOSUID|NODEV|NOEXEC -",
            "mkdir /c/rootfs/sys",
            "mount sysfs /c/rootfs/sys sysfs RDONLY|NOSUID|NODEV|NOEXEC -",
            "mkdir /c/rootfs/dev",
            "mount tmpfs /c/rootfs/dev tmpfs NOSUID|STRICTATIME mode=755,size=65536k",
        ]
    );

    // A symlink on the way to a mount point could lead out of the rootfs.
    let rec = machine().symlink_at("/c/rootfs/sys", "/sys");
    let err = build(&rec, &container(&["/l"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mount target /sys: /c/rootfs/sys is a symlink in the rootfs"
    );
    assert!(
        !rec.transcript().iter().any(|l| l.contains("sysfs")),
        "{:?}",
        rec.transcript()
    );
}

#[test]
fn the_overlay_by_kind_of_container() {
    let overlay = |c: &ContainerSpec, rec: Recorder| {
        let r = build(&rec, c);
        (r, window(&rec, "overlay", 2))
    };
    // Layers listed top first; the init layer above them.
    let c = container(&["/layers/base", "/layers/app"]);
    let (_, got) = overlay(&c, machine());
    assert_eq!(got[0], "mount overlay /c/rootfs overlay 0 lowerdir=/c/init:/layers/app:/layers/base,upperdir=/c/upper,workdir=/c/work,volatile");

    // Before Linux 5.10, `volatile` is refused: the same without it.
    let (r, got) = overlay(&c, machine().fail_on(",volatile", Errno::EINVAL));
    assert_eq!(r, Ok(true));
    assert_eq!(got, [
        "mount overlay /c/rootfs overlay 0 lowerdir=/c/init:/layers/app:/layers/base,upperdir=/c/upper,workdir=/c/work,volatile -> EINVAL",
        "mount overlay /c/rootfs overlay 0 lowerdir=/c/init:/layers/app:/layers/base,upperdir=/c/upper,workdir=/c/work",
    ]);
    // Another error is not retried.
    let (r, got) = overlay(&c, machine().fail_on(",volatile", Errno::EPERM));
    assert_eq!(r.unwrap_err().to_string(), "mount overlay on /c/rootfs: EPERM: Operation not permitted: Operation not permitted (lowerdir=/c/init:/layers/app:/layers/base,upperdir=/c/upper,workdir=/c/work)");
    assert_eq!(got.len(), 1, "{got:?}");

    // persist: its writable layer is synced.
    let persist = ContainerSpec {
        persist: true,
        ..container(&["/l"])
    };
    let (_, got) = overlay(&persist, machine());
    assert_eq!(
        got[0],
        "mount overlay /c/rootfs overlay 0 lowerdir=/c/init:/l,upperdir=/c/upper,workdir=/c/work"
    );

    // read_only: no writable layer at all, a read-only overlay.
    let ro = ContainerSpec {
        read_only: true,
        ..container(&["/l"])
    };
    let (r, got) = overlay(&ro, machine());
    assert_eq!(r, Ok(true));
    assert_eq!(
        got[0],
        "mount overlay /c/rootfs overlay RDONLY lowerdir=/c/init:/l"
    );
    // Never mounted `volatile`, so EINVAL is not retried.
    let (r, got) = overlay(&ro, machine().fail_on("overlay", Errno::EINVAL));
    assert_eq!(
        r.unwrap_err().to_string(),
        "mount overlay on /c/rootfs: EINVAL: Invalid argument: Invalid argument (lowerdir=/c/init:/l)"
    );
    assert_eq!(got.len(), 1, "{got:?}");
}

/// The first calls of every container's rootfs, after its overlay.
const PROC_SYS: &[&str] = &[
    "mount proc /c/rootfs/proc proc NOSUID|NODEV|NOEXEC -",
    "mount sysfs /c/rootfs/sys sysfs RDONLY|NOSUID|NODEV|NOEXEC -",
];

#[test]
fn a_read_only_container_differs_only_in_its_overlay() {
    let rec = machine();
    let c = ContainerSpec {
        read_only: true,
        ..container(&["/l"])
    };
    assert_eq!(build(&rec, &c), Ok(true));
    rec.assert_calls(&lines(&[
        &[
            "mount - / - REC|PRIVATE -",
            "mount overlay /c/rootfs overlay RDONLY lowerdir=/c/init:/l",
        ],
        PROC_SYS,
        DEV,
        PIVOT,
        MASKS,
    ]));
}

#[test]
fn a_kept_overlay_is_moved_into_place_instead_of_a_new_one() {
    let rec = machine();
    let c = container(&["/l"]);
    let held = some_fd(&rec, "held");
    assert_eq!(
        build_with(&rec, &c, &Dirs::new(&c.dir), None, Some(held)),
        Ok(true)
    );
    rec.assert_calls(&lines(&[
        &[
            "mount - / - REC|PRIVATE -",
            "move_mount [held] -> /c/rootfs F_EMPTY_PATH",
        ],
        PROC_SYS,
        DEV,
        PIVOT,
        MASKS,
    ]));

    let rec = machine().fail_on("move_mount", Errno::ENOENT);
    let held = some_fd(&rec, "held");
    let err = build_with(&rec, &c, &Dirs::new(&c.dir), None, Some(held)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mount the kept overlay on /c/rootfs: ENOENT: No such file or directory: No such file or directory"
    );
    assert_eq!(rec.transcript().len(), 2);
}

#[test]
fn sysfs_refused_is_bound_from_the_host_read_only() {
    // Without a network namespace of its own.
    let rec = machine().fail_on("mount sysfs", Errno::EPERM);
    assert_eq!(build(&rec, &container(&["/l"])), Ok(true));
    assert_eq!(
        window(&rec, "sysfs", 4),
        [
            "mount sysfs /c/rootfs/sys sysfs RDONLY|NOSUID|NODEV|NOEXEC - -> EPERM",
            "mount /sys /c/rootfs/sys - BIND|REC -",
            "mount_setattr /c/rootfs/sys RECURSIVE set=RDONLY",
            "mount tmpfs /c/rootfs/dev tmpfs NOSUID|STRICTATIME mode=755,size=65536k",
        ]
    );
    // If the bind fails too, sysfs's own error is the one reported.
    let rec = machine()
        .fail_on("mount sysfs", Errno::EPERM)
        .fail_on("mount /sys", Errno::EACCES);
    assert_eq!(
        build(&rec, &container(&["/l"])).unwrap_err().to_string(),
        "mount sysfs on /c/rootfs/sys: EPERM: Operation not permitted: Operation not permitted"
    );
}

#[test]
fn devices_are_made_in_the_new_dev() {
    let c = ContainerSpec {
        devices: vec![
            DeviceNode {
                path: "/dev/fuse".into(),
                kind: 'c',
                major: 10,
                minor: 229,
                mode: 0o666,
            },
            DeviceNode {
                path: "/dev/loop0".into(),
                kind: 'b',
                major: 7,
                minor: 0,
                mode: 0o660,
            },
        ],
        ..container(&["/l"])
    };
    let rec = machine();
    assert_eq!(build(&rec, &c), Ok(true));
    // After /dev, before the switch.
    assert_eq!(
        window(&rec, "symlink /c/rootfs/dev/stderr", 8),
        [
            "symlink /c/rootfs/dev/stderr -> /proc/self/fd/2",
            "mkdir /c/rootfs/dev/fuse",
            "rmdir /c/rootfs/dev/fuse",
            "mknod /c/rootfs/dev/fuse c 10:229 0666",
            "mkdir /c/rootfs/dev/loop0",
            "rmdir /c/rootfs/dev/loop0",
            "mknod /c/rootfs/dev/loop0 b 7:0 0660",
            "chdir /c/rootfs",
        ]
    );
    let rec = machine().fail_on("mknod /c/rootfs/dev/fuse", Errno::EPERM);
    assert_eq!(
        build(&rec, &c).unwrap_err().to_string(),
        "mknod /dev/fuse: EPERM: Operation not permitted: Operation not permitted"
    );
}

#[test]
fn volumes_in_order_after_dev() {
    let c = ContainerSpec {
        volumes: vec![
            MountSpec::Bind {
                source: "/srv/data".into(),
                target: "/data".into(),
                read_only: false,
                idmap: false,
            },
            MountSpec::Bind {
                source: "/etc/app.conf".into(),
                target: "/etc/app.conf".into(),
                read_only: true,
                idmap: false,
            },
            MountSpec::Tmpfs {
                target: "/tmp".into(),
                size: Some(1 << 20),
            },
            MountSpec::Tmpfs {
                target: "/run/app".into(),
                size: None,
            },
        ],
        ..container(&["/l"])
    };
    let rec = machine()
        .dirs(["/srv/data", "/c/rootfs/etc", "/c/rootfs/tmp"])
        .files(["/etc/app.conf"]);
    assert_eq!(build(&rec, &c), Ok(true));
    assert_eq!(
        window(&rec, "symlink /c/rootfs/dev/stderr", 13),
        [
            "symlink /c/rootfs/dev/stderr -> /proc/self/fd/2",
            // A directory: its mount point a directory.
            "mkdir /c/rootfs/data",
            "mount /srv/data /c/rootfs/data - BIND|REC -",
            // A file: its mount point a file; read-only with its submounts.
            "write /c/rootfs/etc/app.conf \"\"",
            "mount /etc/app.conf /c/rootfs/etc/app.conf - BIND|REC -",
            "mount_setattr /c/rootfs/etc/app.conf RECURSIVE set=RDONLY",
            "mount tmpfs /c/rootfs/tmp tmpfs NOSUID|NODEV mode=1777,size=1048576",
            "mkdir /c/rootfs/run",
            "mkdir /c/rootfs/run/app",
            "mount tmpfs /c/rootfs/run/app tmpfs NOSUID|NODEV mode=1777",
            "chdir /c/rootfs",
            "pivot_root . .",
            "umount2 . DETACH",
        ]
    );

    // A source that is not there stops the start before any volume is mounted.
    let rec = machine();
    let err = build(&rec, &c).unwrap_err();
    assert_eq!(
        err.to_string(),
        "bind volume source /srv/data: No such file or directory (os error 2)"
    );
    assert_eq!(rec.transcript().last().map(String::as_str), Some(DEV[21]));
    // A failed bind says on what.
    let rec = machine()
        .dirs(["/srv/data"])
        .fail_on("mount /srv/data", Errno::ENOENT);
    assert_eq!(
        build(&rec, &c).unwrap_err().to_string(),
        "bind mount /srv/data: on /data: ENOENT: No such file or directory: No such file or directory"
    );
}

/// Before Linux 5.12 (no mount_setattr), a read-only tree is remounted mount by mount,
/// each keeping its own flags: the bound tree itself, then what mountinfo lists under it.
#[test]
fn read_only_without_mount_setattr_remounts_each_mount_under_the_tree() {
    let c = ContainerSpec {
        volumes: vec![MountSpec::Bind {
            source: "/srv/data".into(),
            target: "/data".into(),
            read_only: true,
            idmap: false,
        }],
        ..container(&["/l"])
    };
    let mountinfo = "\
22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
40 22 0:40 / /real/rootfs/data rw - ext4 /dev/sda2 rw
41 40 0:41 / /real/rootfs/data/my\\040cache rw,nosuid - tmpfs tmpfs rw
42 22 0:42 / /real/rootfs/database rw - tmpfs tmpfs rw
43 40 0:43 / /real/rootfs/data/logs rw - tmpfs tmpfs rw
";
    let rec = machine()
        .dirs(["/srv/data"])
        .fail_on("mount_setattr /c/rootfs/data", Errno::ENOSYS)
        .canonical("/c/rootfs/data", "/real/rootfs/data")
        .file_text("/proc/self/mountinfo", mountinfo)
        .fs_flags("/c/rootfs/data", FsFlags::ST_NOEXEC | FsFlags::ST_RELATIME)
        .fs_flags("/real/rootfs/data/my cache", FsFlags::ST_NOSUID);
    assert_eq!(build(&rec, &c), Ok(true));
    assert_eq!(
        window(&rec, "mount /srv/data", 5),
        [
            "mount /srv/data /c/rootfs/data - BIND|REC -",
            "mount_setattr /c/rootfs/data RECURSIVE set=RDONLY -> ENOSYS",
            "mount - /c/rootfs/data - RDONLY|NOEXEC|REMOUNT|BIND|RELATIME -",
            "mount - /real/rootfs/data/my cache - RDONLY|NOSUID|REMOUNT|BIND -",
            "mount - /real/rootfs/data/logs - RDONLY|REMOUNT|BIND -",
        ]
    );
    // mount_setattr refusing the flag (EINVAL) falls back the same way; another error
    // stops the start.
    let rec = machine()
        .dirs(["/srv/data"])
        .fail_on("mount_setattr /c/rootfs/data", Errno::EINVAL)
        .file_text("/proc/self/mountinfo", "");
    assert_eq!(build(&rec, &c), Ok(true));
    assert_eq!(
        window(&rec, "mount_setattr /c/rootfs/data", 2)[1],
        "mount - /c/rootfs/data - RDONLY|REMOUNT|BIND -"
    );
    let rec = machine()
        .dirs(["/srv/data"])
        .fail_on("mount_setattr /c/rootfs/data", Errno::EPERM);
    assert_eq!(
        build(&rec, &c).unwrap_err().to_string(),
        "remount read-only /c/rootfs/data: EPERM: Operation not permitted: Operation not permitted"
    );
}

#[test]
fn where_pivot_root_is_refused_the_rootfs_is_moved_and_chrooted() {
    // An initramfs root has no parent mount.
    let rec = machine().fail_on("pivot_root", Errno::EINVAL);
    assert_eq!(build(&rec, &container(&["/l"])), Ok(false));
    assert_eq!(
        window(&rec, "chdir /c/rootfs", 6),
        [
            "chdir /c/rootfs",
            "pivot_root . . -> EINVAL",
            "mount . / - MOVE -",
            "chroot .",
            "chdir /",
            // Masked all the same.
            "mount tmpfs /proc/acpi tmpfs RDONLY size=0",
        ]
    );
    let rec = machine().fail_on("pivot_root", Errno::EPERM);
    assert_eq!(
        build(&rec, &container(&["/l"])).unwrap_err().to_string(),
        "pivot_root /c/rootfs: EPERM: Operation not permitted: Operation not permitted"
    );
    assert_eq!(
        rec.transcript().last().map(String::as_str),
        Some("pivot_root . . -> EPERM")
    );
}

#[test]
fn masked_paths_are_only_those_the_kernel_has() {
    let rec = Recorder::new().dirs(["/c/rootfs/proc", "/c/rootfs/sys", "/c/rootfs/dev"]);
    assert_eq!(build(&rec, &container(&["/l"])), Ok(true));
    assert_eq!(rec.transcript().last().map(String::as_str), Some("chdir /"));

    let rec = machine().fail_on("mount /dev/null /proc/kcore", Errno::EPERM);
    assert_eq!(
        build(&rec, &container(&["/l"])).unwrap_err().to_string(),
        "mask /proc/kcore: EPERM: Operation not permitted: Operation not permitted"
    );
}

#[test]
fn with_a_user_namespace() {
    let c = ContainerSpec {
        // A layer listed twice is mapped once; the container's directory last.
        layers: vec!["/layers/base".into(), "/layers/base".into()],
        volumes: vec![
            MountSpec::Bind {
                source: "/srv/data".into(),
                target: "/data".into(),
                read_only: true,
                idmap: true,
            },
            MountSpec::Bind {
                source: "/srv/plain".into(),
                target: "/plain".into(),
                read_only: false,
                idmap: false,
            },
            MountSpec::Tmpfs {
                target: "/tmp".into(),
                size: Some(4096),
            },
        ],
        ..container(&[])
    };
    let rec = machine()
        .dirs(["/srv/data", "/srv/plain", "/c/rootfs/tmp"])
        .permitted([caps::Capability::CAP_SYS_ADMIN, caps::Capability::CAP_CHOWN].into());
    let u = user_ns(&rec, Some(200005));
    assert_eq!(
        build_with(&rec, &c, &Dirs::new(&c.dir), Some(&u), None),
        Ok(true)
    );
    let t = rec.transcript();
    assert_eq!(
        t[..11],
        [
            "mount - / - REC|PRIVATE -",
            "open_tree /layers/base CLONE|CLOEXEC",
            "mount_setattr [tree:/layers/base] EMPTY_PATH set=IDMAP userns=[userns]",
            "move_mount [tree:/layers/base] -> /layers/base F_EMPTY_PATH",
            "open_tree /c CLONE|CLOEXEC",
            "mount_setattr [tree:/c] EMPTY_PATH set=IDMAP userns=[userns]",
            "move_mount [tree:/c] -> /c F_EMPTY_PATH",
            // Then the rest as the container's root.
            "set_fs_ids 100000 200000",
            "set_caps Effective CAP_CHOWN,CAP_SYS_ADMIN",
            "mount overlay /c/rootfs overlay 0 lowerdir=/c/init:/layers/base:/layers/base,upperdir=/c/upper,workdir=/c/work,volatile",
            "mount proc /c/rootfs/proc proc NOSUID|NODEV|NOEXEC -",
        ]
    );
    // What is mounted afresh belongs to the container's root; terminals to its tty group.
    let owned: Vec<&String> = t.iter().filter(|l| l.contains("gid=")).collect();
    assert_eq!(
        owned,
        [
            "mount tmpfs /c/rootfs/dev tmpfs NOSUID|STRICTATIME mode=755,size=65536k,uid=100000,gid=200000",
            "mount devpts /c/rootfs/dev/pts devpts NOSUID|NOEXEC newinstance,ptmxmode=0666,mode=0620,gid=200005",
            "mount tmpfs /c/rootfs/dev/shm tmpfs NOSUID|NODEV|NOEXEC mode=1777,size=65536k,uid=100000,gid=200000",
            "mount tmpfs /c/rootfs/tmp tmpfs NOSUID|NODEV mode=1777,size=4096,uid=100000,gid=200000",
        ]
    );
    // An idmapped volume: its tree cloned with its submounts, mapped and made read-only
    // in one call, attached on the mount point; a volume with idmap = false is bound.
    assert_eq!(
        window(&rec, "mkdir /c/rootfs/data", 6),
        [
            "mkdir /c/rootfs/data",
            "open_tree /srv/data CLONE|CLOEXEC|RECURSIVE",
            "mount_setattr [tree:/srv/data] EMPTY_PATH|RECURSIVE set=RDONLY|IDMAP userns=[userns]",
            "move_mount [tree:/srv/data] -> /c/rootfs/data F_EMPTY_PATH",
            "mkdir /c/rootfs/plain",
            "mount /srv/plain /c/rootfs/plain - BIND|REC -",
        ]
    );
}

#[test]
fn user_namespace_failures_say_what_to_do() {
    let c = container(&["/l"]);
    // overlayfs on idmapped layers needs Linux 5.19.
    let rec = machine().fail_on("mount overlay", Errno::EINVAL);
    let u = user_ns(&rec, None);
    let err = build_with(&rec, &c, &Dirs::new(&c.dir), Some(&u), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mount overlay on /c/rootfs: EINVAL: Invalid argument: Invalid argument (lowerdir=/c/init:/l,upperdir=/c/upper,workdir=/c/work); overlayfs takes idmapped layers since Linux 5.19: on older kernels remove \"user\" from container.namespaces"
    );
    // Without the container's tty group in the map, terminals have no group option.
    let rec = machine();
    let u = user_ns(&rec, None);
    assert_eq!(
        build_with(&rec, &c, &Dirs::new(&c.dir), Some(&u), None),
        Ok(true)
    );
    assert!(rec.transcript().contains(
        &"mount devpts /c/rootfs/dev/pts devpts NOSUID|NOEXEC newinstance,ptmxmode=0666,mode=0620"
            .to_string()
    ));
    // An idmapped volume the file system cannot map names the way out.
    let c = ContainerSpec {
        volumes: vec![MountSpec::Bind {
            source: "/srv/data".into(),
            target: "/data".into(),
            read_only: false,
            idmap: true,
        }],
        ..container(&["/l"])
    };
    let rec = machine()
        .dirs(["/srv/data"])
        .fail_on("mount_setattr [tree:/srv/data]", Errno::EINVAL);
    let u = user_ns(&rec, None);
    let err = build_with(&rec, &c, &Dirs::new(&c.dir), Some(&u), None).unwrap_err();
    assert_eq!(err.step, "idmapped mount of");
    assert_eq!(err.subject, "/srv/data");
    assert!(
        err.error.starts_with("Invalid argument (os error 22) (the file system there does not support idmapped mounts")
            && err.error.ends_with(" (for the volume on /data: or set idmap = false on it)"),
        "{}",
        err.error
    );
}

/// `cgroup = "delegate"` on a v2 host: cgroup2 at `/sys/fs/cgroup`, writable, right after
/// sysfs (the helper made the cgroup namespace at the unit's `payload` before).
#[test]
fn a_delegated_cgroup_on_v2_is_cgroup2_at_sys_fs_cgroup() {
    let rec = machine().dirs(["/c/rootfs/sys/fs", "/c/rootfs/sys/fs/cgroup"]);
    let mut c = container(&["/layers/base"]);
    c.plan.cgroup_fs = CgroupFs::Unified;
    c.cgroup_hierarchies = vec![Hierarchy::Unified];
    assert_eq!(build(&rec, &c), Ok(true));
    assert_eq!(
        window(&rec, "mount sysfs", 3),
        [
            "mount sysfs /c/rootfs/sys sysfs RDONLY|NOSUID|NODEV|NOEXEC -",
            "mount cgroup2 /c/rootfs/sys/fs/cgroup cgroup2 NOSUID|NODEV|NOEXEC -",
            "mount tmpfs /c/rootfs/dev tmpfs NOSUID|STRICTATIME mode=755,size=65536k",
        ]
    );
}

/// On a hybrid host: a tmpfs holding each of the unit's hierarchies (co-mounted ones once,
/// with a symlink per controller; `name=systemd` at `systemd`) and the unified tree, then
/// made read-only.
#[test]
fn a_delegated_cgroup_on_hybrid_is_each_hierarchy_under_a_read_only_tmpfs() {
    // sysfs has the directory (the kernel's mount point for cgroup file systems).
    let rec = machine().dirs(["/c/rootfs/sys/fs", "/c/rootfs/sys/fs/cgroup"]);
    let mut c = container(&["/layers/base"]);
    c.plan.cgroup_fs = CgroupFs::Hierarchies;
    let v1 = |c: &[&str]| Hierarchy::V1 {
        controllers: c.iter().map(|s| s.to_string()).collect(),
    };
    c.cgroup_hierarchies = vec![
        Hierarchy::Unified,
        v1(&["cpu", "cpuacct"]),
        v1(&["memory"]),
        v1(&["name=systemd"]),
    ];
    assert_eq!(build(&rec, &c), Ok(true));
    assert_eq!(
        window(&rec, "mount sysfs", 12),
        [
            "mount sysfs /c/rootfs/sys sysfs RDONLY|NOSUID|NODEV|NOEXEC -",
            "mount tmpfs /c/rootfs/sys/fs/cgroup tmpfs NOSUID|NODEV|NOEXEC mode=755",
            "mkdir /c/rootfs/sys/fs/cgroup/unified",
            "mount cgroup2 /c/rootfs/sys/fs/cgroup/unified cgroup2 NOSUID|NODEV|NOEXEC -",
            "mkdir /c/rootfs/sys/fs/cgroup/cpu,cpuacct",
            "mount cgroup /c/rootfs/sys/fs/cgroup/cpu,cpuacct cgroup NOSUID|NODEV|NOEXEC cpu,cpuacct",
            "symlink /c/rootfs/sys/fs/cgroup/cpu -> cpu,cpuacct",
            "symlink /c/rootfs/sys/fs/cgroup/cpuacct -> cpu,cpuacct",
            "mkdir /c/rootfs/sys/fs/cgroup/memory",
            "mount cgroup /c/rootfs/sys/fs/cgroup/memory cgroup NOSUID|NODEV|NOEXEC memory",
            "mkdir /c/rootfs/sys/fs/cgroup/systemd",
            "mount cgroup /c/rootfs/sys/fs/cgroup/systemd cgroup NOSUID|NODEV|NOEXEC name=systemd",
        ]
    );
    assert_eq!(
        window(&rec, "REMOUNT", 2),
        [
            "mount - /c/rootfs/sys/fs/cgroup - RDONLY|NOSUID|NODEV|NOEXEC|REMOUNT -",
            "mount tmpfs /c/rootfs/dev tmpfs NOSUID|STRICTATIME mode=755,size=65536k",
        ]
    );
}

/// Without `cgroup = "delegate"` nothing is mounted there.
#[test]
fn no_cgroup_file_system_by_default() {
    let rec = machine();
    assert_eq!(build(&rec, &container(&["/layers/base"])), Ok(true));
    assert!(
        !rec.transcript().iter().any(|l| l.contains("cgroup")),
        "{:?}",
        rec.transcript()
    );
}

/// The container's own cgroup of each hierarchy, from `/proc/self/cgroup`: relative, the
/// co-mounted controllers in any order; nothing at the root (a cgroup namespace's view) or
/// above it.
#[test]
fn own_cgroup_per_hierarchy() {
    let table = "12:memory:/libpod_parent/libpod-1\n4:cpuacct,cpu:/libpod_parent/libpod-1\n\
                 1:name=systemd:/\n0::/../outside\n";
    let c = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        own_cgroup(table, &c(&["memory"])),
        Some("libpod_parent/libpod-1")
    );
    assert_eq!(
        own_cgroup(table, &c(&["cpu", "cpuacct"])),
        Some("libpod_parent/libpod-1")
    );
    assert_eq!(own_cgroup(table, &c(&["name=systemd"])), None);
    assert_eq!(own_cgroup(table, &[]), None);
    assert_eq!(own_cgroup("0::/a/b\n", &[]), Some("a/b"));
    assert_eq!(own_cgroup(table, &c(&["pids"])), None);
}
