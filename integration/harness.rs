//! The sandbox every integration test gets: a private directory (units, logs, state,
//! socket) and a `kennel up` running as PID 1 of its own pid + mount namespace, torn down
//! (with everything in that namespace) when the test ends, pass or fail.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const KENNEL: &str = env!("CARGO_BIN_EXE_kennel");

/// How long a test waits for something it can observe before it fails. Generous: CI
/// machines are slow and shared; a passing test never waits this long.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub units: PathBuf,
    pub logs: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    daemon: Option<Child>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("kennel-it-")
            .tempdir()
            .expect("tempdir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let root = dir.path().to_path_buf();
        let s = Sandbox {
            units: root.join("units"),
            logs: root.join("logs"),
            state: root.join("state"),
            socket: root.join("run/kennel.sock"),
            dir,
            daemon: None,
        };
        fs::create_dir_all(&s.units).expect("mkdir units");
        s
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write `units/NAME.toml`.
    pub fn unit(&self, name: &str, toml: &str) -> &Self {
        fs::write(self.units.join(format!("{name}.toml")), toml).expect("write unit");
        self
    }

    pub fn remove_unit(&self, name: &str) {
        fs::remove_file(self.units.join(format!("{name}.toml"))).expect("remove unit");
    }

    /// Start `kennel up` as PID 1 of a new pid + mount namespace and wait for its socket.
    pub fn up(&mut self) -> &mut Self {
        self.up_with(&[])
    }

    pub fn up_with(&mut self, extra: &[&str]) -> &mut Self {
        let out = fs::File::create(self.path("kennel.out")).expect("create kennel.out");
        let err = fs::File::create(self.path("kennel.err")).expect("create kennel.err");
        let child = Command::new("unshare")
            .args([
                "--pid",
                "--fork",
                "--mount",
                "--mount-proc",
                "--kill-child",
                "--",
            ])
            .arg(KENNEL)
            .arg("up")
            .arg("--units")
            .arg(&self.units)
            .arg("--log-dir")
            .arg(&self.logs)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--socket")
            .arg(&self.socket)
            .args(extra)
            .env("KENNEL_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn unshare");
        self.daemon = Some(child);
        let socket = self.socket.clone();
        self.wait_for("the control socket", || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
        self
    }

    /// kennel's output so far (stdout, then stderr), for failure messages.
    pub fn daemon_output(&self) -> String {
        let out = fs::read_to_string(self.path("kennel.out")).unwrap_or_default();
        let err = fs::read_to_string(self.path("kennel.err")).unwrap_or_default();
        format!("--- kennel stdout ---\n{out}--- kennel stderr ---\n{err}")
    }

    /// Poll `cond` (every 20ms) until it holds; fail the test with kennel's output if it
    /// does not within [`PATIENCE`]. Also fails at once if the daemon died.
    pub fn wait_for(&mut self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if cond() {
                return;
            }
            if let Some(d) = self.daemon.as_mut() {
                if let Ok(Some(st)) = d.try_wait() {
                    if !cond() {
                        panic!(
                            "kennel exited ({st}) while waiting for {what}\n{}",
                            self.daemon_output()
                        );
                    }
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.daemon_output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run a client command against this sandbox's daemon.
    pub fn kennel(&self, args: &[&str]) -> Output {
        Command::new(KENNEL)
            .args(args)
            .env("KENNEL_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .output()
            .expect("run kennel client")
    }

    /// Run a client command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kennel(args);
        assert!(
            out.status.success(),
            "kennel {args:?} failed ({}):\n{}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.daemon_output()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kennel status --json` for one unit.
    pub fn status(&self, unit: &str) -> Value {
        let text = self.ok(&["status", "--json", unit]);
        let v: Value = serde_json::from_str(&text).expect("status json");
        v[0].clone()
    }

    pub fn state(&self, unit: &str) -> String {
        self.status(unit)["state"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    }

    /// Wait until `unit` is in `state`.
    pub fn wait_state(&mut self, unit: &str, state: &str) {
        let socket = self.socket.clone();
        self.wait_for(&format!("{unit} to be {state}"), || {
            status_via(&socket, unit).is_some_and(|v| v["state"] == state)
        });
    }

    /// The host pid of kennel (PID 1 inside the namespace): unshare's only child.
    pub fn daemon_pid(&self) -> i32 {
        let unshare = self.daemon.as_ref().expect("daemon started").id();
        let children = fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
            .expect("read unshare's children");
        children
            .split_whitespace()
            .next()
            .expect("kennel pid")
            .parse()
            .expect("pid")
    }

    pub fn signal_daemon(&self, sig: i32) {
        // SAFETY: kill(2) on our own test's kennel.
        let rc = unsafe { libc::kill(self.daemon_pid(), sig) };
        assert_eq!(rc, 0, "kill kennel: {}", std::io::Error::last_os_error());
    }

    /// Wait for the daemon (and so its namespace) to end.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let d = self.daemon.as_mut().expect("daemon started");
            if let Some(st) = d.try_wait().expect("try_wait") {
                return st;
            }
            if Instant::now() > deadline {
                panic!("kennel did not exit\n{}", self.daemon_output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Host pids of every process in kennel's pid namespace (kennel included).
    pub fn namespace_pids(&self) -> Vec<i32> {
        let Ok(ns) = fs::read_link(format!("/proc/{}/ns/pid", self.daemon_pid())) else {
            return Vec::new();
        };
        let mut pids = Vec::new();
        for e in fs::read_dir("/proc").expect("read /proc").flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if fs::read_link(format!("/proc/{pid}/ns/pid")).ok().as_ref() == Some(&ns) {
                pids.push(pid);
            }
        }
        pids
    }

    /// The unit's log file content.
    pub fn log(&self, unit: &str) -> String {
        fs::read_to_string(self.logs.join(format!("{unit}.log"))).unwrap_or_default()
    }
}

/// Status of one unit without a `&Sandbox` (for use inside `wait_for` closures).
pub fn status_via(socket: &Path, unit: &str) -> Option<Value> {
    let out = Command::new(KENNEL)
        .args(["status", "--json", unit])
        .env("KENNEL_SOCKET", socket)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(v[0].clone())
}

/// Process state letter from /proc/PID/stat ('Z' for a zombie).
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            // unshare --kill-child SIGKILLs kennel, which takes its whole pid namespace.
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}
