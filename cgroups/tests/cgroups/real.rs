//! Real cgroups on this host (root only; skipped out loud otherwise, a failure under CI):
//! limits read back, join, kill_all reaching a setsid'd grandchild, an OOM kill counted,
//! remove leaving nothing.
//! Each test works under its own parent `/kennel-cgtest-PID-N`, removed by a guard even
//! when the test fails; nothing else is touched.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use kennel_cgroups::{Cgroups, Hierarchy, Part, UnitCgroup, Version, PAYLOAD_LEAF};
use kennel_units::Resources;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A unique cgroup parent; dropping it removes the units made in it, then the parent.
struct Scratch {
    cg: Cgroups,
    units: Vec<String>,
}

impl Scratch {
    /// `None` (the test is skipped: [`crate::skip`]) when not root.
    fn new() -> Option<Scratch> {
        if !crate::skip::need_root() {
            return None;
        }
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let parent = format!("/kennel-cgtest-{}-{n}", std::process::id());
        let cg = Cgroups::detect(Some(&parent)).unwrap();
        for dir in cg.parent_dirs() {
            assert!(!dir.exists(), "{} exists already", dir.display());
        }
        let scratch = Scratch {
            cg,
            units: Vec::new(),
        };
        scratch.cg.prepare().unwrap();
        Some(scratch)
    }

    fn create(&mut self, name: &str, res: &Resources) -> UnitCgroup {
        self.units.push(name.to_string());
        self.cg.create(name, res).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for name in &self.units {
            if let Err(e) = self.cg.unit(name).remove() {
                eprintln!("cleanup: {e}");
            }
        }
        for dir in self.cg.parent_dirs() {
            if let Err(e) = fs::remove_dir(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("cleanup: remove {}: {e}", dir.display());
                }
            }
        }
    }
}

/// A child process killed and reaped when dropped.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Kid {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

/// `sh -c SCRIPT` whose script starts with `read go`: it waits for [`go`] so it can be
/// joined to the unit before it forks or allocates.
fn held_sh(script: &str) -> Kid {
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    Kid(child)
}

fn go(kid: &mut Kid) {
    let stdin = kid.0.stdin.as_mut().unwrap();
    stdin.write_all(b"go\n").unwrap();
    stdin.flush().unwrap();
}

/// The directory of the v1 hierarchy carrying `controller` (or the v2 directory).
fn dir(unit: &UnitCgroup, controller: &str) -> PathBuf {
    unit.dirs()
        .iter()
        .find(|d| match &d.hierarchy {
            Hierarchy::V1 { controllers } => controllers.iter().any(|c| c == controller),
            Hierarchy::Unified => unit.version() == Version::V2,
        })
        .unwrap_or_else(|| panic!("no {controller} directory in {}", unit.display()))
        .path
        .clone()
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim()
        .to_string()
}

fn gone_or_zombie(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn detect_on_this_host_without_touching_anything() {
    let cg = Cgroups::detect(None).unwrap();
    let unit = cg.unit("web");
    assert!(!unit.dirs().is_empty());
    for f in unit.procs_files() {
        assert!(f.starts_with("/sys/fs/cgroup"), "{}", f.display());
        assert!(!f.exists(), "{}", f.display());
    }
    let unified_mounted = Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists();
    if cg.version() == Version::V1 && unified_mounted {
        assert!(unit
            .dirs()
            .iter()
            .any(|d| d.hierarchy == Hierarchy::Unified));
    }
}

#[test]
fn limits_read_back_join_stats_kill_remove() {
    let Some(mut s) = Scratch::new() else { return };
    let res = Resources {
        memory_max: Some(64 << 20),
        cpu_millis: Some(500),
        cpu_weight: Some(200),
        pids_max: Some(100),
        io_weight: Some(300),
        cpuset: Some("0".into()),
    };
    let unit = s.create("web", &res);
    match unit.version() {
        Version::V1 => {
            assert_eq!(
                read(dir(&unit, "memory").join("memory.limit_in_bytes")),
                "67108864"
            );
            assert_eq!(read(dir(&unit, "cpu").join("cpu.cfs_quota_us")), "50000");
            assert_eq!(read(dir(&unit, "cpu").join("cpu.cfs_period_us")), "100000");
            assert_eq!(read(dir(&unit, "cpu").join("cpu.shares")), "2048");
            assert_eq!(read(dir(&unit, "pids").join("pids.max")), "100");
            let cpuset = dir(&unit, "cpuset");
            assert_eq!(read(cpuset.join("cpuset.cpus")), "0");
            let mems = read(cpuset.parent().unwrap().join("cpuset.mems"));
            assert!(!mems.is_empty());
            assert_eq!(read(cpuset.join("cpuset.mems")), mems);
            let blkio = dir(&unit, "blkio");
            if blkio.join("blkio.weight").exists() {
                assert_eq!(read(blkio.join("blkio.weight")), "39");
            } else if !blkio.join("blkio.bfq.weight").exists() {
                assert!(unit.warnings().iter().any(|w| w.contains("blkio.weight")));
            }
        }
        Version::V2 => {
            let d = dir(&unit, "memory");
            assert_eq!(read(d.join("memory.max")), "67108864");
            assert_eq!(read(d.join("cpu.max")), "50000 100000");
            assert_eq!(read(d.join("cpu.weight")), "200");
            assert_eq!(read(d.join("pids.max")), "100");
            assert_eq!(read(d.join("cpuset.cpus")), "0");
        }
    }

    let kid = Kid(Command::new("sleep").arg("1000").spawn().unwrap());
    unit.join(kid.pid()).unwrap();
    assert_eq!(unit.pids().unwrap(), [kid.pid()]);
    for f in unit.procs_files() {
        assert_eq!(read(&f), kid.pid().to_string(), "{}", f.display());
    }
    let stats = unit.stats();
    assert!(stats.tasks >= Some(1), "{stats:?}");
    assert!(stats.memory_current.is_some(), "{stats:?}");
    assert!(stats.memory_peak.is_some(), "{stats:?}");
    assert!(stats.cpu_usage_ns.is_some(), "{stats:?}");
    assert_eq!(unit.oom_kills(), 0);

    unit.freeze().unwrap();
    unit.thaw().unwrap();

    // Idempotent: created again with other limits, the cgroup and its process stay.
    let again = s.cg.create("web", &Resources::default()).unwrap();
    assert_eq!(again.pids().unwrap(), [kid.pid()]);

    unit.kill_all().unwrap();
    let mut kid = kid;
    let status = kid.0.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(unit.is_empty());
    unit.remove().unwrap();
    for d in unit.dirs() {
        assert!(!d.path.exists(), "{}", d.path.display());
    }
}

/// Runs a unit that double-forks a setsid'd grandchild, then kills it all with `unit`.
fn kill_reaches_grandchild(s: &mut Scratch, name: &str, strip_unified: bool) {
    let created = s.create(name, &Resources::default());
    let unit = if strip_unified {
        // The same cgroup seen without the unified tree: no cgroup.kill, the freezer path.
        let mut json = serde_json::to_value(&created).unwrap();
        let dirs = json["dirs"].as_array_mut().unwrap();
        dirs.retain(|d| d["hierarchy"] != "unified");
        serde_json::from_value::<UnitCgroup>(json).unwrap()
    } else {
        created
    };
    let mut kid = held_sh("setsid sh -c 'sleep 1000 & echo $!'; exec sleep 1000");
    unit.join(kid.pid()).unwrap();
    go(&mut kid);
    let mut line = String::new();
    BufReader::new(kid.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let grandchild: i32 = line.trim().parse().unwrap();
    let pids = unit.pids().unwrap();
    assert!(pids.contains(&grandchild), "{grandchild} not in {pids:?}");
    assert!(pids.contains(&kid.pid()), "{} not in {pids:?}", kid.pid());

    unit.kill_all().unwrap();
    let status = kid.0.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(unit.is_empty());
    assert!(
        gone_or_zombie(grandchild),
        "grandchild {grandchild} survived"
    );
    s.cg.unit(name).remove().unwrap();
}

#[test]
fn kill_all_reaches_a_setsid_grandchild() {
    let Some(mut s) = Scratch::new() else { return };
    kill_reaches_grandchild(&mut s, "forker", false);
}

#[test]
fn kill_all_without_cgroup_kill_uses_the_v1_freezer() {
    let Some(mut s) = Scratch::new() else { return };
    if s.cg.version() == Version::V2 {
        return;
    }
    kill_reaches_grandchild(&mut s, "forker", true);
}

#[test]
fn oom_kill_is_counted_and_remove_leaves_nothing() {
    let Some(mut s) = Scratch::new() else { return };
    let res = Resources {
        memory_max: Some(32 << 20),
        ..Default::default()
    };
    let unit = s.create("hog", &res);
    // tail keeps the last 10 lines; /dev/zero has no newline, so it grows without end.
    let mut kid = held_sh("exec tail /dev/zero");
    unit.join(kid.pid()).unwrap();
    go(&mut kid);
    let status = kid.0.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(unit.oom_kills() >= 1, "oom_kills = {}", unit.oom_kills());
    let peak = unit.stats().memory_peak;
    assert!(peak >= Some(16 << 20), "memory_peak = {peak:?}");
    unit.remove().unwrap();
    for d in unit.dirs() {
        assert!(!d.path.exists(), "{}", d.path.display());
    }
    assert_eq!(s.cg.stale().unwrap(), Vec::<String>::new());
}

#[test]
fn joins_go_through_the_unified_tree_first() {
    let Some(mut s) = Scratch::new() else { return };
    let unit = s.create("order", &Resources::default());
    let Some(unified) = unit.unified().map(Path::to_path_buf) else {
        return;
    };
    for files in [unit.join_files(), unit.procs_files()] {
        assert!(
            files.first().is_some_and(|f| f.starts_with(&unified)),
            "the unified tree is not joined first: {files:?}"
        );
    }
}

/// A process that is in the unit's v1 directories only (nothing kennel starts ends up so,
/// but a root service can put one there): the unified tree says "not populated", and
/// `remove` must still kill it and remove every directory.
#[test]
fn remove_kills_a_process_the_unified_tree_does_not_show() {
    let Some(mut s) = Scratch::new() else { return };
    let unit = s.create("v1only", &Resources::default());
    if unit.version() != Version::V1 || unit.unified().is_none() {
        return; // only hybrid hosts have v1 directories beside a unified one
    }
    let mut kid = held_sh("exec sleep 1000");
    for d in unit.dirs() {
        if d.hierarchy != Hierarchy::Unified {
            fs::write(d.path.join("cgroup.procs"), kid.pid().to_string()).unwrap();
        }
    }
    go(&mut kid);
    assert_eq!(unit.populated(), Some(false));
    assert!(!unit.is_empty());
    unit.remove().unwrap();
    let status = kid.0.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    for d in unit.dirs() {
        assert!(!d.path.exists(), "{} left", d.path.display());
    }
}

#[test]
fn idle_means_empty_and_not_frozen() {
    let Some(mut s) = Scratch::new() else { return };
    let unit = s.create("idle", &Resources::default());
    let Some(unified) = unit.unified().map(Path::to_path_buf) else {
        return;
    };
    assert!(unit.idle(), "a fresh cgroup is idle");
    let freeze = unified.join("cgroup.freeze");
    if freeze.exists() {
        fs::write(&freeze, "1").unwrap();
        let frozen = unit.idle();
        fs::write(&freeze, "0").unwrap();
        assert!(!frozen, "a frozen cgroup is not idle");
    }
    let mut kid = held_sh("exec sleep 1000");
    fs::write(unified.join("cgroup.procs"), kid.pid().to_string()).unwrap();
    go(&mut kid);
    assert!(!unit.idle(), "a populated cgroup is not idle");
    unit.remove().unwrap();
}

/// A delegated unit (a container with a supervisor inside): its processes live in the
/// `payload` child, the limits stay on the unit's directory above it; what they make
/// below the child (an inner supervisor's own unit cgroups, with processes) is killed and
/// removed with the unit, deepest first.
#[test]
fn a_delegated_unit_keeps_its_limits_above_its_payload_and_goes_whole() {
    let Some(mut s) = Scratch::new() else { return };
    let res = Resources {
        memory_max: Some(64 << 20),
        pids_max: Some(100),
        ..Default::default()
    };
    let mut unit = s.create("nest", &res);
    unit.delegate(Part::Unified).unwrap();
    unit.delegate(Part::Rest).unwrap();
    assert!(unit.delegated());
    for d in unit.dirs() {
        assert!(d.path.join(PAYLOAD_LEAF).is_dir(), "{}", d.path.display());
    }
    assert_eq!(
        unit.entry(),
        unit.unified().map(|u| u.join(PAYLOAD_LEAF)),
        "processes start in the payload"
    );
    let (limit, pids) = match unit.version() {
        Version::V1 => ("memory.limit_in_bytes", "pids.max"),
        Version::V2 => ("memory.max", "pids.max"),
    };
    assert_eq!(read(dir(&unit, "memory").join(limit)), "67108864");
    assert_eq!(read(dir(&unit, "pids").join(pids)), "100");
    // The payload's own files are unlimited: the container sees those, not the unit's.
    assert_ne!(
        read(dir(&unit, "memory").join(PAYLOAD_LEAF).join(limit)),
        "67108864"
    );
    if unit.version() == Version::V2 {
        let control = read(dir(&unit, "memory").join("cgroup.subtree_control"));
        assert!(control.contains("memory"), "{control}");
        assert!(control.contains("pids"), "{control}");
    }

    // The payload, and below it an inner unit with a process of its own.
    let mut outer = held_sh("exec sleep 1000");
    unit.join(outer.pid()).unwrap();
    go(&mut outer);
    let mut inner = held_sh("exec sleep 1001");
    for d in unit.dirs() {
        let sub = d.path.join(PAYLOAD_LEAF).join("inner");
        fs::create_dir(&sub).unwrap();
        let cpuset = matches!(&d.hierarchy, Hierarchy::V1 { controllers } if controllers.iter().any(|c| c == "cpuset"));
        if cpuset {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let v = read(d.path.join(PAYLOAD_LEAF).join(f));
                fs::write(sub.join(f), v).unwrap();
            }
        }
        fs::write(sub.join("cgroup.procs"), inner.pid().to_string()).unwrap();
    }
    go(&mut inner);
    let own = fs::read_to_string(format!("/proc/{}/cgroup", outer.pid())).unwrap();
    let has_memory = |l: &&str| match unit.version() {
        Version::V2 => l.starts_with("0::"),
        Version::V1 => l
            .split(':')
            .nth(1)
            .is_some_and(|c| c.split(',').any(|c| c == "memory")),
    };
    let memory_line = own.lines().find(has_memory).unwrap();
    assert!(memory_line.ends_with("/nest/payload"), "{own}");
    let all = unit.pids().unwrap();
    assert!(
        all.contains(&outer.pid()) && all.contains(&inner.pid()),
        "{all:?}"
    );

    unit.remove().unwrap();
    for kid in [&mut outer, &mut inner] {
        assert_eq!(kid.0.wait().unwrap().signal(), Some(libc::SIGKILL));
    }
    for d in unit.dirs() {
        assert!(!d.path.exists(), "{} left", d.path.display());
    }
}
