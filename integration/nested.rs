//! Nested supervisors (`[container] cgroup = "delegate"`): the container gets its own
//! cgroup subtree, writable, while its unit's limits stay above it out of its sight;
//! kennel in kennel, whose inner `[resources]` unit is limited below the outer unit's
//! subtree, and nothing of either left once the outer unit ends; and without `delegate`,
//! no cgroup file system inside at all.

use std::fs;
use std::path::{Path, PathBuf};

use crate::ctr::{poll, Rig};
use crate::harness::{alive, skip, Missing, KENNEL};

/// Keep a container's service running once its script is done.
const STAY: &str = "exec sleep 100000";

/// This host's memory limit file (v1 memory hierarchy, or v2).
fn memory_limit_file(dir: &Path) -> PathBuf {
    if dir.join("memory.limit_in_bytes").exists() {
        dir.join("memory.limit_in_bytes")
    } else {
        dir.join("memory.max")
    }
}

fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

#[test]
fn without_delegate_a_container_sees_no_cgroup_file_system() {
    let s = Rig::new();
    s.sh_container(
        "plain",
        &format!(
            "echo mounts=$(grep -c ' - cgroup' /proc/self/mountinfo); echo entries=$(ls -A /sys/fs/cgroup | wc -l); echo listed; {STAY}"
        ),
        "",
    );
    s.up();
    let out = s.wait_stdout("plain", "listed", 1);
    assert!(out.contains(&"mounts=0".to_string()), "{out:?}");
    assert!(out.contains(&"entries=0".to_string()), "{out:?}");
}

/// Inside, the container's root cgroup is its unit's `payload`: writable (a sub-cgroup is
/// made, and the payload's own memory limit raised), while the unit's limit, on the
/// directory above, stays as the unit file says; the sub-cgroup goes with the unit.
#[test]
fn a_delegated_container_gets_its_own_subtree_writable_and_not_its_limits() {
    let s = Rig::new();
    let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    let (mem, limit) = if v1 {
        ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
    } else {
        ("/sys/fs/cgroup", "memory.max")
    };
    s.sh_container(
        "nest",
        &format!(
            "grep ' - cgroup' /proc/self/mountinfo | cut -d' ' -f4,5; \
             mkdir {mem}/inner && echo made; \
             echo 1073741824 > {mem}/{limit} && echo raised; \
             echo listed; {STAY}"
        ),
        "cgroup = \"delegate\"\n[resources]\nmemory_max = \"64M\"\n",
    );
    s.up();
    let out = s.wait_stdout("nest", "listed", 1);
    assert!(
        out.contains(&"made".to_string()),
        "{out:?}\n{}",
        s.log("nest")
    );
    assert!(out.contains(&"raised".to_string()), "{out:?}");
    // Every cgroup mount inside has the payload as its root.
    let mounts: Vec<&String> = out
        .iter()
        .filter(|l| l.contains("/sys/fs/cgroup"))
        .collect();
    assert!(!mounts.is_empty(), "{out:?}");
    for m in &mounts {
        assert!(
            m.starts_with("/ "),
            "not rooted at the payload: {m} ({out:?})"
        );
    }

    let unit = s.cgroup.unit_dir("memory", "nest");
    assert_eq!(read(&memory_limit_file(&unit)), "67108864");
    assert!(unit.join("payload/inner").is_dir());
    assert_eq!(
        read(&memory_limit_file(&unit.join("payload"))),
        "1073741824"
    );
    // The service lives in the payload, in every hierarchy.
    let pid = s.host_pid(s.pid("nest"));
    let host = fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("host view");
    let mine = |l: &&str| l.contains(s.cgroup.name.trim_start_matches('/'));
    assert!(host.lines().filter(mine).count() > 0, "{host}");
    for l in host.lines().filter(mine) {
        assert!(l.ends_with("/nest/payload"), "{l} (all: {host})");
    }

    s.ok(&["stop", "nest"]);
    poll("the unit's cgroup to go", || {
        s.cgroup.unit_dirs("nest").is_empty()
    });
}

/// The static kennel built beside the binary under test (`cargo build --release --target
/// x86_64-unknown-linux-musl -p kennel`): the busybox layer has no libc for the other.
fn static_kennel() -> Option<PathBuf> {
    let target = Path::new(KENNEL).parent()?.parent()?;
    let path = target.join("x86_64-unknown-linux-musl/release/kennel");
    path.is_file().then_some(path)
}

/// kennel in kennel: the outer container runs `kennel up` on an inner unit with
/// `[resources]`. From the host, the inner unit's cgroup is below the outer unit's
/// payload, with its limits, and its process in it. Killed hard, the outer unit leaves
/// nothing: the cgroups the inner kennel made (and never got to remove) go with it,
/// deepest first, and the inner service is gone. Started again and stopped, the same.
#[test]
fn kennel_in_kennel_limits_the_inner_unit_and_leaves_nothing_behind() {
    let Some(inner_kennel) = static_kennel() else {
        skip(
            Missing::Provided,
            "no static kennel: cargo build --release --locked --target x86_64-unknown-linux-musl -p kennel",
        );
        return;
    };
    let s = Rig::new();
    let inner_units = s.path("inner-units");
    fs::create_dir_all(&inner_units).expect("mkdir inner units");
    fs::write(
        inner_units.join("inner.toml"),
        "[service]\ncommand = [\"/bin/sh\", \"-c\", \"echo inner-started; exec sleep 4242\"]\n\
         [resources]\nmemory_max = \"48M\"\npids_max = 77\n",
    )
    .expect("write inner unit");
    s.unit(
        "outer",
        &format!(
            "[service]\ncommand = [\"/bin/kennel\", \"up\"]\n[restart]\npolicy = \"no\"\n\
             [container]\nrootfs = [\"busybox\"]\ncgroup = \"delegate\"\nvolumes = [\n\
             {{ source = \"{}\", target = \"/bin/kennel\", read_only = true }},\n\
             {{ source = \"{}\", target = \"/etc/kennel/units\", read_only = true }},\n]\n\
             [resources]\nmemory_max = \"256M\"\n",
            inner_kennel.display(),
            inner_units.display()
        ),
    );
    s.up();

    let inner_of = |controller: &str| s.cgroup.unit_dir(controller, "outer").join("payload/inner");
    let check_inner_up = || -> i32 {
        s.wait_for("the inner unit's cgroup with its limits", || {
            memory_limit_file(&inner_of("memory")).exists()
        });
        assert_eq!(read(&memory_limit_file(&inner_of("memory"))), "50331648");
        assert_eq!(read(&inner_of("pids").join("pids.max")), "77");
        // The outer unit's own limit is on its directory, above the payload.
        let outer = s.cgroup.unit_dir("memory", "outer");
        assert_eq!(read(&memory_limit_file(&outer)), "268435456");
        let mut found = Vec::new();
        s.wait_for("the inner service", || {
            found = s.find_process(&["sleep", "4242"]);
            !found.is_empty()
        });
        let pid = found[0];
        let procs = read(&inner_of("memory").join("cgroup.procs"));
        assert!(
            procs.lines().any(|l| l == pid.to_string()),
            "inner service {pid} not in the inner cgroup: {procs}\n{}",
            s.log("outer")
        );
        pid
    };

    let pid = check_inner_up();
    // Killed hard: the inner kennel cleans nothing up.
    let outer = s.host_pid(s.pid("outer"));
    // SAFETY: kill(2) of the outer unit's process, which this test found by its pid.
    unsafe {
        libc::kill(outer, libc::SIGKILL);
    }
    s.wait_state("outer", "failed");
    poll("the outer unit's cgroup to go", || {
        s.cgroup.unit_dirs("outer").is_empty()
    });
    poll("the inner service to go", || !alive(pid));

    s.ok(&["start", "outer"]);
    let pid = check_inner_up();
    s.ok(&["stop", "outer"]);
    poll("the outer unit's cgroup to go", || {
        s.cgroup.unit_dirs("outer").is_empty()
    });
    poll("the inner service to go", || !alive(pid));
}
