//! Helpers of the container, cgroup and exec tests: a [`Rig`] (a [`Sandbox`] with its own
//! cgroup parent, removed from every hierarchy when the test ends, and a busybox layer),
//! layers with whiteouts, `kennel exec` shortcuts, and a private tmux server ([`Tmux`]).

use std::ffi::CString;
use std::fs;
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::harness::{alive, proc_status_field, Sandbox, KENNEL, PATIENCE};

/// Root of the machine's cgroup hierarchies (hybrid here: v1 controllers + `unified`).
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A name unique to this test process and call (cgroup parents, tmux sockets).
pub fn unique(prefix: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// `TARGET_TMPDIR/PREFIX-PID`, this test process's directory for a layer it builds; those
/// of earlier test processes that are gone are removed first.
pub fn process_layer_dir(prefix: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(tmp).expect("mkdir target tmp");
    let stale = format!("{prefix}-");
    for e in fs::read_dir(tmp).expect("read target tmp").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(&stale)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| !alive(p)) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    tmp.join(format!("{prefix}-{}", std::process::id()))
}

/// A layer holding `/bin/BIN`, the C program `integration/SOURCE` built with `gcc -static`
/// (static, so that it runs on the busybox layer and on the host alike) into
/// [`process_layer_dir`]`(PREFIX)`. Call it once per test process (from a `OnceLock`).
pub fn c_layer(prefix: &str, source: &str, bin: &str) -> PathBuf {
    let dir = process_layer_dir(prefix);
    fs::create_dir_all(dir.join("bin")).expect("mkdir layer/bin");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../integration")
        .join(source);
    let out = Command::new("gcc")
        .args(["-static", "-O1", "-Wall", "-o"])
        .arg(dir.join("bin").join(bin))
        .arg(&src)
        .output()
        .expect("run gcc");
    assert!(
        out.status.success(),
        "gcc -static {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The busybox layer, built once per test process (by `examples/layers/busybox.sh`) under
/// the target's temporary directory; directories left there by earlier test processes
/// that are gone are removed.
pub fn busybox_layer() -> &'static Path {
    static LAYER: OnceLock<PathBuf> = OnceLock::new();
    LAYER.get_or_init(|| {
        let dir = process_layer_dir("busybox-layer");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/layers/busybox.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .output()
            .expect("run busybox.sh");
        assert!(
            out.status.success(),
            "busybox.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// A unit cgroup parent for one test (`/kennel-ctr-PID-N`: a prefix of its own, so that it
/// never collides with the sandbox's default parent), removed with whatever kennel created
/// under it from every hierarchy when dropped.
pub struct CgroupParent {
    pub name: String,
}

impl CgroupParent {
    pub fn new() -> CgroupParent {
        CgroupParent {
            name: format!("/{}", unique("kennel-ctr")),
        }
    }

    /// The parent's directory in every hierarchy where it exists.
    pub fn dirs(&self) -> Vec<PathBuf> {
        crate::harness::cgroup_dirs(self.name.trim_start_matches('/'))
    }

    /// A unit's cgroup in a v1 controller's hierarchy (`memory`, `pids`, `cpu`), or in the
    /// v2 tree when the machine has no v1 hierarchies.
    pub fn unit_dir(&self, controller: &str, unit: &str) -> PathBuf {
        let rel = self.name.trim_start_matches('/');
        let v1 = Path::new(CGROUP_ROOT).join(controller);
        if v1.join("cgroup.procs").exists() {
            v1.join(rel).join(unit)
        } else {
            Path::new(CGROUP_ROOT).join(rel).join(unit)
        }
    }

    /// The unit's cgroup directories, every hierarchy.
    pub fn unit_dirs(&self, unit: &str) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join(unit))
            .filter(|d| d.is_dir())
            .collect()
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        crate::harness::remove_cgroups(&self.dirs());
    }
}

/// A [`Sandbox`] whose kennel puts unit cgroups under a parent of the test's own, with the
/// busybox layer in its store as `busybox`. Derefs to the sandbox.
pub struct Rig {
    /// Dropped first: kennel and its namespace go before the cgroups are removed.
    pub s: Sandbox,
    pub cgroup: CgroupParent,
}

impl Deref for Rig {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.s
    }
}

impl Rig {
    pub fn new() -> Rig {
        Rig::on(Sandbox::new())
    }

    /// A rig whose kennel runs in a network namespace of the test's own
    /// ([`Sandbox::with_net`]).
    pub fn with_net() -> Rig {
        Rig::on(Sandbox::new().with_net())
    }

    fn on(s: Sandbox) -> Rig {
        let layers = s.state.join("layers");
        fs::create_dir_all(&layers).expect("mkdir layers");
        let out = Command::new("cp")
            .arg("-a")
            .arg(busybox_layer())
            .arg(layers.join("busybox"))
            .output()
            .expect("cp -a the busybox layer");
        assert!(out.status.success(), "cp -a: {out:?}");
        Rig {
            s,
            cgroup: CgroupParent::new(),
        }
    }

    /// `kennel up --cgroup-parent PARENT` (also to restart it on the same directories).
    pub fn up(&self) -> &Self {
        self.s.up_with(&["--cgroup-parent", &self.cgroup.name]);
        self
    }

    /// `kennel up --cgroup-parent PARENT EXTRA...`.
    pub fn up_extra(&self, extra: &[&str]) -> &Self {
        let mut args = vec!["--cgroup-parent", self.cgroup.name.as_str()];
        args.extend_from_slice(extra);
        self.s.up_with(&args);
        self
    }

    /// A container unit on the busybox layer: `command`, then more `[container]` keys.
    pub fn container(&self, name: &str, command: &[&str], container: &str) -> &Self {
        self.s.unit(
            name,
            &format!(
                "[service]\ncommand = {}\n[container]\nrootfs = [\"busybox\"]\n{container}",
                toml_list(command)
            ),
        );
        self
    }

    /// A container unit running `/bin/sh -c SCRIPT`.
    pub fn sh_container(&self, name: &str, script: &str, container: &str) -> &Self {
        self.container(name, &["/bin/sh", "-c", script], container)
    }

    /// The inode numbers of `rels` under unit `unit`'s container directory
    /// (`STATE/containers/UNIT`): the same numbers at the next start mean kept, not made anew.
    pub fn layer_inodes(&self, unit: &str, rels: &[&str]) -> Vec<u64> {
        use std::os::unix::fs::MetadataExt;
        let dir = self.state.join("containers").join(unit);
        rels.iter()
            .map(|rel| {
                let p = dir.join(rel);
                fs::symlink_metadata(&p)
                    .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
                    .ino()
            })
            .collect()
    }

    /// What of unit `unit`'s layers is in its trash (`STATE/containers/UNIT/.trash`), by
    /// the name it had (`upper`, `work`, `init`), not counting overlayfs's scratch
    /// directory of a kept writable layer (`scratch`), which a start moves there. The trash
    /// is emptied in the background: seen only if it was not emptied yet.
    pub fn trashed_layers(&self, unit: &str) -> Vec<String> {
        let trash = self.state.join("containers").join(unit).join(".trash");
        fs::read_dir(&trash)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter_map(|n| n.split('-').next().map(str::to_string))
                    .filter(|n| n != "scratch")
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The network namespace unit `unit`'s processes are in (`readlink /proc/self/ns/net`
    /// by `kennel exec`).
    pub fn net_ns(&self, unit: &str) -> String {
        self.exec_ok(&[unit, "readlink", "/proc/self/ns/net"])
    }

    /// A oneshot container unit running `/bin/sh -c SCRIPT`, with more `[container]` keys.
    pub fn sh_oneshot(&self, name: &str, script: &str, container: &str) -> &Self {
        self.sh_oneshot_on(name, "busybox", script, container)
    }

    /// [`Rig::sh_oneshot`] on the layer `layer` (a name in STATE/layers, or a path).
    pub fn sh_oneshot_on(&self, name: &str, layer: &str, script: &str, container: &str) -> &Self {
        self.s.unit(
            name,
            &format!(
                "[service]\ncommand = {}\ntype = \"oneshot\"\n[container]\nrootfs = {}\n{container}",
                toml_list(&["/bin/sh", "-c", script]),
                toml_list(&[layer])
            ),
        );
        self
    }

    /// Imports the directory `dir` into the sandbox's store as layer `name` (`kennel layer
    /// import`: a digest layer `STATE/layers/sha256-*`, and `name` a symlink to it, as an
    /// image's layers are kept).
    pub fn import_layer(&self, name: &str, dir: &Path) {
        let (state, units) = (
            self.state.display().to_string(),
            self.units.display().to_string(),
        );
        self.ok(&[
            "layer",
            "import",
            &dir.display().to_string(),
            "--name",
            name,
            "--state-dir",
            &state,
            "--units",
            &units,
        ]);
    }

    /// `kennel exec ARGS`.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        self.s.kennel(&all)
    }

    /// `kennel exec ARGS`, which must succeed; its stdout.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let mut all = vec!["exec"];
        all.extend_from_slice(args);
        self.s.ok(&all)
    }

    /// `kennel exec ARGS` started in the background (stdin /dev/null, output piped).
    pub fn exec_child(&self, args: &[&str]) -> Child {
        Command::new(KENNEL)
            .arg("exec")
            .args(args)
            .env("KENNEL_SOCKET", &self.socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kennel exec")
    }

    /// The unit's stdout lines so far.
    pub fn stdout(&self, unit: &str) -> Vec<String> {
        self.records(unit)
            .into_iter()
            .filter(|r| r.stream == "stdout")
            .map(|r| r.text)
            .collect()
    }

    /// Wait until the unit has written `line` to stdout `n` times; its stdout lines.
    pub fn wait_stdout(&self, unit: &str, line: &str, n: usize) -> Vec<String> {
        self.wait_for(&format!("{unit} to print {line:?} {n} time(s)"), || {
            self.stdout(unit).iter().filter(|l| *l == line).count() >= n
        });
        self.stdout(unit)
    }

    /// Wait until the unit has written `n` stdout lines starting with `prefix`; those lines.
    pub fn wait_stdout_prefix(&self, unit: &str, prefix: &str, n: usize) -> Vec<String> {
        let lines = || -> Vec<String> {
            self.stdout(unit)
                .into_iter()
                .filter(|l| l.starts_with(prefix))
                .collect()
        };
        self.wait_for(&format!("{n} {prefix:?} line(s) from {unit}"), || {
            lines().len() >= n
        });
        lines()
    }

    /// Wait until the unit's service printed `started` (the services of these tests print
    /// it first thing).
    pub fn wait_started(&self, unit: &str) {
        self.wait_stdout(unit, "started", 1);
        // The service can print before kennel has heard that its helper reached exec.
        self.wait_state(unit, "up");
    }

    /// The pids of the unit's `kennel exec` sessions (`execs` in `status --json`).
    pub fn execs(&self, unit: &str) -> Vec<i64> {
        self.status(unit)["execs"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p.as_i64()).collect())
            .unwrap_or_default()
    }

    /// Host pids of kennel's descendants (those in containers included) whose argv is
    /// exactly `argv`.
    pub fn find_process(&self, argv: &[&str]) -> Vec<i32> {
        let want: Vec<u8> = argv
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        let kennel = self.daemon_pid();
        let descends = |mut pid: i32| {
            while pid > 1 {
                if pid == kennel {
                    return true;
                }
                let ppid = proc_status_field(pid, "PPid").and_then(|p| p.parse().ok());
                pid = ppid.unwrap_or(0);
            }
            false
        };
        fs::read_dir("/proc")
            .expect("read /proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|p| fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == want))
            .filter(|&p| descends(p))
            .collect()
    }

    /// The mounts under the sandbox directory in the test's mount namespace and, while
    /// kennel runs, in kennel's (where a container's mounts must never show).
    pub fn sandbox_mounts(&self, kennel_runs: bool) -> Vec<String> {
        let dir = self.dir.path().display().to_string();
        let mut files = vec!["/proc/self/mountinfo".to_string()];
        if kennel_runs {
            files.push(format!("/proc/{}/mountinfo", self.daemon_pid()));
        }
        files
            .iter()
            .flat_map(|f| {
                fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .filter(|l| l.contains(&dir))
            .collect()
    }
}

/// Poll `cond` until it holds, failing after [`PATIENCE`]; for waits while no kennel runs
/// (`Sandbox::wait_for` fails as soon as the daemon has exited).
pub fn poll(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A TOML array of strings.
pub fn toml_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// Mark `path` (in a layer) as a whiteout: a 0/0 character device hides the lower file.
pub fn whiteout(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).expect("path");
    // SAFETY: mknod(2) with a valid C string.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Mark the directory `path` (in a layer) opaque: it hides the lower layers' directory.
pub fn opaque(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).expect("path");
    let name = c"trusted.overlay.opaque";
    // SAFETY: setxattr(2) with valid C strings and a one-byte value.
    let rc = unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    assert_eq!(
        rc,
        0,
        "setxattr {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// A tmux server of the test's own (`tmux -L NAME`), killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Start a detached `cols`x`rows` session running `command` (a `sh` command line).
    pub fn start(cols: u16, rows: u16, command: &str) -> Tmux {
        let t = Tmux {
            socket: unique("kennel-it"),
        };
        let (x, y) = (cols.to_string(), rows.to_string());
        t.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            &x,
            "-y",
            &y,
            command,
        ]);
        t
    }

    /// Run `tmux -L SOCKET ARGS`, which must succeed; its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Type `keys` (tmux key names: text, `Enter`, `C-c`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    /// The screen's lines, without trailing blanks.
    pub fn screen(&self) -> Vec<String> {
        self.run(&["capture-pane", "-p", "-t", "main"])
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect()
    }

    /// Wait until a line of the screen is exactly `line`.
    pub fn wait_line(&self, line: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.screen().iter().any(|l| l == line) {
            assert!(
                Instant::now() < deadline,
                "no line {line:?} on the screen:\n{}",
                self.screen().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .arg("kill-server")
            .env_remove("TMUX")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
