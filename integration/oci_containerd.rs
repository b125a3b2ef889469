//! containerd (Debian's 1.6) with its runc shim (`io.containerd.runc.v2`) running kennel as
//! the runc binary (`ctr run --runc-binary`, the `BinaryName` of a runtime entry,
//! docs/oci.md). Each test starts a containerd of its own: root, state, socket and the
//! runtime's `--root` in the test's directory, in a private mount namespace (with a tmpfs
//! over `/run/containerd`, where the shims put their sockets) and a network namespace of the
//! test's own. The containers run on a busybox rootfs given with `--rootfs` (no image, no
//! registry), in cgroups under a test-unique parent, removed at the end.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use crate::harness::{KENNEL, PATIENCE};
use crate::podman_images::busybox_root;
use crate::podman_util::{runs, Holder};
use crate::skip::{self, Missing};

/// Where the shims of every containerd put their sockets (`/run/containerd/s/`), a tmpfs
/// of the test's mount namespace.
const SHIM_DIR: &str = "/run/containerd";

struct Containerd {
    dir: tempfile::TempDir,
    /// The mount and network namespaces containerd and ctr run in.
    holder: Holder,
    daemon: Option<Child>,
    rootfs: PathBuf,
    /// The cgroup parent of the containers, unique to the test.
    parent: String,
}

impl Containerd {
    fn new(name: &str) -> Option<Containerd> {
        if !skip::need_root() {
            return None;
        }
        // (The shim has no --version.)
        for (prog, arg) in [
            ("containerd", "--version"),
            ("ctr", "--version"),
            ("containerd-shim-runc-v2", "-v"),
        ] {
            if !runs(prog, arg) {
                skip::skip(
                    Missing::Provided,
                    &format!("{prog} is not installed (apt-get install containerd)"),
                );
                return None;
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("kennel-containerd-")
            .tempdir()
            .expect("tempdir");
        let holder = Holder::new(true);
        let rootfs = busybox_root(dir.path());
        let mut c = Containerd {
            dir,
            holder,
            daemon: None,
            rootfs,
            parent: format!("/kennel-containerd-test-{name}-{}", std::process::id()),
        };
        c.holder.tmpfs(Path::new(SHIM_DIR));
        let runtime = c.path("kennel-runc");
        std::os::unix::fs::symlink(KENNEL, &runtime).expect("symlink kennel-runc");
        let d = |rel: &str| c.path(rel).display().to_string();
        let config = format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{}\"\n",
            d("root"),
            d("state"),
            d("containerd.sock"),
            d("containerd.sock.ttrpc"),
            d("opt"),
        );
        std::fs::write(c.path("config.toml"), config).expect("write config.toml");
        let log = std::fs::File::create(c.path("containerd.log")).expect("create log");
        let daemon = c
            .nsenter()
            .args(["containerd", "--config", &d("config.toml")])
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        c.daemon = Some(daemon);
        let sock = c.path("containerd.sock");
        c.wait_until("containerd's socket", || {
            sock.exists() && c.ctr(&["version"]).status.success()
        });
        Some(c)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn nsenter(&self) -> Command {
        self.holder.nsenter()
    }

    /// `ctr --address SOCK ARGS`, to its end.
    fn ctr(&self, args: &[&str]) -> Output {
        self.nsenter()
            .arg("ctr")
            .arg("--address")
            .arg(self.path("containerd.sock"))
            .args(args)
            .output()
            .expect("run ctr")
    }

    /// `ctr ARGS`, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed ({}): {}{}\n--- containerd's log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("containerd.log")).unwrap_or_default()
    }

    /// `ctr run` of the busybox rootfs with kennel as the runc binary: `opts` (`-d`,
    /// `--with-ns` ...), the container `id` running `args`.
    fn run(&self, opts: &[&str], id: &str, args: &[&str]) -> Output {
        let runtime = self.path("kennel-runc").display().to_string();
        let runc_root = self.path("runc").display().to_string();
        let rootfs = self.rootfs.display().to_string();
        let cgroup = format!("{}/{id}", self.parent);
        let mut all = vec![
            "run",
            "--runc-binary",
            &runtime,
            "--runc-root",
            &runc_root,
            "--cgroup",
            &cgroup,
        ];
        all.extend(opts);
        all.extend(["--rootfs", &rootfs, id]);
        all.extend(args);
        self.ctr(&all)
    }

    /// The task's status (`RUNNING`, `STOPPED` ...) and pid from `ctr task ls`.
    fn task(&self, id: &str) -> Option<(String, i32)> {
        let list = self.ok(&["task", "ls"]);
        list.lines().skip(1).find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&id)).then(|| (f[2].to_string(), f[1].parse().unwrap_or(0)))
        })
    }

    /// Waits until the task `id` has the status `want` (`RUNNING`, `STOPPED`).
    fn wait_task(&self, id: &str, want: &str) {
        self.wait_until(&format!("task {id} to be {want}"), || {
            self.task(id).is_some_and(|(s, _)| s == want)
        });
    }

    fn wait_until(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\n--- containerd's log ---\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Containerd {
    /// Every task killed and deleted, every container deleted, containerd stopped, then
    /// the namespace's last process (the holder) ended, and the cgroup parent removed.
    fn drop(&mut self) {
        let list = self.ctr(&["task", "ls", "-q"]).stdout;
        for id in String::from_utf8_lossy(&list).lines() {
            let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
            let _ = self.ctr(&["task", "delete", "-f", id]);
        }
        let list = self.ctr(&["container", "ls", "-q"]).stdout;
        for id in String::from_utf8_lossy(&list).lines() {
            let _ = self.ctr(&["container", "delete", id]);
        }
        if let Some(mut d) = self.daemon.take() {
            // SAFETY: kill on the pid of our own child, not yet waited for.
            unsafe {
                libc::kill(d.id() as i32, libc::SIGTERM);
            }
            let _ = d.wait();
        }
        // The shims end with their tasks.
        self.holder.end("containerd");
        let parent = self.parent.trim_start_matches('/');
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join(parent));
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(parent));
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn ctr_run_gives_back_the_output_and_exit_code() {
    let Some(c) = Containerd::new("run") else {
        return;
    };
    let out = c.run(
        &["--rm"],
        "kennel-run",
        // The pause: as in the exec test, ctr may stop copying output at the exit status.
        &["sh", "-c", "echo hello from kennel-runc; sleep 0.5; exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}\n{}", c.log());
    assert_eq!(stdout(&out).trim(), "hello from kennel-runc");
    assert_eq!(c.ok(&["container", "ls", "-q"]).trim(), "");
    let out = c.run(&["--rm"], "kennel-true", &["sh", "-c", "exit 0"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn the_container_is_in_its_cgroup_with_its_limit() {
    let Some(c) = Containerd::new("cgroup") else {
        return;
    };
    let out = c.run(
        &["-d", "--memory-limit", "67108864"],
        "kennel-cg",
        &["sleep", "1000"],
    );
    assert!(out.status.success(), "{out:?}\n{}", c.log());
    c.wait_task("kennel-cg", "RUNNING");
    // The limit, on the host's side (ctr's spec mounts no /sys/fs/cgroup inside).
    let cgroup = format!("{}/kennel-cg", c.parent);
    let v1 = Path::new("/sys/fs/cgroup/memory")
        .join(cgroup.trim_start_matches('/'))
        .join("memory.limit_in_bytes");
    let v2 = Path::new("/sys/fs/cgroup")
        .join(cgroup.trim_start_matches('/'))
        .join("memory.max");
    let limit = std::fs::read_to_string(&v1)
        .or_else(|_| std::fs::read_to_string(&v2))
        .unwrap_or_else(|e| panic!("{} or {}: {e}", v1.display(), v2.display()));
    assert_eq!(limit.trim(), "67108864");
    // Inside: its PID 1 is the program, in that cgroup.
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "look",
        "kennel-cg",
        "sh",
        "-c",
        "grep -E '(^[0-9]+:memory:|^0::)' /proc/1/cgroup; cat /proc/1/comm",
    ]);
    assert!(out.status.success(), "{out:?}");
    let said = stdout(&out);
    assert!(said.contains(&format!(":{cgroup}\n")), "{said}");
    assert!(said.ends_with("sleep\n"), "{said}");
    c.ok(&["task", "kill", "-s", "SIGKILL", "kennel-cg"]);
    c.wait_task("kennel-cg", "STOPPED");
}

#[test]
fn ctr_task_exec_runs_in_the_container_with_its_exit_code() {
    let Some(c) = Containerd::new("exec") else {
        return;
    };
    let out = c.run(
        &["-d"],
        "kennel-exec",
        &["sh", "-c", "echo marker > /tmp/m; exec sleep 1000"],
    );
    assert!(out.status.success(), "{out:?}\n{}", c.log());
    c.wait_task("kennel-exec", "RUNNING");
    let mut n = 0;
    c.wait_until("the container's marker", || {
        n += 1;
        let id = format!("wait{n}");
        let args = [
            "task",
            "exec",
            "--exec-id",
            &id,
            "kennel-exec",
            "sh",
            "-c",
            "[ -f /tmp/m ]",
        ];
        c.ctr(&args).status.success()
    });
    // (The pause before the exit: ctr stops copying the output once it has the exit
    // status, and under load the last bytes can still be on their way from the shim.)
    let out = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "kennel-exec",
        "sh",
        "-c",
        "cat /tmp/m; cat /proc/1/cmdline; echo; sleep 1; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{out:?}\n{}", c.log());
    let said = stdout(&out);
    assert!(
        said.replace('\0', " ").starts_with("marker\nsleep 1000"),
        "{said:?}"
    );
    // `ctr task ps` lists the container's processes (through `kennel-runc ps`).
    let (_, pid) = c.task("kennel-exec").expect("task");
    let ps = c.ok(&["task", "ps", "kennel-exec"]);
    assert!(ps.lines().any(|l| l.starts_with(&pid.to_string())), "{ps}");
}

#[test]
fn ctr_task_kill_signals_and_delete_reports_the_status() {
    let Some(c) = Containerd::new("kill") else {
        return;
    };
    let trap = "trap 'exit 42' USR1; while :; do sleep 1 & wait $!; done";
    let out = c.run(&["-d"], "kennel-kill", &["sh", "-c", trap]);
    assert!(out.status.success(), "{out:?}\n{}", c.log());
    c.wait_task("kennel-kill", "RUNNING");
    // The trap is set once the shell runs its loop.
    std::thread::sleep(Duration::from_millis(300));
    c.ok(&["task", "kill", "-s", "SIGUSR1", "kennel-kill"]);
    c.wait_task("kennel-kill", "STOPPED");
    // `task delete` says the exit status.
    let out = c.ctr(&["task", "delete", "kennel-kill"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exit code 42"),
        "{out:?}"
    );
    assert!(c.task("kennel-kill").is_none());
    c.ok(&["container", "delete", "kennel-kill"]);
    assert_eq!(c.ok(&["container", "ls", "-q"]).trim(), "");
    // Nothing of it is left in kennel-runc's state.
    let left = std::fs::read_dir(c.path("runc/default"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "kennel-runc state left");
}

#[test]
fn a_running_task_is_killed_and_deleted_by_force() {
    let Some(c) = Containerd::new("force") else {
        return;
    };
    let out = c.run(&["-d"], "kennel-force", &["sleep", "1000"]);
    assert!(out.status.success(), "{out:?}\n{}", c.log());
    c.wait_task("kennel-force", "RUNNING");
    let (_, pid) = c.task("kennel-force").expect("task");
    c.ok(&["task", "delete", "-f", "kennel-force"]);
    assert!(c.task("kennel-force").is_none());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the process {pid} is gone"
    );
}

#[test]
fn a_pod_like_pair_shares_a_network_namespace_by_path() {
    let Some(c) = Containerd::new("pair") else {
        return;
    };
    let out = c.run(
        &["-d"],
        "kennel-web",
        &[
            "sh",
            "-c",
            "echo shared > /tmp/x; exec httpd -f -p 127.0.0.1:8080 -h /tmp",
        ],
    );
    assert!(out.status.success(), "{out:?}\n{}", c.log());
    c.wait_task("kennel-web", "RUNNING");
    let (_, pid) = c.task("kennel-web").expect("task");
    let netns = format!("network:/proc/{pid}/ns/net");
    let mut said = String::new();
    c.wait_until("the web server through the shared namespace", || {
        let out = c.run(
            &["--rm", "--with-ns", &netns],
            "kennel-client",
            // The pause: ctr stops copying output once it has the exit status, and under
            // load a process that exits at once can lose its last output.
            &["sh", "-c", "wget -qO- http://127.0.0.1:8080/x && sleep 0.5"],
        );
        said = stdout(&out);
        out.status.success() && said.trim() == "shared"
    });
    assert_eq!(said.trim(), "shared");
}
