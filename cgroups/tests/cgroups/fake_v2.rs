//! The pure v2 layout on a fake tree: the supervisor leaf, subtree_control, limits, stats.

use std::fs;
use std::path::Path;

use kennel_cgroups::{Cgroups, Hierarchy, Version};
use kennel_units::Resources;

use crate::fake::*;

fn detect(root: &Path, parent: Option<&str>, self_text: &str) -> Cgroups {
    Cgroups::detect_at(root, parent, self_text, V2_MOUNTINFO).unwrap()
}

#[test]
fn detects_v2_and_nests_under_own_cgroup() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let cg = detect(r, None, V2_SELF);
    assert_eq!(cg.version(), Version::V2);
    let unit = cg.unit("web");
    assert_eq!(unit.dirs().len(), 1);
    assert_eq!(unit.dirs()[0].hierarchy, Hierarchy::Unified);
    let want = r.join("sys/fs/cgroup/system.slice/kennel.service/web");
    assert_eq!(unit.dirs()[0].path, want);
    assert_eq!(unit.display(), want.display().to_string());
    assert_eq!(unit.procs_files(), [want.join("cgroup.procs")]);

    // Already moved into the supervisor leaf (a second detect): same parent.
    let again = detect(r, None, "0::/system.slice/kennel.service/supervisor\n");
    assert_eq!(again.unit("web").dirs()[0].path, want);

    // An explicit parent.
    let explicit = detect(r, Some("/kennel-test-7"), V2_SELF);
    assert_eq!(
        explicit.unit("web").dirs()[0].path,
        r.join("sys/fs/cgroup/kennel-test-7/web")
    );
}

#[test]
fn prepare_moves_kennel_into_supervisor_then_enables_controllers() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let parent = r.join("sys/fs/cgroup/system.slice/kennel.service");
    let mut files = V2_FILES.to_vec();
    files.retain(|(n, _)| *n != "cgroup.controllers");
    files.push((
        "cgroup.controllers",
        "cpuset cpu io memory hugetlb pids rdma",
    ));
    cgroup(&parent, &files);
    cgroup(&parent.join("supervisor"), V2_FILES);
    let cg = detect(r, None, V2_SELF);
    cg.prepare().unwrap();
    assert_eq!(
        read(parent.join("supervisor/cgroup.procs")),
        std::process::id().to_string()
    );
    assert_eq!(
        read(parent.join("cgroup.subtree_control")),
        "+cpuset +cpu +io +memory +pids"
    );
}

#[test]
fn prepare_with_an_outside_parent_does_not_move_kennel() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let parent = r.join("sys/fs/cgroup/kennel-test");
    let mut files = V2_FILES.to_vec();
    files.retain(|(n, _)| *n != "cgroup.subtree_control" && *n != "cgroup.controllers");
    files.push(("cgroup.controllers", "cpu memory pids"));
    files.push(("cgroup.subtree_control", "memory"));
    cgroup(&parent, &files);
    let cg = detect(r, Some("kennel-test"), V2_SELF);
    cg.prepare().unwrap();
    assert!(!parent.join("supervisor").exists());
    // Only what is offered and not yet enabled.
    assert_eq!(read(parent.join("cgroup.subtree_control")), "+cpu +pids");
}

fn limits() -> Resources {
    Resources {
        memory_max: Some(32 << 20),
        cpu_millis: Some(500),
        cpu_weight: Some(200),
        pids_max: Some(64),
        io_weight: Some(300),
        cpuset: Some("0-1".into()),
    }
}

#[test]
fn create_writes_v2_limits_and_reapplies() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let web = r.join("sys/fs/cgroup/kt/web");
    cgroup(&web, V2_FILES);
    let cg = detect(r, Some("kt"), V2_SELF);
    let unit = cg.create("web", &limits()).unwrap();
    assert!(unit.warnings().is_empty());
    assert_eq!(read(web.join("memory.max")), "33554432");
    assert_eq!(read(web.join("cpu.max")), "50000 100000");
    assert_eq!(read(web.join("cpu.weight")), "200");
    assert_eq!(read(web.join("pids.max")), "64");
    assert_eq!(read(web.join("io.weight")), "default 300");
    assert_eq!(read(web.join("cpuset.cpus")), "0-1");

    cg.create("web", &Resources::default()).unwrap();
    assert_eq!(read(web.join("memory.max")), "max");
    assert_eq!(read(web.join("cpu.max")), "max 100000");
    assert_eq!(read(web.join("cpu.weight")), "100");
    assert_eq!(read(web.join("pids.max")), "max");
    assert_eq!(read(web.join("io.weight")), "default 100");
    assert_eq!(read(web.join("cpuset.cpus")), "");
}

#[test]
fn missing_controller_file_is_an_error_but_io_only_warns() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let web = r.join("sys/fs/cgroup/kt/web");
    cgroup(&web, V2_FILES);
    fs::remove_file(web.join("io.weight")).unwrap();
    let cg = detect(r, Some("kt"), V2_SELF);
    let unit = cg.create("web", &limits()).unwrap();
    assert_eq!(unit.warnings().len(), 1);
    assert!(unit.warnings()[0].starts_with("io_weight ignored: "));

    fs::remove_file(web.join("memory.max")).unwrap();
    let err = cg.create("web", &limits()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "write {}: no such file or directory",
            web.join("memory.max").display()
        )
    );
    // Nothing asked of the memory controller: no error.
    cg.create("web", &Resources::default()).unwrap();
}

#[test]
fn v2_stats_oom_freeze_and_stale() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let kt = r.join("sys/fs/cgroup/kt");
    let web = kt.join("web");
    cgroup(&web, V2_FILES);
    cgroup(&kt.join("supervisor"), V2_FILES);
    cgroup(&kt.join("db"), V2_FILES);
    fs::write(web.join("memory.current"), "4096\n").unwrap();
    fs::write(web.join("memory.peak"), "8192\n").unwrap();
    fs::write(
        web.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
    )
    .unwrap();
    fs::write(web.join("pids.current"), "2\n").unwrap();
    fs::write(
        web.join("memory.events"),
        "low 0\nhigh 0\nmax 40\noom 1\noom_kill 1\noom_group_kill 0\n",
    )
    .unwrap();
    let cg = detect(r, Some("kt"), V2_SELF);
    let unit = cg.unit("web");
    let stats = unit.stats();
    assert_eq!(stats.memory_current, Some(4096));
    assert_eq!(stats.memory_peak, Some(8192));
    assert_eq!(stats.cpu_usage_ns, Some(1_500_000));
    assert_eq!(stats.tasks, Some(2));
    assert_eq!(unit.oom_kills(), 1);

    // No pids controller: tasks from cgroup.procs.
    fs::remove_file(web.join("pids.current")).unwrap();
    fs::write(web.join("cgroup.procs"), "10\n11\n").unwrap();
    assert_eq!(unit.stats().tasks, Some(2));
    assert_eq!(unit.pids().unwrap(), [10, 11]);

    unit.freeze().unwrap();
    assert_eq!(read(web.join("cgroup.freeze")), "1");
    unit.thaw().unwrap();
    assert_eq!(read(web.join("cgroup.freeze")), "0");

    assert_eq!(cg.stale().unwrap(), ["db", "web"]);
}

/// A delegated unit on v2: the controllers the unit offers are enabled for its `payload`
/// child, where its processes go; the limits stay on the unit.
#[test]
fn delegate_enables_the_controllers_for_the_payload_and_joins_it() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let web = r.join("sys/fs/cgroup/kt/web");
    cgroup(&web, V2_FILES);
    let cg = detect(r, Some("kt"), V2_SELF);
    let mut unit = cg.create("web", &limits()).unwrap();
    assert_eq!(unit.entry(), Some(web.clone()));
    unit.delegate(kennel_cgroups::Part::Unified).unwrap();
    assert!(web.join("payload").is_dir());
    assert_eq!(
        read(web.join("cgroup.subtree_control")),
        "+cpuset +cpu +io +memory +pids"
    );
    assert_eq!(read(web.join("memory.max")), "33554432");
    assert_eq!(unit.entry(), Some(web.join("payload")));
    assert_eq!(unit.join_files(), [web.join("payload/cgroup.procs")]);
    assert_eq!(unit.procs_files(), [web.join("payload/cgroup.procs")]);
    assert_eq!(unit.hierarchies(), [Hierarchy::Unified]);
    // Sent to the helper and back, it still joins the payload.
    let json = serde_json::to_string(&unit).unwrap();
    let back: kennel_cgroups::UnitCgroup = serde_json::from_str(&json).unwrap();
    assert_eq!(back.join_files(), unit.join_files());
}
