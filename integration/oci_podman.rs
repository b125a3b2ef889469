//! podman (Debian's 4.3) driving kennel as its OCI runtime (`--runtime` naming a
//! `kennel-runc` link to the binary under test, docs/oci.md): each test has a podman of its
//! own (podman_util.rs: store, run and tmp directories in the test's directory, a private
//! mount namespace) in a network namespace the test made (podman's bridge and the published
//! ports live there, never on the host's network), with kennel-runc's state at its default
//! `/run/kennel-runc` on a tmpfs of that mount namespace. The image is a busybox rootfs
//! imported with `podman import` (no registry). Everything is removed when the test ends.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::PATIENCE;
use crate::podman_images::{busybox_root, tar_dir};
use crate::podman_util::{Podman, Runtime, KENNEL_RUNC_ROOT};
use crate::skip::{self, Missing};

const IMAGE: &str = "localhost/kennel-oci-bb:1";

/// A podman with kennel as its runtime and the busybox image imported (with a file in
/// `/tmp` for `tmpcopyup`), or `None` after a skip.
fn setup() -> Option<Podman> {
    if !skip::need_root() {
        return None;
    }
    let p = Podman::with(Runtime::Kennel)?;
    let root = busybox_root(p.dir.path());
    std::fs::write(root.join("tmp/from-image"), "kept\n").expect("write tmp/from-image");
    let tar = p.path("bb.tar");
    tar_dir(&root, &tar);
    p.ok(&["import", &tar.display().to_string(), IMAGE]);
    Some(p)
}

/// `podman run --rm IMAGE sh -c SCRIPT` with `extra` options: (exit code, stdout, stderr).
fn run_rm(p: &Podman, extra: &[&str], script: &str) -> (i32, String, String) {
    let mut args = vec!["run", "--rm"];
    args.extend(extra);
    args.extend([IMAGE, "sh", "-c", script]);
    let out = p.output(&args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `podman run -d --name NAME` with `extra` options, of IMAGE running `args`.
fn run_d(p: &Podman, name: &str, extra: &[&str], args: &[&str]) {
    let mut all = vec!["run", "-d", "--name", name];
    all.extend(extra);
    all.push(IMAGE);
    all.extend(args);
    p.ok(&all);
}

/// A shell that says it started and exits 0 on SIGTERM, 42 on SIGUSR1.
const TRAPPING: &str = "echo started; trap 'echo term; exit 0' TERM; trap 'exit 42' USR1; \
                        while :; do sleep 1 & wait $!; done";

/// Polls `cond` until it holds, failing after [`PATIENCE`] with `what`.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn run_rm_gives_back_the_output_and_exit_code_and_leaves_nothing() {
    let Some(p) = setup() else { return };
    let (code, out, err) = run_rm(&p, &[], "echo hello from kennel-runc; exit 5");
    assert_eq!(code, 5, "{out}{err}");
    assert_eq!(out.trim(), "hello from kennel-runc", "{err}");
    assert_eq!(p.ok(&["ps", "-a", "-q"]).trim(), "");
    // kennel-runc's state of the container is gone with it.
    assert_eq!(p.in_namespaces(&["ls", "-A", KENNEL_RUNC_ROOT]).trim(), "");
}

#[test]
fn detached_container_logs_exec_stop_and_rm() {
    let Some(p) = setup() else { return };
    let c = "kennel-d";
    run_d(&p, c, &[], &["sh", "-c", TRAPPING]);
    p.wait_for(c, "its first line", || p.logs(c).contains("started"));
    assert_eq!(p.state(c), "running");
    let id = p.ok(&["inspect", "--format", "{{.Id}}", c]);
    let id = id.trim();
    let state = p.in_namespaces(&["ls", KENNEL_RUNC_ROOT]);
    assert!(state.lines().any(|l| l == id), "{id} in {state}");

    let out = p.exec(
        c,
        &["sh", "-c", "echo in exec; cat /proc/1/cmdline; exit 7"],
    );
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("in exec\n"), "{said}");
    assert!(
        said.contains("while :"),
        "exec sees the container's PID 1: {said}"
    );

    // `stop`: SIGTERM, which the shell traps and ends with 0 (not the SIGKILL after 10 s).
    p.ok(&["stop", "-t", "10", c]);
    assert_eq!(p.state(c), "exited");
    assert_eq!(p.exit_code(c), 0, "{}", p.logs(c));
    assert!(p.logs(c).contains("term"), "{}", p.logs(c));
    p.ok(&["rm", c]);
    assert_eq!(p.ok(&["ps", "-a", "-q"]).trim(), "");
    assert_eq!(p.in_namespaces(&["ls", "-A", KENNEL_RUNC_ROOT]).trim(), "");
}

/// A command line for `sh`: each word single-quoted.
fn shell_words(cmd: &Command) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut words: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
        .map(|kv| quote(&kv))
        .collect();
    if !words.is_empty() {
        words.insert(0, "env".into());
    }
    words.push(quote(&cmd.get_program().to_string_lossy()));
    words.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    words.join(" ")
}

#[test]
fn run_it_gives_the_process_a_terminal_it_controls() {
    let Some(p) = setup() else { return };
    if Command::new("script").arg("--version").output().is_err() {
        skip::skip(Missing::Provided, "no `script` (util-linux)");
        return;
    }
    // The process is the session leader of its terminal: session 1 (itself, PID 1 of the
    // container), a controlling terminal (tty_nr, field 7, not 0), and input typed on the
    // terminal reaches it.
    let inner = "tty; set -- $(cat /proc/1/stat); echo session=$6 tty_nr=$7; \
                 read -r line; echo got $line";
    let podman = p.command(&["run", "--rm", "-it", IMAGE, "sh", "-c", inner]);
    let mut script = Command::new("script");
    script
        .args(["-qec", &shell_words(&podman), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = script.spawn().expect("spawn script");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        // After the container has started (podman reads the terminal from then on).
        std::thread::sleep(Duration::from_secs(2));
        stdin.write_all(b"typed words\n").expect("write to script");
        std::thread::sleep(Duration::from_secs(1));
    }
    let out = child.wait_with_output().expect("script");
    let said = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{out:?}\n{said}");
    assert!(said.contains("/dev/pts/0\n"), "{said}");
    let fields = said
        .lines()
        .find(|l| l.starts_with("session="))
        .unwrap_or_else(|| panic!("no session line: {said}"));
    assert!(fields.starts_with("session=1 "), "{said}");
    assert!(!fields.ends_with("tty_nr=0"), "{said}");
    assert!(said.contains("got typed words"), "{said}");
}

#[test]
fn a_published_port_reaches_the_container_in_the_tests_network_namespace() {
    let Some(p) = setup() else { return };
    let c = "kennel-web";
    run_d(
        &p,
        c,
        &["-p", "18080:8080"],
        &["httpd", "-f", "-p", "8080", "-h", "/etc"],
    );
    // From the network namespace podman runs in (the test's own), through the port.
    let mut got = String::new();
    wait_until("the published port to answer", || {
        let out = p
            .nsenter()
            .args([
                "/bin/busybox",
                "wget",
                "-qO-",
                "http://127.0.0.1:18080/passwd",
            ])
            .output()
            .expect("wget");
        got = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
    });
    assert!(got.starts_with("root:x:0:0:"), "{got}");
    assert_eq!(p.ok(&["port", c]).trim(), "8080/tcp -> 0.0.0.0:18080");
    p.ok(&["rm", "-f", "-t", "0", c]);
}

#[test]
fn a_pods_containers_share_its_network_namespace() {
    let Some(p) = setup() else { return };
    p.ok(&["pod", "create", "--name", "kennel-pod"]);
    run_d(
        &p,
        "kennel-pod-web",
        &["--pod", "kennel-pod"],
        &[
            "sh",
            "-c",
            "echo shared > /tmp/x; exec httpd -f -p 127.0.0.1:8080 -h /tmp",
        ],
    );
    let mut said = String::new();
    wait_until("the pod's web server", || {
        let (code, out, _) = run_rm(
            &p,
            &["--pod", "kennel-pod"],
            "wget -qO- http://127.0.0.1:8080/x",
        );
        said = out;
        code == 0
    });
    assert_eq!(said.trim(), "shared");
    let infra = p.ok(&[
        "pod",
        "inspect",
        "--format",
        "{{.InfraContainerID}}",
        "kennel-pod",
    ]);
    assert_eq!(p.state(infra.trim()), "running");
    p.ok(&["pod", "rm", "-f", "-t", "0", "kennel-pod"]);
}

/// A cgroup file of the container, read inside it: the v1 hierarchy's, else cgroup2's.
fn cgroup_file(v1: &str, v2: &str) -> String {
    format!("cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}")
}

#[test]
fn memory_and_pids_limits_are_in_the_containers_own_cgroup() {
    let Some(p) = setup() else { return };
    let script = format!(
        "{}; {}",
        cgroup_file("memory/memory.limit_in_bytes", "memory.max"),
        cgroup_file("pids/pids.max", "pids.max")
    );
    let (code, out, err) = run_rm(&p, &["--memory", "64m", "--pids-limit", "50"], &script);
    assert_eq!(code, 0, "{out}{err}");
    // /sys/fs/cgroup inside is the container's own cgroup (not the hierarchy's root,
    // which has no limit).
    assert_eq!(out.lines().collect::<Vec<_>>(), ["67108864", "50"], "{err}");
    // Enforced: with a limit of 20, the 40 processes cannot be made (busybox's shell ends
    // with 2 when it cannot fork).
    let (code, out, err) = run_rm(
        &p,
        &["--pids-limit", "20"],
        "i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done; echo made",
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("can't fork"), "{out}{err}");
    assert!(!out.contains("made"), "{out}{err}");
}

#[test]
fn exit_codes_and_signals_from_podman_kill() {
    let Some(p) = setup() else { return };
    run_d(&p, "kennel-usr1", &[], &["sh", "-c", TRAPPING]);
    p.wait_for("kennel-usr1", "its first line", || {
        p.logs("kennel-usr1").contains("started")
    });
    p.ok(&["kill", "-s", "USR1", "kennel-usr1"]);
    assert_eq!(p.ok(&["wait", "kennel-usr1"]).trim(), "42");
    // The default signal, SIGKILL: 128 + 9.
    run_d(&p, "kennel-killed", &[], &["sleep", "1000"]);
    p.ok(&["kill", "kennel-killed"]);
    assert_eq!(p.ok(&["wait", "kennel-killed"]).trim(), "137");
    let (code, _, err) = run_rm(&p, &[], "exit 0");
    assert_eq!(code, 0, "{err}");
    // A command that is not in the image: podman's 127, with kennel's reason.
    let out = p.output(&["run", "--rm", IMAGE, "/no/such/program"]);
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/no/such/program"),
        "{out:?}"
    );
}

#[test]
fn restart_on_failure_runs_the_container_again_twice() {
    let Some(p) = setup() else { return };
    let c = "kennel-restart";
    run_d(
        &p,
        c,
        &["--restart", "on-failure:2"],
        &["sh", "-c", "echo run; exit 3"],
    );
    p.wait_for(c, "the second restart to end", || {
        p.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.RestartCount}}",
            c,
        ])
        .trim()
            == "exited 2"
    });
    assert_eq!(p.exit_code(c), 3);
    let logs = p.logs(c);
    assert_eq!(logs.lines().filter(|l| *l == "run").count(), 3, "{logs}");
}

#[test]
fn read_only_privileged_and_cap_drop() {
    let Some(p) = setup() else { return };
    // --read-only: the root is read-only, /tmp a tmpfs holding what the image's /tmp held
    // (tmpcopyup).
    let (code, out, err) = run_rm(
        &p,
        &["--read-only"],
        "cat /tmp/from-image; touch /tmp/new && echo tmp writable; touch /new 2>&1",
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("kept\ntmp writable\n"), "{out}{err}");
    assert!(out.contains("Read-only file system"), "{out}{err}");

    // --privileged: every device allowed, the host's device nodes, /dev/ptmx still the
    // container's devpts.
    let (code, out, err) = run_rm(
        &p,
        &["--privileged"],
        "ls -l /dev/ptmx; cat /sys/fs/cgroup/devices/devices.list 2>/dev/null; \
         grep CapEff /proc/self/status",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("/dev/ptmx -> pts/ptmx"), "{out}");
    if std::path::Path::new("/sys/fs/cgroup/devices").is_dir() {
        assert!(out.contains("a *:* rwm"), "{out}");
    }
    assert!(!out.contains("CapEff:\t0000000000000000"), "{out}");

    // --cap-drop ALL: no effective capability.
    let (code, out, err) = run_rm(&p, &["--cap-drop", "ALL"], "grep CapEff /proc/self/status");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "CapEff:\t0000000000000000");
}
