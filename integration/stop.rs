//! Stopping units: the stop signal, SIGKILL to the whole group after `stop_timeout`,
//! requirers stopped first, and no restart after a user stop.

use std::time::Duration;

use crate::harness::{alive, Sandbox};

#[test]
fn service_ignoring_sigterm_is_killed_with_its_children_after_stop_timeout() {
    let s = Sandbox::new();
    // TERM is ignored by the shell and, inherited, by its background child.
    s.script_unit(
        "stubborn",
        "trap '' TERM\nsleep 100000 &\necho $! > $D/child.pid\necho $$ > $D/main.pid\nwait",
        "stop_timeout = \"1s\"\n",
    );
    s.up();
    s.wait_state("stubborn", "up");
    let main: i64 = s.wait_file("main.pid").trim().parse().expect("main pid");
    let child: i64 = s.wait_file("child.pid").trim().parse().expect("child pid");
    assert_eq!(s.pid("stubborn"), main);
    let (main, child) = (s.host_pid(main), s.host_pid(child));

    s.ok(&["stop", "stubborn"]);
    assert_eq!(s.state("stubborn"), "inactive");
    s.wait_for("both processes to be gone", || {
        !alive(main) && !alive(child)
    });
    s.wait_log("stubborn", "kennel", "did not stop within 1s; killing");
    s.wait_log("stubborn", "kennel", "killed by SIGKILL; stopped");
}

#[test]
fn stop_sends_the_units_stop_signal() {
    let s = Sandbox::new();
    s.script_unit(
        "polite",
        "trap 'echo got INT > $D/signal; exit 0' INT\ntouch $D/trapped\n\
         while :; do sleep 1 & wait $!; done",
        "stop_signal = \"SIGINT\"\n",
    );
    s.up();
    s.wait_file_exists("trapped");
    s.ok(&["stop", "polite"]);
    assert_eq!(s.read("signal").as_deref(), Some("got INT\n"));
    assert_eq!(s.state("polite"), "inactive");
}

#[test]
fn stopping_a_required_unit_stops_its_requirers_first() {
    let s = Sandbox::new();
    let recorder = |name: &str| {
        format!(
            "trap 'echo {name} >> $D/stops; exit 0' TERM\ntouch $D/{name}.trapped\n\
             while :; do sleep 1 & wait $!; done"
        )
    };
    s.script_unit("db", &recorder("db"), "");
    s.script_unit("web", &recorder("web"), "requires = [\"db\"]\n");
    s.script_unit("cron", &recorder("cron"), "requires = [\"web\"]\n");
    s.script_unit("lone", &recorder("lone"), "");
    s.up();
    for u in ["db", "web", "cron", "lone"] {
        s.wait_file_exists(&format!("{u}.trapped"));
    }

    s.ok(&["stop", "db"]);
    assert_eq!(s.lines("stops"), ["cron", "web", "db"]);
    for u in ["db", "web", "cron"] {
        assert_eq!(s.state(u), "inactive", "{u}");
    }
    assert_eq!(s.state("lone"), "up");
}

#[test]
fn user_stop_never_triggers_a_restart() {
    let s = Sandbox::new();
    s.unit(
        "always",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n\
         [restart]\npolicy = \"always\"\ndelay = \"50ms\"\nmax_delay = \"50ms\"\n",
    );
    s.up();
    s.wait_state("always", "up");
    s.ok(&["stop", "always"]);
    let st = s.status("always");
    assert_eq!(st["state"], "inactive", "{st}");
    assert_eq!(st["last_exit"]["signal"], libc::SIGTERM, "{st}");
    // A restart would come 50ms after the exit.
    s.assert_stays("no restart", Duration::from_millis(500), || {
        s.state("always") == "inactive"
    });
    assert_eq!(s.starts("always").len(), 1);
    assert_eq!(s.status("always")["restarts"], 0);
}

#[test]
fn stop_right_after_start_is_not_lost() {
    let s = Sandbox::new();
    // With stop_timeout at 1h, a lost stop signal would leave the unit stopping.
    s.unit(
        "svc",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\nstop_timeout = \"1h\"\n",
    );
    s.up();
    s.wait_state("svc", "up");
    for _ in 0..5 {
        s.ok(&["stop", "svc"]);
        s.ok(&["start", "svc"]);
        s.ok(&["stop", "--no-wait", "svc"]);
        s.wait_state("svc", "inactive");
        let st = s.status("svc");
        assert_eq!(st["last_exit"]["signal"], libc::SIGTERM, "{st}");
    }
}

#[test]
fn a_container_and_a_plain_service_stopped_by_sigterm_both_say_killed_by_sigterm() {
    let s = crate::ctr::Rig::new();
    s.unit("plain", "[service]\ncommand = [\"sleep\", \"100000\"]\n");
    s.container("ctr", &["sleep", "100000"], "");
    // Its service exits 143 of its own accord: that stays an exit code.
    s.container("exits", &["/bin/sh", "-c", "exit 143"], "");
    s.up();
    s.wait_state("plain", "up");
    s.wait_state("ctr", "up");
    s.ok(&["stop", "plain", "ctr"]);
    let signal = serde_json::json!({ "signal": libc::SIGTERM });
    for unit in ["plain", "ctr"] {
        s.wait_log(unit, "kennel", "killed by SIGTERM; stopped");
        assert_eq!(s.status(unit)["last_exit"], signal, "{unit}");
    }
    s.wait_log("exits", "kennel", "exited with code 143");
    assert_eq!(
        s.status("exits")["last_exit"],
        serde_json::json!({ "code": 143 })
    );
}

/// A service whose child left its process group (setsid): each records the TERM it gets.
/// `wait_child`: the main process's trap waits until the child recorded its TERM (so that
/// the SIGKILL to the cgroup after the main process's end cannot come first).
fn forking_recorder(s: &Sandbox, more: &str, wait_child: bool) {
    let wait = if wait_child {
        "until grep -q child $D/term; do sleep 0.01; done; "
    } else {
        ""
    };
    s.script_unit(
        "forker",
        "export D\nsetsid sh -c 'trap \"echo child >> $D/term; exit 0\" TERM; touch $D/child.ready; \
         while :; do sleep 1 & wait $!; done' &\n\
         trap 'echo main >> $D/term; WAIT exit 0' TERM\ntouch $D/main.ready\n\
         while :; do sleep 1 & wait $!; done"
            .replace("WAIT ", wait)
            .as_str(),
        more,
    );
    s.up();
    s.wait_file_exists("main.ready");
    s.wait_file_exists("child.ready");
}

#[test]
fn kill_mode_control_group_signals_every_process_of_the_cgroup() {
    let s = Sandbox::new();
    forking_recorder(&s, "", true);
    s.ok(&["stop", "forker"]);
    s.wait_for("both TERMs", || s.lines("term").len() == 2);
    let mut got = s.lines("term");
    got.sort();
    assert_eq!(got, ["child", "main"]);
}

#[test]
fn kill_mode_mixed_signals_the_main_process_and_kills_the_rest() {
    let s = Sandbox::new();
    forking_recorder(&s, "kill_mode = \"mixed\"\n", false);
    s.ok(&["stop", "forker"]);
    assert_eq!(s.lines("term"), ["main"]);
    assert_eq!(s.state("forker"), "inactive");
}
