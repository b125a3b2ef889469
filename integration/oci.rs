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

/// podman (its own store, in a private mount namespace: podman_util.rs) with kennel as
/// its OCI runtime (`--runtime` naming a `kennel-runc` link): the container's output and
/// exit code come back through conmon.
#[test]
fn podman_runs_a_container_with_kennel_as_its_runtime() {
    if !skip::need_root() {
        return;
    }
    let Some(p) = crate::podman_util::Podman::new() else {
        return;
    };
    let rootfs = p.path("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("mkdir");
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
    std::os::unix::fs::symlink("busybox", rootfs.join("bin/sh")).expect("symlink");
    let tar = p.path("bb.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    p.ok(&["import", tar.to_str().unwrap(), "localhost/kennel-oci-bb:1"]);
    let runtime = p.path("kennel-runc");
    if std::fs::hard_link(KENNEL, &runtime).is_err() {
        std::fs::copy(KENNEL, &runtime).expect("copy kennel");
    }
    // The runtime's state in the test's directory, not /run/kennel-runc.
    let root = format!("root={}", p.path("oci-root").display());
    let out = p.output(&[
        "--runtime",
        runtime.to_str().unwrap(),
        "--runtime-flag",
        &root,
        "run",
        "--rm",
        "--network",
        "none",
        // podman's default nofile (1048576) is above this sandbox's hard limit.
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1000:1000",
        "localhost/kennel-oci-bb:1",
        "sh",
        "-c",
        "echo hello from kennel-runc; exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from kennel-runc"
    );
    assert!(p.path("oci-root").is_dir(), "the state was under --root");
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
