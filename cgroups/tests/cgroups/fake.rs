//! A fake cgroupfs: directories with the control files the kernel would show, and the
//! sample `/proc/self/cgroup` and mountinfo texts of a hybrid and a pure v2 host.

use std::fs;
use std::path::Path;

/// mountinfo of a hybrid host like CI's, but with `cpu,cpuacct` co-mounted (as on most
/// distributions) and a non-cgroup mount mixed in.
pub const HYBRID_MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - overlay overlay rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:1 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
42 31 0:39 / /sys/fs/cgroup/net_cls rw,relatime - cgroup cgroup rw,net_cls
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
";

/// `/proc/self/cgroup` on that host: kennel in a memory sub-cgroup, at the root elsewhere.
pub const HYBRID_SELF: &str = "\
10:net_cls:/
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpu,cpuacct:/
0::/
";

/// mountinfo of a pure v2 host.
pub const V2_MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/vda rw
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

/// `/proc/self/cgroup` there: kennel as a systemd service.
pub const V2_SELF: &str = "0::/system.slice/kennel.service\n";

/// The hybrid v1 hierarchies' mount points, relative to the fake root.
pub const HYBRID_MOUNTS: &[&str] = &[
    "sys/fs/cgroup/cpu,cpuacct",
    "sys/fs/cgroup/cpuset",
    "sys/fs/cgroup/memory",
    "sys/fs/cgroup/devices",
    "sys/fs/cgroup/freezer",
    "sys/fs/cgroup/blkio",
    "sys/fs/cgroup/pids",
    "sys/fs/cgroup/systemd",
    "sys/fs/cgroup/unified",
];

/// Creates `dir` with `files` (name, content), as the kernel shows a new cgroup.
pub fn cgroup(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

/// The control files of a fresh v1 cgroup in the hierarchy mounted at `mount`.
pub fn v1_files(mount: &str) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![("cgroup.procs", "")];
    let last = mount.rsplit('/').next().unwrap_or("");
    for ctrl in last.split(',') {
        files.extend_from_slice(match ctrl {
            "cpu" => &[
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "-1"),
                ("cpu.shares", "1024"),
            ][..],
            "cpuacct" => &[("cpuacct.usage", "0")][..],
            "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")][..],
            "memory" => &[
                ("memory.limit_in_bytes", "9223372036854771712"),
                ("memory.usage_in_bytes", "0"),
                ("memory.max_usage_in_bytes", "0"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
                ),
            ][..],
            "pids" => &[("pids.max", "max"), ("pids.current", "0")][..],
            "freezer" => &[("freezer.state", "THAWED")][..],
            "unified" => &[("cgroup.kill", ""), ("cgroup.freeze", "0")][..],
            _ => &[][..],
        });
    }
    files
}

/// A hybrid fake tree under `root`: every hierarchy root populated, and `rel` (e.g.
/// `kennel-test` or `kennel-test/web`) created fresh in each.
pub fn hybrid_tree(root: &Path, rels: &[&str]) {
    for mount in HYBRID_MOUNTS {
        let mut files = v1_files(mount);
        if mount.ends_with("cpuset") {
            files = vec![
                ("cgroup.procs", ""),
                ("cpuset.cpus", "0-3"),
                ("cpuset.mems", "0"),
            ];
        }
        cgroup(&root.join(mount), &files);
        for rel in rels {
            cgroup(&root.join(mount).join(rel), &v1_files(mount));
        }
    }
}

/// The control files of a v2 cgroup whose parent enabled every controller.
pub const V2_FILES: &[(&str, &str)] = &[
    ("cgroup.procs", ""),
    ("cgroup.controllers", "cpuset cpu io memory pids"),
    ("cgroup.subtree_control", ""),
    ("cgroup.freeze", "0"),
    ("cgroup.kill", ""),
    ("memory.max", "max"),
    ("memory.current", "0"),
    ("memory.peak", "0"),
    ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
    ("cpu.max", "max 100000"),
    ("cpu.weight", "100"),
    ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"),
    ("pids.max", "max"),
    ("pids.current", "0"),
    ("io.weight", "default 100"),
    ("cpuset.cpus", ""),
];

/// Reads a fake control file.
pub fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}
