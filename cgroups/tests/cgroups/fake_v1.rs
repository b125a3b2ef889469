//! The hybrid v1 layout on a fake tree: detection, paths, limits, stats, OOM count.

use std::fs;
use std::path::Path;

use kennel_cgroups::{CgroupError, Cgroups, Hierarchy, Version};
use kennel_units::Resources;

use crate::fake::*;

fn detect(root: &Path, parent: Option<&str>) -> Cgroups {
    Cgroups::detect_at(root, parent, HYBRID_SELF, HYBRID_MOUNTINFO).unwrap()
}

#[test]
fn detects_hybrid_with_comounted_cpu_cpuacct_once() {
    let root = tempfile::tempdir().unwrap();
    let cg = detect(root.path(), None);
    assert_eq!(cg.version(), Version::V1);
    let unit = cg.unit("web");
    let dirs: Vec<String> = unit
        .dirs()
        .iter()
        .map(|d| {
            d.path
                .strip_prefix(root.path())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    // Default parent: kennel's own cgroup per hierarchy (memory differs); net_cls unused;
    // cpu,cpuacct once; the unified tree last.
    assert_eq!(
        dirs,
        [
            "sys/fs/cgroup/cpu,cpuacct/web",
            "sys/fs/cgroup/cpuset/web",
            "sys/fs/cgroup/memory/process_api/abc/web",
            "sys/fs/cgroup/devices/web",
            "sys/fs/cgroup/freezer/web",
            "sys/fs/cgroup/blkio/web",
            "sys/fs/cgroup/pids/web",
            "sys/fs/cgroup/systemd/web",
            "sys/fs/cgroup/unified/web",
        ]
    );
    assert_eq!(
        unit.dirs()[0].hierarchy,
        Hierarchy::V1 {
            controllers: vec!["cpu".into(), "cpuacct".into()]
        }
    );
    assert_eq!(unit.dirs()[8].hierarchy, Hierarchy::Unified);
    assert_eq!(unit.procs_files().len(), 9);
    // Joined through the unified tree first (its `populated` then covers every process).
    assert!(unit.procs_files()[0].ends_with("unified/web/cgroup.procs"));
    assert!(unit.procs_files()[3].ends_with("memory/process_api/abc/web/cgroup.procs"));
    let shown = unit.display();
    assert!(
        shown.ends_with("sys/fs/cgroup/memory/process_api/abc/web (+7 v1 hierarchies, unified)"),
        "{shown}"
    );
}

#[test]
fn explicit_parent_is_relative_to_every_hierarchy_root() {
    let root = tempfile::tempdir().unwrap();
    let cg = detect(root.path(), Some("/kennel-test-1/"));
    for d in cg.unit("web").dirs() {
        let rel = d
            .path
            .strip_prefix(root.path().join("sys/fs/cgroup"))
            .unwrap();
        let parts: Vec<_> = rel.iter().skip(1).collect();
        assert_eq!(parts, ["kennel-test-1", "web"], "{}", d.path.display());
    }
    let parents = cg.parent_dirs();
    assert_eq!(parents.len(), 9);
    assert!(parents.iter().all(|p| p.ends_with("kennel-test-1")));
}

#[test]
fn bad_parents_and_names_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let err = Cgroups::detect_at(root.path(), Some("/a/../b"), HYBRID_SELF, HYBRID_MOUNTINFO)
        .unwrap_err();
    assert!(matches!(err, CgroupError::InvalidParent { .. }), "{err}");
    let cg = detect(root.path(), Some("p"));
    for bad in ["", "a/b", "..", "supervisor"] {
        let err = cg.create(bad, &Resources::default()).unwrap_err();
        assert!(
            matches!(err, CgroupError::InvalidName { .. }),
            "{bad}: {err}"
        );
    }
}

#[test]
fn no_cgroup_mounts_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let err = Cgroups::detect_at(
        root.path(),
        None,
        "0::/\n",
        "22 1 0:21 / / rw - ext4 /dev/vda rw\n",
    )
    .unwrap_err();
    assert!(matches!(err, CgroupError::NotMounted { .. }), "{err}");
    assert!(err
        .to_string()
        .starts_with("no cgroup filesystem in /proc/self/mountinfo"));
}

#[test]
fn mount_root_of_a_bind_mounted_subtree_is_stripped() {
    let root = tempfile::tempdir().unwrap();
    let mountinfo = "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
    let cg = Cgroups::detect_at(root.path(), None, "4:memory:/docker/abc/x\n", mountinfo).unwrap();
    let unit = cg.unit("web");
    assert_eq!(unit.dirs().len(), 1);
    assert_eq!(
        unit.dirs()[0].path,
        root.path().join("sys/fs/cgroup/memory/x/web")
    );
}

/// podman's default on a v1 host: the container's own cgroups, bind-mounted read-only
/// (the mount option `ro`; the super options still say `rw`).
const PODMAN_RO_MOUNTINFO: &str = "\
88 81 0:48 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
89 88 0:29 /libpod_parent/libpod-0f49 /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
92 88 0:32 /libpod_parent/libpod-0f49 /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,memory
";

const PODMAN_SELF: &str = "4:memory:/libpod_parent/libpod-0f49\n1:cpu:/libpod_parent/libpod-0f49\n0::/libpod_parent/libpod-0f49\n";

#[test]
fn read_only_cgroup_mounts_are_an_error_naming_the_mount() {
    let root = tempfile::tempdir().unwrap();
    let err = Cgroups::detect_at(root.path(), None, PODMAN_SELF, PODMAN_RO_MOUNTINFO).unwrap_err();
    assert!(matches!(err, CgroupError::ReadOnly { .. }), "{err}");
    let cpu = root.path().join("sys/fs/cgroup/cpu");
    assert_eq!(
        err.to_string(),
        format!("{} is mounted read-only", cpu.display())
    );
}

#[test]
fn the_same_mounts_writable_are_used_at_their_root() {
    // `podman run --privileged`: the same bind mounts, `rw`.
    let root = tempfile::tempdir().unwrap();
    let rw = PODMAN_RO_MOUNTINFO.replace(" ro,", " rw,");
    let cg = Cgroups::detect_at(root.path(), None, PODMAN_SELF, &rw).unwrap();
    let dirs: Vec<_> = cg
        .unit("web")
        .dirs()
        .iter()
        .map(|d| d.path.clone())
        .collect();
    assert_eq!(
        dirs,
        [
            root.path().join("sys/fs/cgroup/cpu/web"),
            root.path().join("sys/fs/cgroup/memory/web")
        ]
    );
}

fn limits() -> Resources {
    Resources {
        memory_max: Some(32 << 20),
        cpu_millis: Some(500),
        cpu_weight: Some(200),
        pids_max: Some(64),
        io_weight: Some(300),
        cpuset: Some("1".into()),
    }
}

#[test]
fn prepare_initializes_cpuset_and_create_writes_v1_limits() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    hybrid_tree(r, &["kt", "kt/web"]);
    let cg = detect(r, Some("kt"));
    cg.prepare().unwrap();
    assert_eq!(read(r.join("sys/fs/cgroup/cpuset/kt/cpuset.cpus")), "0-3");
    assert_eq!(read(r.join("sys/fs/cgroup/cpuset/kt/cpuset.mems")), "0");

    let unit = cg.create("web", &limits()).unwrap();
    let cg_root = r.join("sys/fs/cgroup");
    let file = |rel: &str| read(cg_root.join(rel));
    assert_eq!(file("memory/kt/web/memory.limit_in_bytes"), "33554432");
    assert_eq!(file("cpu,cpuacct/kt/web/cpu.cfs_quota_us"), "50000");
    assert_eq!(file("cpu,cpuacct/kt/web/cpu.cfs_period_us"), "100000");
    assert_eq!(file("cpu,cpuacct/kt/web/cpu.shares"), "2048");
    assert_eq!(file("pids/kt/web/pids.max"), "64");
    assert_eq!(file("cpuset/kt/web/cpuset.cpus"), "1");
    assert_eq!(file("cpuset/kt/web/cpuset.mems"), "0");
    // No blkio.weight in this tree (no BFQ): a warning, not an error.
    assert_eq!(unit.warnings().len(), 1, "{:?}", unit.warnings());
    assert!(unit.warnings()[0].contains("blkio/kt/web/blkio.weight does not exist"));

    // Re-applied with no limits: everything back to the kernel defaults.
    let again = cg.create("web", &Resources::default()).unwrap();
    assert!(again.warnings().is_empty());
    assert_eq!(file("memory/kt/web/memory.limit_in_bytes"), "-1");
    assert_eq!(file("cpu,cpuacct/kt/web/cpu.cfs_quota_us"), "-1");
    assert_eq!(file("cpu,cpuacct/kt/web/cpu.shares"), "1024");
    assert_eq!(file("pids/kt/web/pids.max"), "max");
    assert_eq!(file("cpuset/kt/web/cpuset.cpus"), "0-3");
}

#[test]
fn blkio_weight_is_scaled_when_present() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    hybrid_tree(r, &["kt", "kt/web"]);
    fs::write(r.join("sys/fs/cgroup/blkio/kt/web/blkio.weight"), "500").unwrap();
    let cg = detect(r, Some("kt"));
    cg.prepare().unwrap();
    let unit = cg.create("web", &limits()).unwrap();
    assert!(unit.warnings().is_empty());
    // 300 of 1..10000 -> 10 + 299 * 990 / 9999
    assert_eq!(
        read(r.join("sys/fs/cgroup/blkio/kt/web/blkio.weight")),
        "39"
    );
}

#[test]
fn a_refused_write_names_the_file() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    hybrid_tree(r, &["kt", "kt/web"]);
    fs::remove_file(r.join("sys/fs/cgroup/memory/kt/web/memory.limit_in_bytes")).unwrap();
    let cg = detect(r, Some("kt"));
    let err = cg.create("web", &limits()).unwrap_err();
    let want = format!(
        "write {}: no such file or directory",
        r.join("sys/fs/cgroup/memory/kt/web/memory.limit_in_bytes")
            .display()
    );
    assert_eq!(err.to_string(), want);
}

#[test]
fn join_writes_every_procs_file_and_freezer_toggles() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    hybrid_tree(r, &["kt", "kt/web"]);
    let cg = detect(r, Some("kt"));
    let unit = cg.create("web", &Resources::default()).unwrap();
    unit.join(4242).unwrap();
    for f in unit.procs_files() {
        assert_eq!(read(&f), "4242", "{}", f.display());
    }
    // Tracking on hybrid: the unified tree.
    assert_eq!(unit.pids().unwrap(), [4242]);
    assert!(!unit.is_empty());
    unit.freeze().unwrap();
    assert_eq!(
        read(r.join("sys/fs/cgroup/freezer/kt/web/freezer.state")),
        "FROZEN"
    );
    unit.thaw().unwrap();
    assert_eq!(
        read(r.join("sys/fs/cgroup/freezer/kt/web/freezer.state")),
        "THAWED"
    );
}

#[test]
fn v1_stats_and_oom_kills() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    hybrid_tree(r, &["kt", "kt/web"]);
    let cg = detect(r, Some("kt"));
    let unit = cg.unit("web");
    let web = |h: &str| r.join("sys/fs/cgroup").join(h).join("kt/web");
    fs::write(web("memory").join("memory.usage_in_bytes"), "1048576\n").unwrap();
    fs::write(web("memory").join("memory.max_usage_in_bytes"), "2097152\n").unwrap();
    fs::write(web("cpu,cpuacct").join("cpuacct.usage"), "123456789\n").unwrap();
    fs::write(web("pids").join("pids.current"), "3\n").unwrap();
    fs::write(
        web("memory").join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    )
    .unwrap();
    let stats = unit.stats();
    assert_eq!(stats.memory_current, Some(1 << 20));
    assert_eq!(stats.memory_peak, Some(2 << 20));
    assert_eq!(stats.cpu_usage_ns, Some(123_456_789));
    assert_eq!(stats.tasks, Some(3));
    assert_eq!(unit.oom_kills(), 2);

    // The same numbers through files kept open, and again after they changed.
    let files = unit.stats_files();
    assert_eq!(files.read(&unit), stats);
    fs::write(web("memory").join("memory.usage_in_bytes"), "4096\n").unwrap();
    assert_eq!(files.read(&unit).memory_current, Some(4096));

    // A unit that does not exist: nothing known, nothing killed.
    let none = cg.unit("nope");
    assert_eq!(none.stats().memory_current, None);
    assert_eq!(none.stats().cpu_usage_ns, None);
    assert_eq!(none.oom_kills(), 0);
    assert!(none.is_empty());
}

#[test]
fn stale_lists_units_present_in_every_controller_hierarchy() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    hybrid_tree(r, &["kt", "kt/web", "kt/db"]);
    // Something else's cgroup in one hierarchy only.
    fs::create_dir(r.join("sys/fs/cgroup/memory/kt/other.slice")).unwrap();
    let cg = detect(r, Some("kt"));
    assert_eq!(cg.stale().unwrap(), ["db", "web"]);
}

#[test]
fn unit_cgroup_round_trips_through_json() {
    let root = tempfile::tempdir().unwrap();
    let cg = detect(root.path(), Some("kt"));
    let unit = cg.unit("web");
    let json = serde_json::to_string(&unit).unwrap();
    let back: kennel_cgroups::UnitCgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back, unit);
    assert_eq!(back.procs_files(), unit.procs_files());
}
