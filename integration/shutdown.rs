//! Shutdown of the daemon: SIGTERM stops units in reverse dependency order and exits 0 (1
//! when a unit did not stop cleanly), a second SIGTERM forces it, `--stop-budget` bounds
//! it, `--main` ends kennel with the main unit's exit code, `kennel shutdown` does the
//! same, and the signals kennel does not act on cannot end it.

use crate::harness::{alive, Sandbox};

/// A service that records its name in `stops` when it gets SIGTERM, once its trap is set
/// (`NAME.trapped`).
fn recorder(name: &str) -> String {
    format!(
        "trap 'echo {name} >> $D/stops; exit 0' TERM\ntouch $D/{name}.trapped\n\
         while :; do sleep 1 & wait $!; done"
    )
}

#[test]
fn sigterm_stops_units_in_reverse_dependency_order_then_exits_0() {
    let s = Sandbox::new();
    s.script_unit("c", &recorder("c"), "");
    s.script_unit("b", &recorder("b"), "requires = [\"c\"]\n");
    s.script_unit("a", &recorder("a"), "requires = [\"b\"]\n");
    s.up();
    for u in ["a", "b", "c"] {
        s.wait_file_exists(&format!("{u}.trapped"));
    }
    s.signal_daemon(libc::SIGTERM);
    let st = s.wait_exit();
    assert_eq!(st.code(), Some(0), "{}", s.daemon_output());
    assert_eq!(s.lines("stops"), ["a", "b", "c"]);
}

#[test]
fn shutdown_command_stops_every_unit_and_the_daemon_exits_0() {
    let s = Sandbox::new();
    s.script_unit("c", &recorder("c"), "");
    s.script_unit("b", &recorder("b"), "after = [\"c\"]\n");
    s.script_unit("a", &recorder("a"), "requires = [\"b\"]\n");
    s.up();
    for u in ["a", "b", "c"] {
        s.wait_file_exists(&format!("{u}.trapped"));
    }
    s.ok(&["shutdown"]);
    assert_eq!(s.lines("stops"), ["a", "b", "c"]);
    let st = s.wait_exit();
    assert_eq!(st.code(), Some(0), "{}", s.daemon_output());
}

#[test]
fn second_sigterm_forces_the_shutdown() {
    let s = Sandbox::new();
    s.script_unit(
        "stubborn",
        "trap '' TERM\necho $$ > $D/main.pid\nexec sleep 100000",
        "stop_timeout = \"1h\"\n",
    );
    s.unit(
        "easy",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n",
    );
    s.up();
    s.wait_state("easy", "up");
    s.wait_file("main.pid");
    let pids = s.namespace_pids();

    s.signal_daemon(libc::SIGTERM);
    s.wait_for("the orderly shutdown to be stuck on stubborn", || {
        let st = s.status("stubborn");
        st["state"] == "stopping" && s.state("easy") == "inactive"
    });
    s.signal_daemon(libc::SIGTERM);
    // With stop_timeout at 1h, only the forced shutdown can end the daemon; stubborn was
    // killed, not stopped, and the exit code says so.
    let st = s.wait_exit();
    assert_eq!(st.code(), Some(1), "{}", s.daemon_output());
    assert!(
        s.daemon_output()
            .contains("not every unit stopped cleanly: stubborn"),
        "{}",
        s.daemon_output()
    );
    assert!(
        s.daemon_output().contains("forced shutdown"),
        "{}",
        s.daemon_output()
    );
    for p in pids {
        s.wait_for(&format!("pid {p} to be gone"), || !alive(p));
    }
}

#[test]
fn signals_kennel_does_not_act_on_do_not_end_it() {
    let s = Sandbox::new();
    s.unit("svc", "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n");
    s.up();
    s.wait_state("svc", "up");
    let pid = s.pid("svc");
    let rtmin = libc::SIGRTMIN();
    for sig in [
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGALRM,
        libc::SIGWINCH,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGXCPU,
        libc::SIGVTALRM,
        rtmin,
        rtmin + 3,
        libc::SIGRTMAX(),
    ] {
        s.signal_daemon(sig);
    }
    // Each is handled: SIGUSR1 logs a line per unit, the others are logged as ignored.
    s.wait_for("every signal to be handled", || {
        let out = s.daemon_output();
        out.contains(&format!("up, pid {pid}, 0 restarts")) && out.matches(" ignored").count() >= 12
    });
    let st = s.status("svc");
    assert_eq!(st["state"], "up", "{st}");
    assert_eq!(st["pid"].as_i64(), Some(pid), "{st}");
    s.signal_daemon(libc::SIGTERM);
    assert_eq!(s.wait_exit().code(), Some(0));
}

#[test]
fn the_stop_budget_kills_what_is_left_and_the_exit_code_is_1() {
    let s = Sandbox::new();
    s.script_unit(
        "stubborn",
        "trap '' TERM\ntouch $D/trapped\nexec sleep 100000",
        "stop_timeout = \"1h\"\n",
    );
    s.up_with(&["--stop-budget", "1s"]);
    s.wait_state("stubborn", "up");
    s.wait_file_exists("trapped");
    s.signal_daemon(libc::SIGTERM);
    // With stop_timeout at 1h, only the budget can end the daemon.
    let st = s.wait_exit();
    let out = s.daemon_output();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains("shutdown budget of 1s spent: killing every unit left"),
        "{out}"
    );
}

#[test]
fn a_failed_unit_makes_the_exit_code_1() {
    let s = Sandbox::new();
    s.unit(
        "broken",
        "[service]\ncommand = [\"/bin/false\"]\n[restart]\npolicy = \"no\"\n",
    );
    s.unit(
        "fine",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n",
    );
    s.up();
    s.wait_state("broken", "failed");
    s.wait_state("fine", "up");
    s.signal_daemon(libc::SIGTERM);
    let st = s.wait_exit();
    let out = s.daemon_output();
    assert_eq!(st.code(), Some(1), "{out}");
    assert!(
        out.contains("not every unit stopped cleanly: broken"),
        "{out}"
    );
}

#[test]
fn the_main_unit_ending_ends_kennel_with_its_exit_code() {
    let s = Sandbox::new();
    s.script_unit(
        "job",
        "while [ ! -e $D/side.trapped ]; do sleep 0.05; done\nexit 3",
        "[restart]\npolicy = \"no\"\n",
    );
    s.script_unit("side", &recorder("side"), "");
    s.up_with(&["--main", "job"]);
    let st = s.wait_exit();
    let out = s.daemon_output();
    assert_eq!(st.code(), Some(3), "{out}");
    assert!(
        out.contains("main unit job ended (exit code 3): shutting down"),
        "{out}"
    );
    assert_eq!(s.lines("stops"), ["side"], "{out}");
}

#[test]
fn a_main_unit_that_is_not_there_is_refused_at_start() {
    let s = Sandbox::new();
    s.unit("web", "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n");
    let out = s.up_output(&["--main", "wbe"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--main wbe: no unit wbe in"), "{err}");
}

/// A read-only root (podman --read-only, Kubernetes' readOnlyRootFilesystem): kennel
/// cannot make its log directory and says what to give it.
#[test]
fn a_read_only_log_directory_is_refused_with_the_way_out() {
    let s = Sandbox::new();
    s.unit("web", "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n");
    let ro = s.p("ro");
    s.before_up(&format!("mkdir -p {ro} && mount -t tmpfs -o ro tmpfs {ro}"));
    let out = s.up_output(&["--log-dir", &format!("{ro}/log")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("read-only file system"), "{err}");
    assert!(err.contains("give --log-dir on a writable mount"), "{err}");
}
