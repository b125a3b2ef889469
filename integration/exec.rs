//! `kennel exec`: a terminal session driven like a person would (tmux), binary-safe pipes
//! with stdout and stderr apart, Docker's exit codes, sessions that end with the unit or
//! with their client, and exec in a plain (non-container) unit.

use std::fs;
use std::io::Read;
use std::process::{Command, Stdio};

use crate::ctr::{Rig, Tmux};
use crate::harness::{alive, skip, Missing, KENNEL};

/// A container unit `web` that prints `started` once set up, then sleeps.
fn web() -> Rig {
    let s = Rig::new();
    s.sh_container("web", "echo started; exec sleep 100000", "");
    s.up();
    s.wait_started("web");
    s
}

#[test]
fn tty_session_has_the_units_hostname_window_size_ctrl_c_and_exit_code() {
    let s = web();
    let t = Tmux::start(
        100,
        30,
        &format!(
            "KENNEL_SOCKET={} {KENNEL} exec -it web sh; echo EXIT=$?; sleep 100000",
            s.socket.display()
        ),
    );
    t.wait_line("/ #");
    t.keys(&["echo host=$(hostname) size=$(stty size)", "Enter"]);
    t.wait_line("host=web size=30 100");

    t.run(&["resize-window", "-t", "main", "-x", "120", "-y", "40"]);
    t.keys(&["echo size=$(stty size)", "Enter"]);
    t.wait_line("size=40 120");

    t.keys(&["sleep 100", "Enter"]);
    s.wait_for("sleep 100 to run", || {
        !s.find_process(&["sleep", "100"]).is_empty()
    });
    t.keys(&["C-c"]);
    t.keys(&["echo back=$((40+2))", "Enter"]);
    t.wait_line("back=42");

    t.keys(&["exit 3", "Enter"]);
    t.wait_line("EXIT=3");
}

#[test]
fn tty_is_a_terminal_of_the_containers_own_devpts_that_tty_and_ps_name() {
    let s = Rig::new();
    s.sh_container("web", "echo started; exec sleep 100000", "");
    s.unit("plain", "[service]\ncommand = [\"sleep\", \"100000\"]\n");
    s.up();
    s.wait_started("web");
    s.wait_state("plain", "up");
    let exec = format!("KENNEL_SOCKET={} {KENNEL} exec -t", s.socket.display());
    let t = Tmux::start(
        100,
        30,
        &format!(
            "{exec} web sh -c 'echo TTY=$(tty); ps -o tty,args; echo PTS=$(ls /dev/pts)'; \
             {exec} -u 65534 web sh -c 'echo OWNER=$(stat -c %u $(tty))'; \
             {exec} plain sh -c 'echo PLAIN=$(tty)'; sleep 100000"
        ),
    );
    // A plain unit's: the host's devpts, whichever number is free there.
    s.wait_for("the plain unit's terminal", || {
        t.screen().iter().any(|l| l.starts_with("PLAIN=/dev/pts/"))
    });
    let screen = t.screen();
    let after = |prefix: &str| {
        screen
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line:\n{}", screen.join("\n")))
            .to_string()
    };
    // The container's devpts: its first terminal, the only one there (and ptmx).
    let tty = after("TTY=");
    assert_eq!(tty, "/dev/pts/0", "{}", screen.join("\n"));
    assert_eq!(after("PTS="), "0 ptmx", "{}", screen.join("\n"));
    // Given to the user the command runs as, as a login's terminal is.
    assert_eq!(after("OWNER="), "65534", "{}", screen.join("\n"));
    // busybox ps names a terminal by its numbers: that of /dev/pts/0, 136:0.
    let ps = screen
        .iter()
        .find(|l| l.contains("ps -o tty,args"))
        .unwrap_or_else(|| panic!("no ps line:\n{}", screen.join("\n")));
    assert_eq!(ps.split_whitespace().next(), Some("136,0"), "{ps}");
}

#[test]
fn binary_stdin_round_trips_through_exec_i() {
    let s = web();
    let mut data = vec![0u8; 50 << 20];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut data))
        .expect("random bytes");
    fs::write(s.path("in.bin"), &data).unwrap();
    let out = Command::new(KENNEL)
        .args(["exec", "-i", "web", "cat"])
        .env("KENNEL_SOCKET", &s.socket)
        .stdin(fs::File::open(s.path("in.bin")).unwrap())
        .stderr(Stdio::piped())
        .output()
        .expect("kennel exec -i");
    assert!(
        out.status.success(),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "the bytes came back changed");
}

#[test]
fn stderr_is_kept_apart_from_stdout() {
    let s = web();
    let out = s.exec(&[
        "web",
        "sh",
        "-c",
        "echo out1; echo err1 >&2; echo out2; echo err2 >&2",
    ]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out1\nout2\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err1\nerr2\n");
}

#[test]
fn exit_code_is_the_commands_or_128_plus_its_signal() {
    let s = web();
    let code = |args: &[&str]| s.exec(args).status.code();
    assert_eq!(code(&["web", "true"]), Some(0));
    assert_eq!(code(&["web", "sh", "-c", "exit 3"]), Some(3));
    assert_eq!(code(&["web", "sh", "-c", "kill -INT $$"]), Some(130));
}

#[test]
fn exit_codes_125_126_127_say_why_kennel_could_not_run_it() {
    let s = web();
    s.sh_container("idle", "exit 0", "");
    s.ok(&["reload"]);
    s.wait_for("idle to have exited", || s.state("idle") != "up");
    let run = |args: &[&str], code: i32, text: &str| {
        let out = s.exec(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(text), "{args:?}: {err:?} should say {text:?}");
    };
    run(&["nope", "true"], 125, "unknown unit \"nope\"");
    run(&["idle", "true"], 125, "unit idle is not running");
    run(
        &["web", "/etc/hosts"],
        126,
        "exec /etc/hosts: Permission denied",
    );
    run(
        &["web", "no-such-command"],
        127,
        "no-such-command: command not found",
    );
    run(&["web", "/no/such/file"], 127, "/no/such/file");
}

#[test]
fn exec_session_ends_with_the_units_stop() {
    let s = web();
    let mut client = s.exec_child(&["web", "sleep", "1000"]);
    s.wait_for("the exec'd sleep", || {
        !s.find_process(&["sleep", "1000"]).is_empty()
    });
    let sleep = s.find_process(&["sleep", "1000"])[0];
    s.ok(&["stop", "web"]);
    s.wait_for("the client to exit", || {
        client.try_wait().unwrap().is_some()
    });
    assert!(!alive(sleep), "the exec'd sleep survived the stop");
}

#[test]
fn killed_client_ends_its_session() {
    let s = web();
    for (args, argv) in [
        (&["-i", "web", "sleep", "1001"][..], ["sleep", "1001"]),
        (&["-t", "web", "sleep", "1002"][..], ["sleep", "1002"]),
    ] {
        let mut client = s.exec_child(args);
        s.wait_for("the exec'd sleep", || !s.find_process(&argv).is_empty());
        let sleep = s.find_process(&argv)[0];
        assert!(!s.execs("web").is_empty());
        client.kill().unwrap();
        client.wait().unwrap();
        s.wait_for("the session's end", || {
            !alive(sleep) && s.execs("web").is_empty()
        });
    }
    assert_eq!(s.state("web"), "up");
}

#[test]
fn exec_shows_in_status_and_ps_inside_shows_the_units_processes() {
    let s = web();
    let mut client = s.exec_child(&["web", "sleep", "1003"]);
    s.wait_for("the session in status", || !s.execs("web").is_empty());
    let execs = s.execs("web");
    let text = s.ok(&["status", "web"]);
    assert!(text.contains(&format!("exec: {}", execs[0])), "{text}");
    s.wait_for("the exec'd sleep", || {
        !s.find_process(&["sleep", "1003"]).is_empty()
    });
    let ps = s.exec_ok(&["web", "ps", "-o", "pid,args"]);
    assert!(ps.contains("sleep 100000"), "the service: {ps}");
    assert!(ps.contains("sleep 1003"), "the other exec: {ps}");
    assert!(ps.lines().count() < 10, "only the unit's processes: {ps}");
    client.kill().unwrap();
    client.wait().unwrap();
}

#[test]
fn exec_in_a_plain_unit_gets_its_cgroup_user_environment_and_directory() {
    let s = Rig::new();
    fs::create_dir_all(s.path("work")).unwrap();
    s.unit(
        "plain",
        &format!(
            "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\nuser = \"nobody\"\n\
             environment = {{ GREETING = \"hello\" }}\nworking_dir = \"{}\"\n",
            s.p("work")
        ),
    );
    s.up();
    s.wait_state("plain", "up");
    let show = "echo uid=$(id -u) greeting=$GREETING pwd=$(pwd)";
    let out = s.exec_ok(&["plain", "sh", "-c", show]);
    assert_eq!(
        out,
        format!("uid=65534 greeting=hello pwd={}\n", s.p("work"))
    );
    let cgroups = s.exec_ok(&["plain", "cat", "/proc/self/cgroup"]);
    let unit_cgroup = format!("{}/plain", s.cgroup.name);
    assert!(
        cgroups
            .lines()
            .any(|l| l.contains(":pids:") && l.ends_with(&unit_cgroup)),
        "{cgroups}"
    );

    let out = s.exec_ok(&[
        "-u",
        "0",
        "-e",
        "GREETING=bye",
        "-w",
        "/",
        "plain",
        "sh",
        "-c",
        show,
    ]);
    assert_eq!(out, "uid=0 greeting=bye pwd=/\n");
}

/// A unit is up once its helper reached exec, so its namespaces exist: an exec at once
/// never runs in kennel's own (before that was so, it ran on the host).
#[test]
fn exec_right_after_a_start_runs_inside_the_container() {
    let s = Rig::new();
    s.sh_container("web", "echo started; exec sleep 100000", "");
    s.up();
    let host = fs::read_link("/proc/self/ns/net")
        .unwrap()
        .display()
        .to_string();
    for _ in 0..5 {
        s.ok(&["restart", "web"]);
        let ns = s.exec_ok(&["web", "readlink", "/proc/self/ns/net"]);
        assert_ne!(ns.trim(), host, "exec ran in kennel's network namespace");
    }
}

/// Thaws a v2 (unified-tree) cgroup when dropped, even if the test fails.
struct Thaw(std::path::PathBuf);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = fs::write(self.0.join("cgroup.freeze"), "0");
    }
}

fn procs(dir: &std::path::Path) -> usize {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// An exec into a unit whose (unified-tree) cgroup is frozen, as `kennel commit` does,
/// waits for the thaw: the daemon meanwhile keeps answering (its helper joins the cgroup
/// itself; a `clone3` into the frozen cgroup would hold the daemon until the thaw).
#[test]
fn exec_into_a_frozen_unit_does_not_hold_up_the_daemon() {
    let s = web();
    let Some(unified) = s
        .cgroup
        .unit_dirs("web")
        .into_iter()
        .find(|d| d.join("cgroup.freeze").exists())
    else {
        skip(
            Missing::Host,
            "no cgroup v2 freezer (cgroup.freeze) on this kernel",
        );
        return;
    };
    let before = procs(&unified);
    fs::write(unified.join("cgroup.freeze"), "1").expect("freeze the unit");
    let thaw = Thaw(unified.clone());
    let mut client = Command::new(KENNEL)
        .args(["exec", "web", "echo", "thawed"])
        .env("KENNEL_SOCKET", &s.socket)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kennel exec");
    s.wait_for("the exec's helper to reach the frozen cgroup", || {
        procs(&unified) > before
    });
    // The daemon answers while the exec is held.
    assert_eq!(s.state("web"), "up");
    assert!(client.try_wait().expect("try_wait").is_none());
    drop(thaw);
    s.wait_for("the exec to finish after the thaw", || {
        client.try_wait().ok().flatten().is_some()
    });
    let out = client.wait_with_output().expect("exec output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "thawed");
}
