//! podman for the integration tests, kept apart from the host's: a store, run and tmp
//! directory, network configuration, volumes and containers.conf of its own under the
//! test's temporary directory, the cgroupfs manager and file events (no systemd, no
//! journal), all of it run in a private mount namespace held by a process of the test's
//! own, so that the store's overlay mounts never show on the host. With runc, containers
//! run with `--network none` (never podman's bridge: the host's network stays
//! untouched); with kennel as the runtime ([`Runtime::Kennel`]), the holder has a network
//! namespace of its own too, where podman's bridge and published ports live. Removed with
//! its pods, containers and images when the test ends, pass or fail.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{skip, Missing, PATIENCE};

/// How often a container's state is polled.
const POLL: Duration = Duration::from_millis(100);

/// kennel-runc's default `--root`, where podman's calls find the state (see docs/oci.md).
pub const KENNEL_RUNC_ROOT: &str = "/run/kennel-runc";

/// podman's default ulimits (`nofile=1048576`) are above this sandbox's hard limits, and
/// runc refuses to raise a limit: every container gets these instead.
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=1000:1000",
];

/// The static kennel the images are made with, built by `cargo build --release --locked
/// --target x86_64-unknown-linux-musl -p kennel` (scripts/test.sh does it before the
/// tests); `None` after a skip when it is missing.
pub fn static_kennel() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("x86_64-unknown-linux-musl/release/kennel");
    if path.is_file() {
        return Some(path);
    }
    skip(
        Missing::Provided,
        &format!(
            "no static kennel at {}: build it with `cargo build --release --locked --target \
             x86_64-unknown-linux-musl -p kennel` (scripts/test.sh does)",
            path.display()
        ),
    );
    None
}

/// The cargo target directory's `test-cache/`, where slow things built for the tests
/// (the debootstrapped rootfs) are kept between runs.
pub fn test_cache() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("test-cache")
}

pub use crate::images::util::run;

/// Whether `prog --version` runs.
fn have(prog: &str) -> bool {
    runs(prog, "--version")
}

/// Whether `prog ARG` runs and succeeds.
pub fn runs(prog: &str, arg: &str) -> bool {
    Command::new(prog)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The OCI runtime podman runs containers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Runc,
    /// kennel itself (`kennel-runc`, a link to the binary under test), with its state at
    /// its default `/run/kennel-runc` (a tmpfs of the podman's own mount namespace), in a
    /// network namespace of the test's own (podman's bridge and published ports there).
    Kennel,
}

/// One isolated podman.
pub struct Podman {
    pub dir: tempfile::TempDir,
    /// The mount (and, with kennel, network) namespace every podman command enters.
    holder: Holder,
    runtime: Runtime,
}

impl Podman {
    /// A fresh podman with runc, or `None` after a skip when podman, conmon or runc is
    /// missing.
    pub fn new() -> Option<Podman> {
        Podman::with(Runtime::Runc)
    }

    /// A fresh podman with `runtime`, or `None` after a skip when podman, conmon or runc
    /// is missing.
    pub fn with(runtime: Runtime) -> Option<Podman> {
        for prog in ["podman", "conmon", "runc"] {
            if !have(prog) {
                skip(
                    Missing::Provided,
                    &format!("{prog} is not installed (apt-get install podman conmon runc)"),
                );
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("kennel-podman-")
            .tempdir()
            .expect("tempdir");
        let holder = Holder::new(runtime == Runtime::Kennel);
        let p = Podman {
            dir,
            holder,
            runtime,
        };
        // podman's default nofile (1048576) is above this sandbox's hard limit, for the
        // containers a pod makes too (its infra): the limits for every container.
        fs::write(
            p.path("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"{}\", \"{}\"]\n",
                ULIMITS[1], ULIMITS[3]
            ),
        )
        .expect("write containers.conf");
        if runtime == Runtime::Kennel {
            std::os::unix::fs::symlink(crate::harness::KENNEL, p.runtime_path())
                .expect("symlink kennel-runc");
            p.holder.tmpfs(Path::new(KENNEL_RUNC_ROOT));
        }
        Some(p)
    }

    /// The `kennel-runc` link podman runs as its runtime.
    pub fn runtime_path(&self) -> PathBuf {
        self.path("kennel-runc")
    }

    /// `nsenter` into the holder's mount (and, with kennel, network) namespace.
    pub fn nsenter(&self) -> Command {
        self.holder.nsenter()
    }

    /// Run `args` in the holder's namespaces; must succeed; its stdout.
    pub fn in_namespaces(&self, args: &[&str]) -> String {
        self.holder.run(args)
    }

    /// A path under the test's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `podman` with the isolating global options, in the holder's mount namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let d = |rel: &str| self.path(rel).display().to_string();
        let runtime = match self.runtime {
            Runtime::Runc => "runc".to_string(),
            Runtime::Kennel => d("kennel-runc"),
        };
        let mut cmd = self.nsenter();
        cmd.arg("podman")
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .args(["--root", &d("store"), "--runroot", &d("run")])
            .args(["--tmpdir", &d("tmp"), "--volumepath", &d("volumes")])
            .args(["--network-config-dir", &d("networks")])
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            // Not crun: crun refuses this hybrid cgroup host ("cgroups in hybrid mode not
            // supported, drop all controllers from cgroupv2", the v2 tree lists hugetlb).
            .args(["--runtime", &runtime])
            .args(args);
        cmd
    }

    /// Run podman to its end.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run podman")
    }

    /// Run podman, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman import` of a root filesystem tar as `name`, with kennel as its entrypoint.
    pub fn import(&self, tar: &Path, name: &str, entrypoint: &str) {
        self.ok(&[
            "import",
            "--change",
            &format!("ENTRYPOINT [\"{entrypoint}\", \"up\"]"),
            &tar.display().to_string(),
            name,
        ]);
    }

    /// `podman run -d --name NAME --network none` with the ulimits, `extra` options, the
    /// image and its arguments (after the entrypoint's `up`).
    pub fn run(&self, name: &str, extra: &[&str], image: &str, args: &[&str]) {
        let mut all = vec!["run", "-d", "--name", name, "--network", "none"];
        all.extend(ULIMITS);
        all.extend(extra);
        all.push(image);
        all.extend(args);
        self.ok(&all);
    }

    /// `podman logs`: the container's stdout and stderr (kennel's own lines are on
    /// stderr, the units' echoed lines on stdout).
    pub fn logs(&self, name: &str) -> String {
        let out = self.output(&["logs", name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `podman exec NAME ARGS...` to its end.
    pub fn exec(&self, name: &str, args: &[&str]) -> Output {
        let mut all = vec!["exec", name];
        all.extend(args);
        self.output(&all)
    }

    /// `kennel status --json` inside the container, if kennel answers.
    pub fn status(&self, name: &str) -> Option<Vec<Value>> {
        let out = self.exec(name, &["kennel", "status", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// One unit's status row.
    pub fn unit(&self, name: &str, unit: &str) -> Option<Value> {
        self.status(name)?.into_iter().find(|r| r["name"] == unit)
    }

    /// Wait until every `units` (name, state) holds in the container; fails the test with
    /// the container's logs if not within [`PATIENCE`], or at once when one of them is
    /// `failed` (which it stays) while another state is awaited.
    pub fn wait_states(&self, name: &str, units: &[(&str, &str)]) {
        self.wait_for(name, &format!("states {units:?}"), || {
            let Some(rows) = self.status(name) else {
                return false;
            };
            let given_up = rows.iter().find(|r| {
                r["state"] == "failed"
                    && units
                        .iter()
                        .any(|(u, st)| r["name"] == *u && *st != "failed")
            });
            if let Some(row) = given_up {
                panic!(
                    "unit failed while waiting for states {units:?} in container {name}: {row}\n\
                     --- podman logs ---\n{}",
                    self.logs(name)
                );
            }
            units
                .iter()
                .all(|(u, st)| rows.iter().any(|r| r["name"] == *u && r["state"] == *st))
        });
    }

    /// The container's `State.Status` (`running`, `exited` ...).
    pub fn state(&self, name: &str) -> String {
        self.ok(&["inspect", "--format", "{{.State.Status}}", name])
            .trim()
            .to_string()
    }

    /// The container's exit code, once it has exited.
    pub fn exit_code(&self, name: &str) -> i32 {
        let code = self.ok(&["inspect", "--format", "{{.State.ExitCode}}", name]);
        code.trim()
            .parse()
            .unwrap_or_else(|e| panic!("exit code {code:?}: {e}"))
    }

    /// Wait until the container has exited.
    pub fn wait_exited(&self, name: &str) {
        self.wait_for(name, "the container to exit", || {
            self.state(name) == "exited"
        });
    }

    /// Poll `cond` until it holds; fail with the container's logs and kennel's status
    /// after [`PATIENCE`].
    pub fn wait_for(&self, name: &str, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !cond() {
            if Instant::now() > deadline {
                let status = self.exec(name, &["kennel", "status"]);
                panic!(
                    "timed out waiting for {what} in container {name} ({})\n--- podman logs ---\n{}\
                     --- kennel status ---\n{}{}",
                    self.state(name),
                    self.logs(name),
                    String::from_utf8_lossy(&status.stdout),
                    String::from_utf8_lossy(&status.stderr)
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Podman {
    /// Every container removed (killed at once), every image, then the namespace's last
    /// process (the holder) ended, which takes the store's mounts with it; the directory
    /// goes last (TempDir).
    fn drop(&mut self) {
        let _ = self.output(&["pod", "rm", "-f", "-a", "-t", "0"]);
        let _ = self.output(&["rm", "-f", "-a", "-t", "0"]);
        let _ = self.output(&["rmi", "-f", "-a"]);
        // conmon ends with its container.
        self.holder.end("podman");
    }
}

/// A process of the test's own (`unshare --mount [--net] sleep`) holding a private mount
/// namespace (and a network namespace) that a test's daemons and commands enter with
/// [`Holder::nsenter`]; it dies with the test's thread.
pub struct Holder {
    child: Child,
    net: bool,
}

impl Holder {
    /// A holder with a network namespace of its own too when `net`, ready.
    pub fn new(net: bool) -> Holder {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private"]);
        if net {
            cmd.arg("--net");
        }
        cmd.args(["sleep", "1000000"]).stdin(Stdio::null());
        // SAFETY: prctl is async-signal-safe; the holder dies with the test's thread
        // even if the test process is killed before Drop runs.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let h = Holder {
            child: cmd.spawn().expect("spawn unshare"),
            net,
        };
        // Until unshare has exec'd sleep, /proc/PID/ns/mnt is still the host's.
        let host = fs::read_link("/proc/self/ns/mnt").expect("readlink ns/mnt");
        let pid = h.child.id();
        let deadline = Instant::now() + PATIENCE;
        while !(fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|ns| ns != host)
            && fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep"))
        {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the holder's mount namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        if net {
            h.run(&["ip", "link", "set", "lo", "up"]);
        }
        h
    }

    /// Run `args` in the holder's namespaces; must succeed; its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.nsenter().args(args).output().expect("run nsenter");
        assert!(
            out.status.success(),
            "{args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A tmpfs of the holder's mount namespace at `dir` (made on the host if missing: an
    /// empty directory), hiding what the host has there from the test's processes.
    pub fn tmpfs(&self, dir: &Path) {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.run(&[
            "mount",
            "-t",
            "tmpfs",
            "kennel-test",
            &dir.display().to_string(),
        ]);
    }

    /// `nsenter` into the holder's namespaces, stdin closed.
    pub fn nsenter(&self) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--mount=/proc/{}/ns/mnt", self.child.id()));
        if self.net {
            cmd.arg(format!("--net=/proc/{}/ns/net", self.child.id()));
        }
        cmd.arg("--").stdin(Stdio::null());
        cmd
    }

    /// The processes (host pids) other than the holder in its mount namespace.
    fn members(&self) -> Vec<i32> {
        let Ok(ns) = fs::read_link(format!("/proc/{}/ns/mnt", self.child.id())) else {
            return Vec::new();
        };
        let Ok(entries) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid as u32 != self.child.id())
            .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|n| n == ns))
            .collect()
    }

    /// Waits (bounded) until no other process is in the namespace, so that no mount
    /// outlives it (saying which are left, for `who`), then ends the holder: its last
    /// process, which takes the namespace's mounts with it.
    pub fn end(&mut self, who: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.members().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = self.members();
        if !left.is_empty() {
            eprintln!("{who} test: processes left in its mount namespace: {left:?}");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
