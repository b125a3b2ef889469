//! `kennel oci` (kennel as an OCI runtime, docs/oci.md): a busybox bundle through runc's
//! commands. Each test has its own --root (a tempdir) and a cgroupsPath under a
//! test-unique parent, and deletes its containers; the containers make their own mount
//! namespaces, so nothing is mounted on the host.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::KENNEL;
use crate::skip::{self, Missing};

const BUSYBOX: &str = "/bin/busybox";

struct Oci {
    dir: tempfile::TempDir,
    parent: String,
}

impl Oci {
    fn new(name: &str) -> Option<Oci> {
        if !skip::need_root() {
            return None;
        }
        if !Path::new(BUSYBOX).exists() {
            skip::skip(Missing::Provided, "no /bin/busybox (busybox-static)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let parent = format!("/kennel-oci-test-{name}-{}", std::process::id());
        Some(Oci { dir, parent })
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// A bundle `name` running `args`, edited by `edit`.
    fn bundle(
        &self,
        name: &str,
        args: &[&str],
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> PathBuf {
        let b = self.dir.path().join(name);
        let bin = b.join("rootfs/bin");
        std::fs::create_dir_all(&bin).expect("mkdir rootfs");
        std::fs::copy(BUSYBOX, bin.join("busybox")).expect("copy busybox");
        for c in ["sh", "sleep", "readlink", "cat", "hostname", "true", "id"] {
            std::os::unix::fs::symlink("busybox", bin.join(c)).expect("symlink");
        }
        let out = self.oci(&["spec", "--bundle", b.to_str().unwrap()]);
        assert!(out.status.success(), "spec: {out:?}");
        let path = b.join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        v["process"]["terminal"] = false.into();
        v["process"]["args"] = args.into();
        v["linux"]["cgroupsPath"] = format!("{}/{name}", self.parent).into();
        edit(&mut v);
        std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        b
    }

    /// `kennel oci --root ROOT ARGS`, its stdout and stderr in files: a created
    /// container inherits them (as from runc), and would hold pipes open.
    fn oci(&self, args: &[&str]) -> Output {
        let out = tempfile::tempfile().expect("tempfile");
        let err = tempfile::tempfile().expect("tempfile");
        let status = Command::new(KENNEL)
            .arg("oci")
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup"))
            .stderr(err.try_clone().expect("dup"))
            .status()
            .expect("run kennel oci");
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut v = Vec::new();
            f.rewind().expect("rewind");
            f.read_to_end(&mut v).expect("read");
            v
        };
        Output {
            status,
            stdout: read(out),
            stderr: read(err),
        }
    }

    fn status(&self, id: &str) -> String {
        let out = self.oci(&["state", id]);
        assert!(out.status.success(), "state {id}: {out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("state JSON");
        v["status"].as_str().unwrap_or_default().to_string()
    }

    fn state_pid(&self, id: &str) -> i64 {
        let out = self.oci(&["state", id]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("state JSON");
        v["pid"].as_i64().unwrap_or_default()
    }

    fn wait_status(&self, id: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.status(id) != want {
            assert!(Instant::now() < deadline, "{id} never became {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        let out = self.oci(&["list", "-q"]);
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self.oci(&["delete", "--force", id]);
        }
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join(self.parent.trim_start_matches('/')));
        }
        let _ = std::fs::remove_dir(
            Path::new("/sys/fs/cgroup").join(self.parent.trim_start_matches('/')),
        );
    }
}

#[test]
fn create_start_kill_delete_go_through_the_spec_states() {
    let Some(t) = Oci::new("life") else { return };
    let b = t.bundle("life", &["sleep", "100"], |_| {});
    let pid_file = t.dir.path().join("pid");
    let out = t.oci(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "life",
    ]);
    assert!(out.status.success(), "create: {out:?}");
    assert_eq!(t.status("life"), "created");
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        pid,
        t.state_pid("life"),
        "the pid file names the container's process"
    );
    // Created: the process waits, its program not yet exec'd (still kennel's helper).
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(!exe.ends_with("busybox"), "exec'd before start: {exe:?}");
    let out = t.oci(&["start", "life"]);
    assert!(out.status.success(), "start: {out:?}");
    assert_eq!(t.status("life"), "running");
    let out = t.oci(&["delete", "life"]);
    assert!(
        !out.status.success(),
        "a running container is not deleted without --force"
    );
    let out = t.oci(&["kill", "life", "KILL"]);
    assert!(out.status.success(), "kill: {out:?}");
    t.wait_status("life", "stopped");
    let out = t.oci(&["delete", "life"]);
    assert!(out.status.success(), "delete: {out:?}");
    assert!(!t.oci(&["state", "life"]).status.success(), "deleted");
}

#[test]
fn run_exits_with_the_process_code() {
    let Some(t) = Oci::new("run") else { return };
    let b = t.bundle("run", &["sh", "-c", "hostname; exit 7"], |v| {
        v["hostname"] = "oci-test".into();
    });
    let out = t.oci(&["run", "--bundle", b.to_str().unwrap(), "run"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "oci-test");
    assert!(!t.oci(&["state", "run"]).status.success(), "run deleted it");
}

#[test]
fn a_field_kennel_does_not_honour_is_refused_by_name() {
    let Some(t) = Oci::new("refused") else { return };
    let b = t.bundle("refused", &["true"], |v| {
        v["linux"]["intelRdt"] = serde_json::json!({"closID": "x"});
    });
    let out = t.oci(&["create", "--bundle", b.to_str().unwrap(), "refused"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.json: linux.intelRdt is not supported by kennel"),
        "{err}"
    );
    assert!(
        !t.oci(&["state", "refused"]).status.success(),
        "nothing left"
    );
}

#[test]
fn a_namespace_path_is_joined() {
    let Some(t) = Oci::new("join") else { return };
    let a = t.bundle("a", &["sleep", "100"], |_| {});
    let out = t.oci(&["run", "-d", "--bundle", a.to_str().unwrap(), "a"]);
    assert!(out.status.success(), "run a: {out:?}");
    let pid = t.state_pid("a");
    let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let path = format!("/proc/{pid}/ns/net");
    let b = t.bundle("b", &["readlink", "/proc/self/ns/net"], |v| {
        let nss = v["linux"]["namespaces"].as_array_mut().unwrap();
        for n in nss.iter_mut() {
            if n["type"] == "network" {
                n["path"] = path.clone().into();
            }
        }
    });
    let out = t.oci(&["run", "--bundle", b.to_str().unwrap(), "b"]);
    assert!(out.status.success(), "run b: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        ns.to_string_lossy(),
        "b is in a's network namespace"
    );
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(own, ns, "a has a network namespace of its own");
}

#[test]
fn a_pid_namespace_path_is_joined() {
    let Some(t) = Oci::new("joinpid") else { return };
    let a = t.bundle("a", &["sleep", "100"], |_| {});
    let out = t.oci(&["run", "-d", "--bundle", a.to_str().unwrap(), "a"]);
    assert!(out.status.success(), "run a: {out:?}");
    let path = format!("/proc/{}/ns/pid", t.state_pid("a"));
    let b = t.bundle("b", &["cat", "/proc/1/cmdline"], |v| {
        for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "pid" {
                n["path"] = path.clone().into();
            }
        }
    });
    let out = t.oci(&["run", "--bundle", b.to_str().unwrap(), "b"]);
    assert!(out.status.success(), "run b: {out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .replace('\0', " ")
            .trim(),
        "sleep 100",
        "b's PID 1 is a's process"
    );
}

#[test]
fn exec_runs_a_process_in_the_containers_namespaces_with_its_code() {
    let Some(t) = Oci::new("exec") else { return };
    let b = t.bundle("exec", &["sleep", "100"], |v| {
        v["hostname"] = "oci-exec".into();
    });
    let out = t.oci(&["run", "-d", "--bundle", b.to_str().unwrap(), "exec"]);
    assert!(out.status.success(), "run: {out:?}");
    let out = t.oci(&[
        "exec",
        "--user",
        "1000:1000",
        "--env",
        "X=1",
        "exec",
        "sh",
        "-c",
        "echo $(hostname) $(cat /proc/1/cmdline) $X $(id -u); exit 6",
    ]);
    assert_eq!(out.status.code(), Some(6), "{out:?}");
    assert_eq!(
        // (the shell's $(...) drops the NULs of /proc/1/cmdline)
        String::from_utf8_lossy(&out.stdout).trim(),
        "oci-exec sleep100 1 1000",
        "the container's uts and pid namespaces, the environment and user given"
    );
    let out = t.oci(&["exec", "exec", "no-such-program"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-program: command not found"),
        "{out:?}"
    );
}

#[test]
fn ps_lists_the_containers_processes() {
    let Some(t) = Oci::new("ps") else { return };
    // PID 1 (sh) and a child sleep: two processes in the cgroup.
    let b = t.bundle("ps", &["sh", "-c", "sleep 100 & wait"], |_| {});
    let out = t.oci(&["run", "-d", "--bundle", b.to_str().unwrap(), "ps"]);
    assert!(out.status.success(), "run -d: {out:?}");
    let pid = t.state_pid("ps");
    let deadline = Instant::now() + Duration::from_secs(10);
    let pids = loop {
        let out = t.oci(&["ps", "--format", "json", "ps"]);
        assert!(out.status.success(), "ps json: {out:?}");
        let pids: Vec<i64> = serde_json::from_slice(&out.stdout).expect("a JSON list of pids");
        if pids.len() == 2 || Instant::now() > deadline {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(pids.len(), 2, "sh and its sleep: {pids:?}");
    assert!(
        pids.contains(&pid),
        "the container's process {pid}: {pids:?}"
    );
    let out = t.oci(&["ps", "ps"]);
    assert!(out.status.success(), "ps table: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert!(lines.next().unwrap_or_default().contains("PID"), "{text}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "one row per process: {text}");
    assert!(rows.iter().any(|r| r.contains("sleep 100")), "{text}");
    assert!(
        !t.oci(&["ps", "nope"]).status.success(),
        "no such container"
    );
}

#[test]
fn pause_freezes_and_resume_thaws_the_container() {
    let Some(t) = Oci::new("pause") else { return };
    let b = t.bundle("pause", &["sh", "-c", "while :; do :; done"], |_| {});
    let out = t.oci(&["run", "-d", "--bundle", b.to_str().unwrap(), "pause"]);
    assert!(out.status.success(), "run -d: {out:?}");
    let pid = t.state_pid("pause");
    assert!(
        !t.oci(&["resume", "pause"]).status.success(),
        "a running container is not resumed"
    );
    let out = t.oci(&["pause", "pause"]);
    assert!(out.status.success(), "pause: {out:?}");
    assert_eq!(t.status("pause"), "paused");
    let out = t.oci(&["list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list JSON");
    assert_eq!(v[0]["status"], "paused", "{v}");
    // Frozen: a spinning process uses no CPU time.
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(pid), before, "frozen, yet it ran");
    assert!(
        !t.oci(&["pause", "pause"]).status.success(),
        "a paused container is not paused again"
    );
    let out = t.oci(&["resume", "pause"]);
    assert!(out.status.success(), "resume: {out:?}");
    assert_eq!(t.status("pause"), "running");
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(300));
    assert!(cpu_ticks(pid) > before, "thawed, yet it did not run");
    // Paused again, then SIGKILL: it dies (thawed after the signal, as runc).
    assert!(t.oci(&["pause", "pause"]).status.success());
    let out = t.oci(&["kill", "pause", "KILL"]);
    assert!(out.status.success(), "kill: {out:?}");
    t.wait_status("pause", "stopped");
    assert!(t.oci(&["delete", "pause"]).status.success());
}

/// utime + stime of /proc/PID/stat (fields 14 and 15), in clock ticks.
fn cpu_ticks(pid: i64) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// The content of `FILE` in the container's cgroup `name` of the hierarchy holding
/// `controller` (v1), or of the v2 tree.
fn cgroup_file(t: &Oci, name: &str, controller: &str, file: &str) -> String {
    let rel = format!("{}/{name}", t.parent.trim_start_matches('/'));
    let v1 = Path::new("/sys/fs/cgroup").join(controller).join(&rel);
    let dir = if v1.is_dir() {
        v1
    } else {
        Path::new("/sys/fs/cgroup").join(&rel)
    };
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

#[test]
fn update_changes_the_running_containers_cgroup() {
    let Some(t) = Oci::new("update") else { return };
    let b = t.bundle("update", &["sleep", "100"], |v| {
        v["linux"]["resources"]["pids"] = serde_json::json!({"limit": 50});
    });
    let out = t.oci(&["run", "-d", "--bundle", b.to_str().unwrap(), "update"]);
    assert!(out.status.success(), "run -d: {out:?}");
    assert_eq!(cgroup_file(&t, "update", "pids", "pids.max"), "50");
    let res = t.dir.path().join("resources.json");
    std::fs::write(
        &res,
        r#"{"memory": {"limit": 67108864}, "pids": {"limit": 20}}"#,
    )
    .unwrap();
    let out = t.oci(&["update", "--resources", res.to_str().unwrap(), "update"]);
    assert!(out.status.success(), "update --resources: {out:?}");
    assert_eq!(cgroup_file(&t, "update", "pids", "pids.max"), "20");
    let v2 = !Path::new("/sys/fs/cgroup/memory").is_dir();
    let mem = if v2 {
        cgroup_file(&t, "update", "memory", "memory.max")
    } else {
        cgroup_file(&t, "update", "memory", "memory.limit_in_bytes")
    };
    assert_eq!(mem, "67108864");
    // runc's flags, as podman passes them.
    let out = t.oci(&[
        "update",
        "--pids-limit",
        "30",
        "--memory",
        "128m",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "update",
    ]);
    assert!(out.status.success(), "update flags: {out:?}");
    assert_eq!(cgroup_file(&t, "update", "pids", "pids.max"), "30");
    if v2 {
        assert_eq!(cgroup_file(&t, "update", "cpu", "cpu.max"), "50000 100000");
    } else {
        assert_eq!(
            cgroup_file(&t, "update", "cpu", "cpu.cfs_quota_us"),
            "50000"
        );
        assert_eq!(
            cgroup_file(&t, "update", "memory", "memory.limit_in_bytes"),
            "134217728"
        );
    }
    // --cpu-period alone keeps the quota.
    let out = t.oci(&["update", "--cpu-period", "200000", "update"]);
    assert!(out.status.success(), "update --cpu-period: {out:?}");
    if v2 {
        assert_eq!(cgroup_file(&t, "update", "cpu", "cpu.max"), "50000 200000");
    } else {
        assert_eq!(
            cgroup_file(&t, "update", "cpu", "cpu.cfs_quota_us"),
            "50000"
        );
        assert_eq!(
            cgroup_file(&t, "update", "cpu", "cpu.cfs_period_us"),
            "200000"
        );
    }
    // What kennel does not update is refused by name.
    std::fs::write(
        &res,
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#,
    )
    .unwrap();
    let out = t.oci(&["update", "--resources", res.to_str().unwrap(), "update"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("hugepageLimits"),
        "{out:?}"
    );
    assert!(t.oci(&["kill", "update", "KILL"]).status.success());
    t.wait_status("update", "stopped");
    assert!(
        !t.oci(&["update", "--pids-limit", "5", "update"])
            .status
            .success(),
        "a stopped container is not updated"
    );
}

#[test]
fn events_prints_stats_and_an_oom() {
    let Some(t) = Oci::new("events") else { return };
    let b = t.bundle("events", &["sleep", "100"], |v| {
        v["linux"]["resources"]["pids"] = serde_json::json!({"limit": 50});
    });
    let out = t.oci(&["run", "-d", "--bundle", b.to_str().unwrap(), "events"]);
    assert!(out.status.success(), "run -d: {out:?}");
    let out = t.oci(&["events", "--stats", "events"]);
    assert!(out.status.success(), "events --stats: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "one event: {text}");
    let v: serde_json::Value = serde_json::from_str(text.trim()).expect("a JSON event");
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], "events");
    assert_eq!(v["data"]["pids"]["current"], 1, "{v}");
    assert_eq!(v["data"]["pids"]["limit"], 50, "{v}");
    assert!(
        v["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert!(v["data"]["cpu"]["usage"]["total"].is_u64(), "{v}");

    // A container that runs out of memory: stats lines, then an oom event, then events
    // ends with the container.
    let b = t.bundle(
        "oom",
        &["sh", "-c", "sleep 1; s=xxxxxxxx; while :; do s=$s$s; done"],
        |v| {
            v["linux"]["resources"]["memory"] =
                serde_json::json!({"limit": 16 << 20, "swap": 16 << 20});
        },
    );
    let out = t.oci(&["run", "-d", "--bundle", b.to_str().unwrap(), "oom"]);
    assert!(out.status.success(), "run -d: {out:?}");
    let out = t.oci(&["events", "--interval", "100ms", "oom"]);
    assert!(out.status.success(), "events: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let types: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            assert_eq!(v["id"], "oom", "{l}");
            v["type"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(
        types.iter().filter(|t| *t == "stats").count() >= 2,
        "{text}"
    );
    assert!(types.iter().any(|t| t == "oom"), "no oom event: {text}");
    assert_eq!(t.status("oom"), "stopped");
}
