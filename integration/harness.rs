//! The sandbox every integration test gets: a private directory (units, logs, state,
//! socket) and a `kennel up` running as PID 1 of its own pid + mount namespace, torn down
//! (with everything in that namespace) when the test ends, pass or fail. Also the helpers
//! the tests share: service scripts, marker files, log records, raw control connections,
//! and [`Run`], a `kennel run` either as PID 1 of its own pid namespace or as a plain child.
//! A test that cannot run on this machine says so through [`skip`] (never a silent return).

use std::cell::RefCell;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use crate::skip::{skip, Missing};

/// The binary under test.
pub const KENNEL: &str = env!("CARGO_BIN_EXE_kennel");

/// How long a test waits for something it can observe before it fails. Generous: CI
/// machines are slow and shared; a passing test never waits this long.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(20);

/// `unshare` arguments that give a command its own pid + mount namespace (with its own
/// /proc), of which it is PID 1; `--kill-child` takes the namespace down with `unshare`.
const UNSHARE: [&str; 6] = [
    "--pid",
    "--fork",
    "--mount",
    "--mount-proc",
    "--kill-child",
    "--",
];

pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub units: PathBuf,
    pub logs: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    /// The cgroup parent of this sandbox's unit cgroups (`/kennel-it-PID-N`), so that
    /// tests running in parallel never share (or kill) a unit cgroup; removed on drop.
    pub cgroup_parent: String,
    /// `unshare` running `kennel up` (interior mutability so that `wait_for` closures can
    /// borrow the sandbox while it checks on the daemon).
    daemon: RefCell<Option<Child>>,
    /// Host files that kennel sees replaced (bind-mounted over in its own mount namespace
    /// only): (the host path, the sandbox file or node over it).
    covers: RefCell<Vec<(PathBuf, PathBuf)>>,
    /// The signals `kennel up` is started with ignored and blocked (none unless a test
    /// says: [`Sandbox::inherit_signals`]); never what the test runner happened to have.
    inherited: RefCell<Signals>,
    /// Shell commands run in kennel's mount namespace before kennel starts
    /// ([`Sandbox::before_up`]).
    before: RefCell<Vec<String>>,
    /// With [`Sandbox::with_net`]: `unshare --net sleep`, holding the network namespace
    /// kennel runs in (made by the test; it outlives a kennel killed with SIGKILL, as the
    /// host's would), killed on drop.
    net: RefCell<Option<Child>>,
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
            cgroup_parent: format!(
                "/kennel-it-{}-{}",
                std::process::id(),
                SANDBOXES.fetch_add(1, Ordering::Relaxed)
            ),
            daemon: RefCell::new(None),
            covers: RefCell::new(Vec::new()),
            inherited: RefCell::new(Signals::default()),
            before: RefCell::new(Vec::new()),
            net: RefCell::new(None),
        };
        fs::create_dir_all(&s.units).expect("mkdir units");
        s
    }

    /// A sandbox whose kennel runs in a network namespace of the test's own (kept across
    /// kennel restarts), never the host's: for the network tests. `lo` is up in it.
    pub fn with_net(self) -> Sandbox {
        let holder = Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && exec sleep infinity",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare --net");
        let pid = holder.id();
        *self.net.borrow_mut() = Some(holder);
        let ours = fs::read_link("/proc/self/ns/net").expect("our netns");
        self.wait_for("the test's network namespace", || {
            fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|n| n != ours)
        });
        self
    }

    /// The network namespace kennel runs in (`/proc/PID/ns/net` of its holder), with
    /// [`Sandbox::with_net`].
    pub fn netns(&self) -> Option<String> {
        let n = self.net.borrow();
        n.as_ref().map(|c| format!("/proc/{}/ns/net", c.id()))
    }

    /// Runs `script` with `sh -c` in kennel's network namespace (made by
    /// [`Sandbox::with_net`]); returns its output.
    pub fn in_net(&self, script: &str) -> Output {
        let ns = self.netns().expect("a sandbox with_net");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={ns}"))
            .args(["--", "sh", "-c", script]);
        self.output(cmd, &format!("in kennel's netns: {script}"))
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// [`Sandbox::path`] as a string, to put in unit files and scripts.
    pub fn p(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }

    /// Write `units/NAME.toml`.
    pub fn unit(&self, name: &str, toml: &str) -> &Self {
        fs::write(self.units.join(format!("{name}.toml")), toml).expect("write unit");
        self
    }

    pub fn remove_unit(&self, name: &str) {
        fs::remove_file(self.units.join(format!("{name}.toml"))).expect("remove unit");
    }

    /// Write an executable `/bin/sh` script `bin/NAME` (readable by every user) and return
    /// its path, for a unit's `command`. `$D` in the script is the sandbox directory.
    pub fn script(&self, name: &str, body: &str) -> String {
        let dir = self.path("bin");
        fs::create_dir_all(&dir).expect("mkdir bin");
        let path = dir.join(name);
        let text = format!("#!/bin/sh\nD={}\n{body}\n", self.dir.path().display());
        fs::write(&path, text).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
        path.display().to_string()
    }

    /// A unit whose command is the script `body` (see [`Sandbox::script`]), with more TOML
    /// (`[service]` keys first, then other sections) after the command line.
    pub fn script_unit(&self, name: &str, body: &str, more: &str) -> &Self {
        let script = self.script(name, body);
        self.unit(
            name,
            &format!("[service]\ncommand = [\"{script}\"]\n{more}"),
        )
    }

    /// Create (or truncate) the file `rel`.
    pub fn touch(&self, rel: &str) {
        fs::write(self.path(rel), "").expect("touch");
    }

    /// The content of `rel`, if it exists.
    pub fn read(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.path(rel)).ok()
    }

    /// Wait until `rel` holds at least one complete line (services write with `echo`,
    /// which is not atomic); returns its content.
    pub fn wait_file(&self, rel: &str) -> String {
        self.wait_for(&format!("file {rel}"), || {
            self.read(rel).is_some_and(|t| t.ends_with('\n'))
        });
        self.read(rel).unwrap_or_default()
    }

    /// Wait until the file `rel` exists (a marker a service touches).
    pub fn wait_file_exists(&self, rel: &str) {
        self.wait_for(&format!("file {rel}"), || self.path(rel).exists());
    }

    /// The lines of `rel` (none if it does not exist).
    pub fn lines(&self, rel: &str) -> Vec<String> {
        self.read(rel)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Start `kennel up` as PID 1 of a new pid + mount namespace and wait for its socket.
    pub fn up(&self) -> &Self {
        self.up_with(&[])
    }

    pub fn up_with(&self, extra: &[&str]) -> &Self {
        let out = fs::File::create(self.path("kennel.out")).expect("create kennel.out");
        let err = fs::File::create(self.path("kennel.err")).expect("create kennel.err");
        let child = self
            .up_command(extra)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn unshare");
        *self.daemon.borrow_mut() = Some(child);
        let socket = self.socket.clone();
        self.wait_for("the control socket", || {
            UnixStream::connect(&socket).is_ok()
        });
        self
    }

    /// Run `kennel up` (in its own namespaces) to its end, for a daemon expected to refuse
    /// to start.
    pub fn up_output(&self, extra: &[&str]) -> Output {
        self.up_command(extra).output().expect("run kennel up")
    }

    /// Make kennel (started after this) see `content` as the host file `path`: a sandbox file
    /// bind-mounted over it in kennel's mount namespace, never on the host.
    pub fn cover(&self, path: &str, content: &str) {
        let name = format!("cover-{}", self.covers.borrow().len());
        fs::write(self.path(&name), content).expect("write cover file");
        self.covers
            .borrow_mut()
            .push((PathBuf::from(path), self.path(&name)));
    }

    /// Give kennel (started after this) a /dev/null of its own: a fresh `1:3` character
    /// device in the sandbox, bind-mounted over /dev/null in kennel's mount namespace only,
    /// and kennel's stdin opened on it there. Whatever kennel and its helpers open as
    /// /dev/null is then this node, which nothing outside the test touches (crun and runc
    /// `fchown` their stdio, which is the host's /dev/null, and so move its ctime). Returns
    /// the node's path.
    pub fn private_null(&self) -> PathBuf {
        use std::os::unix::ffi::OsStrExt;
        let node = self.path("null");
        let c = std::ffi::CString::new(node.as_os_str().as_bytes()).expect("path without NUL");
        // SAFETY: mknod on a NUL-terminated path this function owns.
        let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
        assert_eq!(
            rc,
            0,
            "mknod {}: {}",
            node.display(),
            std::io::Error::last_os_error()
        );
        // The umask may have trimmed the mode.
        fs::set_permissions(&node, fs::Permissions::from_mode(0o666)).expect("chmod null");
        // A file system mounted nodev would refuse it (and so would its bind mount).
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&node)
            .unwrap_or_else(|e| panic!("open {} (nodev?): {e}", node.display()));
        self.covers
            .borrow_mut()
            .push((PathBuf::from("/dev/null"), node.clone()));
        node
    }

    /// The sandbox file or node kennel sees as the host file `path` ([`Sandbox::cover`],
    /// [`Sandbox::private_null`]), if any.
    pub fn covering(&self, path: &str) -> Option<PathBuf> {
        let covers = self.covers.borrow();
        let found = covers
            .iter()
            .rev()
            .find(|(host, _)| host == Path::new(path));
        found.map(|(_, file)| file.clone())
    }

    /// Make kennel (started after this) find every cgroup file system mounted read-only, as
    /// Docker, podman and Kubernetes give it to a container: remounted so in kennel's own
    /// mount namespace only.
    pub fn read_only_cgroups(&self) {
        self.before_up(
            "for m in $(awk '$9 ~ /^cgroup2?$/ {print $5}' /proc/self/mountinfo); do \
             mount -o remount,bind,ro \"$m\" || exit 125; done",
        );
    }

    /// Run `sh` (a shell command) in kennel's mount namespace, before kennel starts: mounts
    /// made there are kennel's only, and go with the namespace.
    pub fn before_up(&self, sh: &str) {
        self.before.borrow_mut().push(sh.to_string());
    }

    /// Start `kennel up` (after this) with `ignored` signals ignored and `blocked` ones
    /// blocked, as a parent like `nohup` would leave them.
    pub fn inherit_signals(&self, ignored: &[i32], blocked: &[i32]) {
        *self.inherited.borrow_mut() = Signals {
            ignored: ignored.to_vec(),
            blocked: blocked.to_vec(),
        };
    }

    /// `kennel up` on this sandbox in its own namespaces, with `extra` arguments (which may
    /// name another `--cgroup-parent` or `--log-dir` than the sandbox's).
    fn up_command(&self, extra: &[&str]) -> Command {
        let mut cmd = match self.netns() {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={ns}")).args(["--", "unshare"]);
                c
            }
            None => Command::new("unshare"),
        };
        cmd.args(UNSHARE);
        let covers = self.covers.borrow();
        let before = self.before.borrow();
        if !covers.is_empty() || !before.is_empty() {
            // A shell as PID 1 first, which mounts and then execs kennel (PID 1 then), with
            // stdin on /dev/null as kennel's namespace has it (which may be covered).
            let mut script = String::new();
            for sh in before.iter() {
                script.push_str(&format!("{{ {sh}; }} || exit 125; "));
            }
            for (i, _) in covers.iter().enumerate() {
                let (a, b) = (2 * i + 1, 2 * i + 2);
                script.push_str(&format!("mount --bind \"${a}\" \"${b}\" || exit 125; "));
            }
            let n = 2 * covers.len();
            script.push_str(&format!("shift {n}; exec \"$@\" </dev/null"));
            cmd.args(["sh", "-c", &script, "sh"]);
            for (host, file) in covers.iter() {
                cmd.arg(file).arg(host);
            }
        }
        cmd.arg(KENNEL)
            .arg("up")
            .arg("--units")
            .arg(&self.units)
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--socket")
            .arg(&self.socket);
        if !extra.contains(&"--log-dir") {
            cmd.arg("--log-dir").arg(&self.logs);
        }
        if !extra.contains(&"--cgroup-parent") {
            cmd.arg("--cgroup-parent").arg(&self.cgroup_parent);
        }
        cmd.args(extra)
            .env("KENNEL_LOG", "debug")
            .stdin(Stdio::null());
        self.inherited.borrow().apply(&mut cmd);
        cmd
    }

    /// kennel's output so far (stdout, then stderr), for failure messages.
    pub fn daemon_output(&self) -> String {
        let out = fs::read_to_string(self.path("kennel.out")).unwrap_or_default();
        let err = fs::read_to_string(self.path("kennel.err")).unwrap_or_default();
        format!("--- kennel stdout ---\n{out}--- kennel stderr ---\n{err}")
    }

    /// Whether the daemon has ended (with its status).
    fn daemon_ended(&self) -> Option<ExitStatus> {
        let mut d = self.daemon.borrow_mut();
        d.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Poll `cond` (every 20ms) until it holds; fail the test with kennel's output if it
    /// does not within [`PATIENCE`]. Also fails at once if the daemon died.
    pub fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if cond() {
                return;
            }
            if let Some(st) = self.daemon_ended() {
                if !cond() {
                    panic!(
                        "kennel exited ({st}) while waiting for {what}\n{}",
                        self.daemon_output()
                    );
                }
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}\n{}", self.daemon_output());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Check that `cond` keeps holding for `window`: for promises about something that
    /// must *not* happen (no more restarts), which no event marks. The window is a few
    /// times longer than the delay after which the unwanted thing would have happened.
    pub fn assert_stays(&self, what: &str, window: Duration, mut cond: impl FnMut() -> bool) {
        let end = Instant::now() + window;
        while Instant::now() < end {
            assert!(cond(), "{what} no longer holds\n{}", self.daemon_output());
            std::thread::sleep(POLL);
        }
        assert!(cond(), "{what} no longer holds\n{}", self.daemon_output());
    }

    /// Run a client command against this sandbox's daemon.
    pub fn kennel(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(KENNEL);
        cmd.args(args).env("KENNEL_SOCKET", &self.socket);
        self.output(cmd, &format!("kennel {args:?}"))
    }

    /// Run a client command as user `nobody` (65534, no groups).
    pub fn kennel_as_nobody(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(KENNEL)
            .args(args)
            .env("KENNEL_SOCKET", &self.socket);
        self.output(cmd, &format!("kennel {args:?} as nobody"))
    }

    /// Run `cmd` to its end, failing the test (with kennel's output) instead of hanging
    /// when it takes more than twice [`PATIENCE`].
    pub fn output(&self, mut cmd: Command, what: &str) -> Output {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run {what}: {e}"));
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let deadline = Instant::now() + 2 * PATIENCE;
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish\n{}", self.daemon_output());
            }
            std::thread::sleep(POLL);
        };
        Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
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

    /// Run a client command that must fail with `code`; returns its stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.kennel(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "kennel {args:?}: stdout {:?}, stderr {stderr:?}\n{}",
            String::from_utf8_lossy(&out.stdout),
            self.daemon_output()
        );
        stderr
    }

    /// `kennel status --json` for one unit.
    pub fn status(&self, unit: &str) -> Value {
        let text = self.ok(&["status", "--json", unit]);
        let v: Value = serde_json::from_str(&text).expect("status json");
        v[0].clone()
    }

    /// `kennel status --json`: every unit's row.
    pub fn status_all(&self) -> Vec<Value> {
        let text = self.ok(&["status", "--json"]);
        serde_json::from_str(&text).expect("status json")
    }

    pub fn state(&self, unit: &str) -> String {
        self.status(unit)["state"]
            .as_str()
            .unwrap_or("?")
            .to_string()
    }

    /// The unit's pid (inside kennel's namespace); fails if it has none.
    pub fn pid(&self, unit: &str) -> i64 {
        let st = self.status(unit);
        st["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("{unit} has no pid: {st}"))
    }

    /// The unit's status detail.
    pub fn detail(&self, unit: &str) -> String {
        self.status(unit)["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Wait until `unit` is in `state`.
    pub fn wait_state(&self, unit: &str, state: &str) {
        let socket = self.socket.clone();
        self.wait_for(&format!("{unit} to be {state}"), || {
            status_via(&socket, unit).is_some_and(|v| v["state"] == state)
        });
    }

    /// The host pid of kennel (PID 1 inside the namespace): unshare's only child.
    pub fn daemon_pid(&self) -> i32 {
        let d = self.daemon.borrow();
        let unshare = d.as_ref().expect("daemon started").id() as i32;
        only_child(unshare).expect("kennel pid")
    }

    pub fn signal_daemon(&self, sig: i32) {
        // SAFETY: kill(2) on our own test's kennel.
        let rc = unsafe { libc::kill(self.daemon_pid(), sig) };
        assert_eq!(rc, 0, "kill kennel: {}", std::io::Error::last_os_error());
    }

    /// Wait for the daemon (and so its namespace) to end.
    pub fn wait_exit(&self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(st) = self.daemon_ended() {
                return st;
            }
            if Instant::now() > deadline {
                panic!("kennel did not exit\n{}", self.daemon_output());
            }
            std::thread::sleep(POLL);
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

    /// The host pid of the process that is `ns_pid` inside kennel's namespace (status rows
    /// and `$$` in services are namespace pids).
    /// Also for a process in a pid namespace below kennel's (a container's init, whose
    /// unit pid is its pid in kennel's namespace).
    pub fn host_pid(&self, ns_pid: i64) -> i32 {
        let daemon = self.daemon_pid();
        let level = ns_pids(daemon).len().saturating_sub(1);
        let under_kennel = |mut p: i32| {
            for _ in 0..64 {
                if p == daemon {
                    return true;
                }
                match proc_status_field(p, "PPid").and_then(|v| v.parse().ok()) {
                    Some(pp) if pp > 0 => p = pp,
                    _ => return false,
                }
            }
            false
        };
        fs::read_dir("/proc")
            .expect("read /proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .find(|&p| ns_pids(p).get(level) == Some(&(ns_pid as i32)) && under_kennel(p))
            .unwrap_or_else(|| panic!("no process {ns_pid} in kennel's namespace"))
    }

    /// The unit's log file content (`NAME.log` only).
    pub fn log(&self, unit: &str) -> String {
        fs::read_to_string(self.logs.join(format!("{unit}.log"))).unwrap_or_default()
    }

    /// The unit's records, `NAME.log` only.
    pub fn records(&self, unit: &str) -> Vec<Record> {
        self.log(unit).lines().map(Record::parse).collect()
    }

    /// Timestamps (ms) of the unit's `kennel started, pid N` records, in order.
    pub fn starts(&self, unit: &str) -> Vec<i64> {
        self.records(unit)
            .iter()
            .filter(|r| r.stream == "kennel" && r.text.starts_with("started, pid "))
            .map(|r| r.ms)
            .collect()
    }

    /// Wait until the unit's log has a record of `stream` whose text contains `text`.
    pub fn wait_log(&self, unit: &str, stream: &str, text: &str) {
        self.wait_for(&format!("{unit}.log: {stream} {text:?}"), || {
            self.records(unit)
                .iter()
                .any(|r| r.stream == stream && r.text.contains(text))
        });
    }

    /// A raw connection to the control socket.
    pub fn connect(&self) -> Conn {
        Conn::new(UnixStream::connect(&self.socket).expect("connect to the control socket"))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.borrow_mut().take() {
            // unshare --kill-child SIGKILLs kennel, which takes its whole pid namespace.
            let _ = d.kill();
            let _ = d.wait();
        }
        if let Some(mut n) = self.net.borrow_mut().take() {
            let _ = n.kill();
            let _ = n.wait();
        }
        remove_cgroups(&cgroup_dirs(self.cgroup_parent.trim_start_matches('/')));
    }
}

/// Remove these cgroup directories and everything under them. A test's processes die
/// asynchronously after its kill, and a cgroup with tasks refuses rmdir (EBUSY) for a
/// moment: each is tried again for up to 10 s.
pub fn remove_cgroups(dirs: &[PathBuf]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for d in dirs {
        while rmdir_tree(d).is_err() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }
}

/// Sandboxes made by this test process, to name their cgroup parents.
static SANDBOXES: AtomicUsize = AtomicUsize::new(0);

/// Where cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The directory `rel` in every cgroup hierarchy where it exists (each v1 controller's,
/// and the v2 tree, mounted at the root or at `unified`).
pub fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(CGROUP_ROOT).into_iter().flatten().flatten() {
        let d = e.path().join(rel);
        if d.is_dir() {
            out.push(d);
        }
    }
    let root = Path::new(CGROUP_ROOT).join(rel);
    if root.is_dir() {
        out.push(root);
    }
    out
}

/// rmdir a cgroup and its children, deepest first (a cgroup directory holds only control
/// files, which rmdir takes along).
fn rmdir_tree(dir: &Path) -> std::io::Result<()> {
    for e in fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            rmdir_tree(&e.path())?;
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Status of one unit without a `&Sandbox`.
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

/// Process state letter from /proc/PID/stat ('Z' for a zombie); `None` once it is gone.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    after.trim_start().chars().next()
}

/// Whether `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z')
}

/// A field of /proc/PID/status, e.g. `PPid`.
pub fn proc_status_field(pid: i32, field: &str) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// The pids of `pid` in each pid namespace it is in, outermost first (`NSpid`).
pub fn ns_pids(pid: i32) -> Vec<i32> {
    proc_status_field(pid, "NSpid")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The children of `pid` (all of its threads' children).
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        let path = t.path().join("children");
        for c in fs::read_to_string(path)
            .unwrap_or_default()
            .split_whitespace()
        {
            if let Ok(c) = c.parse() {
                out.push(c);
            }
        }
    }
    out
}

/// The one child of `pid` (unshare's), once it has forked it.
fn only_child(pid: i32) -> Option<i32> {
    children(pid).first().copied()
}

/// One log record: `TIMESTAMP STREAM text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Milliseconds since the Unix epoch.
    pub ms: i64,
    pub stream: String,
    pub text: String,
}

impl Record {
    /// Parse a record line; panics (failing the test) on a malformed one: the log format
    /// is a promise too.
    pub fn parse(line: &str) -> Record {
        let (ts, rest) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("log line without a timestamp: {line:?}"));
        let (stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
        assert!(
            matches!(stream, "stdout" | "stderr" | "kennel"),
            "log line with stream {stream:?}: {line:?}"
        );
        let ms = rfc3339_ms(ts).unwrap_or_else(|| panic!("bad timestamp {ts:?} in {line:?}"));
        Record {
            ms,
            stream: stream.into(),
            text: text.into(),
        }
    }
}

/// `2026-11-28T01:02:03.456Z` -> milliseconds since the epoch (the log's exact format:
/// UTC, `Z`, three fraction digits).
pub fn rfc3339_ms(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    if b.len() != 24 || &ts[4..5] != "-" || &ts[10..11] != "T" || &ts[19..20] != "." {
        return None;
    }
    if !ts.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, s, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((((days * 24 + h) * 60 + mi) * 60 + s) * 1000 + ms)
}

/// A raw connection to the control socket: write lines, read reply lines.
pub struct Conn {
    reader: BufReader<UnixStream>,
}

impl Conn {
    pub fn new(stream: UnixStream) -> Conn {
        stream
            .set_read_timeout(Some(PATIENCE))
            .expect("set read timeout");
        Conn {
            reader: BufReader::new(stream),
        }
    }

    /// A second handle on the socket, to write from another thread.
    pub fn writer(&self) -> UnixStream {
        self.reader.get_ref().try_clone().expect("clone socket")
    }

    /// Write raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("write");
    }

    /// Read one reply line as JSON; `None` at EOF.
    pub fn reply(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read reply");
        if n == 0 {
            return None;
        }
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("reply {line:?}: {e}")))
    }

    /// Whether the daemon closed the connection: EOF, or ECONNRESET when it closed with
    /// our unread bytes in its buffer.
    pub fn closed(&mut self) -> bool {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }

    /// Send one request line and read its reply.
    pub fn call(&mut self, request: &str) -> Value {
        self.send(format!("{request}\n").as_bytes());
        self.reply().expect("a reply")
    }
}

/// The signal dispositions and mask a command is started with: every disposition at its
/// default and an empty mask, but `ignored` ignored and `blocked` blocked. Set explicitly,
/// so that no test depends on what the test runner inherited.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    pub ignored: Vec<i32>,
    pub blocked: Vec<i32>,
}

impl Signals {
    /// Start `cmd` with these dispositions and this mask.
    pub fn apply(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        let this = self.clone();
        // SAFETY: the closure runs between fork and exec and makes only system calls
        // (rt_sigaction, sigprocmask) on local data.
        unsafe {
            cmd.pre_exec(move || {
                for sig in 1..=64 {
                    if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                        continue;
                    }
                    // A zeroed kernel sigaction is SIG_DFL; SIG_IGN is 1 (the raw call also
                    // reaches 32 and 33, which glibc's wrapper refuses).
                    let mut act = [0u64; 4];
                    if this.ignored.contains(&sig) {
                        act[0] = 1;
                    }
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        act.as_ptr(),
                        std::ptr::null::<u8>(),
                        8usize,
                    );
                }
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                for &sig in &this.blocked {
                    libc::sigaddset(&mut set, sig);
                }
                if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// The bits of `signals` as /proc/PID/status shows a signal set (`SigIgn`, `SigBlk`).
pub fn sig_mask(signals: &[i32]) -> u64 {
    signals.iter().fold(0, |m, s| m | 1 << (s - 1))
}

/// The `SigIgn` and `SigBlk` masks of a `/proc/PID/status` text.
pub fn sig_fields(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no {name} in {status:?}"))
    };
    (field("SigIgn:"), field("SigBlk:"))
}

/// `kennel run ARGS`, as PID 1 of its own pid namespace or as a plain child of the test.
pub struct Run {
    child: Child,
    ns: bool,
}

impl Run {
    /// Start `kennel run ARGS` as PID 1 of a new pid + mount namespace.
    pub fn in_namespace(args: &[&str]) -> Run {
        let mut cmd = Command::new("unshare");
        cmd.args(UNSHARE)
            .arg(KENNEL)
            .arg("run")
            .args(args)
            .stdin(Stdio::null());
        Signals::default().apply(&mut cmd);
        let child = cmd.spawn().expect("spawn unshare kennel run");
        Run { child, ns: true }
    }

    /// Start `kennel run ARGS` as a plain child of the test (not PID 1).
    pub fn plain(args: &[&str]) -> Run {
        let mut cmd = Command::new(KENNEL);
        cmd.arg("run").args(args).stdin(Stdio::null());
        Signals::default().apply(&mut cmd);
        let child = cmd.spawn().expect("spawn kennel run");
        Run { child, ns: false }
    }

    /// Either, by `ns`.
    pub fn new(ns: bool, args: &[&str]) -> Run {
        if ns {
            Run::in_namespace(args)
        } else {
            Run::plain(args)
        }
    }

    /// The host pid of `kennel run` itself.
    pub fn pid(&self) -> i32 {
        let me = self.child.id() as i32;
        if !self.ns {
            return me;
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(p) = only_child(me) {
                return p;
            }
            assert!(Instant::now() < deadline, "unshare did not fork kennel run");
            std::thread::sleep(POLL);
        }
    }

    /// Send `sig` to `kennel run`.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(
            rc,
            0,
            "kill kennel run: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Wait for `kennel run` to end; its exit code (unshare passes it on).
    pub fn code(&mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st
                    .code()
                    .unwrap_or_else(|| panic!("kennel run ended without a code: {st}"));
            }
            assert!(Instant::now() < deadline, "kennel run did not exit");
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        if !self.ns {
            // The command runs in its own process group (its pid): take it, and what it
            // left in that group, down with kennel run.
            for c in children(self.child.id() as i32) {
                // SAFETY: kill(2) on our own descendants' process groups.
                unsafe {
                    libc::kill(-c, libc::SIGKILL);
                    libc::kill(c, libc::SIGKILL);
                }
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
