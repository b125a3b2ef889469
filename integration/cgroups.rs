//! Cgroups: every unit in its own cgroup with its `[resources]` as limits, an OOM kill
//! reported as the exit reason, a fork bomb stopped by `pids_max`, nothing a unit forked
//! surviving its stop, and no stale cgroup or mount after kennel itself was killed.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::ctr::{poll, Rig};
use crate::harness::alive;

#[test]
fn memory_max_oom_kill_is_reported_and_the_restart_policy_applies() {
    let s = Rig::new();
    s.unit(
        "hog",
        "[service]\ncommand = [\"/bin/sh\", \"-c\", \"a=$(head -c 200M /dev/zero | tr '\\\\0' x); echo survived\"]\n\
         [restart]\npolicy = \"no\"\n[resources]\nmemory_max = \"16M\"\n",
    );
    s.up();
    s.wait_state("hog", "failed");
    let st = s.status("hog");
    assert_eq!(st["detail"], "oom-killed", "{st}");
    assert_eq!(st["last_exit"]["signal"], libc::SIGKILL, "{st}");
    s.wait_log(
        "hog",
        "kennel",
        "oom-killed: the unit reached its memory_max",
    );
    assert!(!s.log("hog").contains("survived"));
}

#[test]
fn pids_max_stops_a_fork_bomb_inside_the_unit_only() {
    let s = Rig::new();
    // perl reports failed forks instead of dying of the first one, as a shell would.
    let bomb = "$| = 1; my ($ok, $failed) = (0, 0); \
                for (1..100) { my $p = fork; if (!defined $p) { $failed++ } \
                elsif ($p == 0) { sleep 100000; exit 0 } else { $ok++ } } \
                print \"ok=$ok failed=$failed\\n\"; sleep 100000;";
    s.unit(
        "bomb",
        &format!(
            "[service]\ncommand = [\"/usr/bin/perl\", \"-e\", {}]\n[resources]\npids_max = 20\n",
            serde_json::to_string(bomb).unwrap()
        ),
    );
    s.up();
    s.wait_for("the bomb's report", || s.log("bomb").contains("stdout ok="));
    let line = s
        .records("bomb")
        .into_iter()
        .find(|r| r.text.starts_with("ok="))
        .unwrap()
        .text;
    let num = |key: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line:?}"))
    };
    assert!(num("ok=") < 20 && num("failed=") > 80, "{line}");
    let tasks = s.status("bomb")["resources"]["tasks"].as_u64().unwrap();
    assert!(tasks <= 20, "tasks {tasks}");
    // The machine is fine: processes are still created outside the unit.
    assert!(Command::new("true").status().unwrap().success());
    assert_eq!(s.state("bomb"), "up");
}

#[test]
fn double_forked_and_setsid_processes_die_with_the_units_stop() {
    let s = Rig::new();
    s.script_unit(
        "forker",
        "export D\n( sh -c 'echo $$ > $D/double.pid; exec sleep 100000' & )\n\
         setsid sh -c 'echo $$ > $D/setsid.pid; exec sleep 100000' &\n\
         exec sleep 100000",
        "",
    );
    s.up();
    let double = s.host_pid(s.wait_file("double.pid").trim().parse().unwrap());
    let setsid = s.host_pid(s.wait_file("setsid.pid").trim().parse().unwrap());
    assert!(alive(double) && alive(setsid));
    s.ok(&["stop", "forker"]);
    s.wait_for(
        "the double-forked and setsid'd processes to be gone",
        || !alive(double) && !alive(setsid),
    );
    s.wait_for("the unit's cgroup to be removed", || {
        s.cgroup.unit_dirs("forker").is_empty()
    });
}

#[test]
fn limits_are_written_to_the_cgroup_and_status_shows_usage() {
    let s = Rig::new();
    s.unit(
        "limited",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n\
         [resources]\nmemory_max = \"32M\"\npids_max = 20\ncpu = 0.5\n",
    );
    s.up();
    s.wait_state("limited", "up");
    let read = |controller: &str, v1: &str, v2: &str| {
        let dir = s.cgroup.unit_dir(controller, "limited");
        fs::read_to_string(dir.join(v1))
            .or_else(|_| fs::read_to_string(dir.join(v2)))
            .unwrap_or_else(|e| panic!("{}/{v1}: {e}", dir.display()))
            .trim()
            .to_string()
    };
    assert_eq!(
        read("memory", "memory.limit_in_bytes", "memory.max"),
        "33554432"
    );
    assert_eq!(read("pids", "pids.max", "pids.max"), "20");
    let cpu = read("cpu", "cpu.cfs_quota_us", "cpu.max");
    assert!(cpu == "50000" || cpu == "50000 100000", "cpu quota {cpu}");
    s.wait_for("the unit's process in its cgroup", || {
        !read("pids", "cgroup.procs", "cgroup.procs").is_empty()
    });

    s.wait_for("memory and task counts", || {
        let r = &s.status("limited")["resources"];
        r["memory_current"].as_u64().is_some_and(|m| m > 0) && r["tasks"].as_u64() >= Some(1)
    });
}

#[test]
fn killed_kennel_leaves_no_stale_cgroup_or_mount_and_its_successor_runs_the_unit() {
    let s = Rig::new();
    s.unit(
        "web",
        "[service]\ncommand = [\"/bin/sh\", \"-c\", \"echo started; exec sleep 100000\"]\n\
         [container]\nrootfs = [\"busybox\"]\n[resources]\npids_max = 50\n",
    );
    s.up();
    s.wait_started("web");
    // (device, inode): two hierarchies may give the same inode number to their dirs.
    let ids = |dirs: Vec<std::path::PathBuf>| -> Vec<(u64, u64)> {
        dirs.iter()
            .map(|d| {
                let m = fs::metadata(d).unwrap();
                (m.dev(), m.ino())
            })
            .collect()
    };
    let before = ids(s.cgroup.unit_dirs("web"));
    assert!(!before.is_empty());
    // A cgroup under the same parent that is not a unit's: kennel must leave it alone.
    let foreign: Vec<_> = s
        .cgroup
        .dirs()
        .iter()
        .map(|d| d.join("not-a-unit"))
        .collect();
    for d in &foreign {
        fs::create_dir(d).unwrap();
    }

    s.signal_daemon(libc::SIGKILL);
    s.wait_exit();
    poll("the unit's processes to be gone", || {
        let procs = s.cgroup.unit_dir("pids", "web").join("cgroup.procs");
        fs::read_to_string(procs).is_ok_and(|p| p.trim().is_empty())
    });
    assert_eq!(s.cgroup.unit_dirs("web").len(), before.len(), "left behind");
    assert!(
        s.sandbox_mounts(false).is_empty(),
        "{:?}",
        s.sandbox_mounts(false)
    );

    s.up();
    s.wait_stdout("web", "started", 2);
    let after = ids(s.cgroup.unit_dirs("web"));
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|i| !before.contains(i)),
        "the stale cgroups were removed and made anew: {before:?} -> {after:?}"
    );
    let gone: Vec<_> = foreign.iter().filter(|d| !d.is_dir()).collect();
    assert!(
        gone.is_empty(),
        "foreign cgroups removed: {gone:?}\n{}",
        s.daemon_output()
    );
    assert_eq!(s.state("web"), "up");
    assert!(
        s.sandbox_mounts(true).is_empty(),
        "{:?}",
        s.sandbox_mounts(true)
    );
}
