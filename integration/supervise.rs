//! Supervision of plain services: they come up, `kennel start` / `restart` wait for the
//! outcome and say why a unit failed, and the unit's environment reaches the process.

use crate::harness::Sandbox;

#[test]
fn simple_unit_comes_up_and_shuts_down_on_sigterm() {
    let s = Sandbox::new();
    s.unit(
        "sleeper",
        "[service]\ncommand = [\"/bin/sleep\", \"1000\"]\n",
    );
    s.up();
    s.wait_state("sleeper", "up");
    assert!(s.pid("sleeper") > 1);
    s.signal_daemon(libc::SIGTERM);
    let st = s.wait_exit();
    assert_eq!(st.code(), Some(0), "{}", s.daemon_output());
}

#[test]
fn start_returns_once_the_unit_is_up() {
    let s = Sandbox::new();
    // Up only once its marker exists, which it writes a moment after it starts.
    s.script_unit(
        "slow",
        "sleep 0.3; touch $D/slow.ready; exec sleep 100000",
        &format!(
            "[ready]\ncommand = [\"/bin/sh\", \"-c\", \"test -e {}\"]\n",
            s.p("slow.ready")
        ),
    );
    s.up();
    s.wait_state("slow", "up");
    s.ok(&["stop", "slow"]);
    assert_eq!(s.state("slow"), "inactive");
    std::fs::remove_file(s.path("slow.ready")).expect("remove marker");

    s.ok(&["start", "slow"]);
    let st = s.status("slow");
    assert_eq!(st["state"], "up", "{st}");
    assert_eq!(st["ready"], true, "{st}");
}

/// Units whose command cannot be executed, never restarted.
fn missing_commands(s: &Sandbox) {
    s.unit(
        "ghost",
        "[service]\ncommand = [\"/nonexistent/ghost\"]\n[restart]\npolicy = \"no\"\n",
    );
    s.unit(
        "nopath",
        "[service]\ncommand = [\"kennel-no-such-command\"]\n[restart]\npolicy = \"no\"\n",
    );
}

#[test]
fn unit_whose_command_is_missing_fails_with_the_exec_error() {
    let s = Sandbox::new();
    missing_commands(&s);
    s.up();
    s.wait_state("ghost", "failed");
    s.wait_state("nopath", "failed");
    let st = s.status("ghost");
    assert_eq!(
        st["detail"],
        "exec /nonexistent/ghost: no such file or directory",
        "{st}\n{}",
        s.daemon_output()
    );
    assert_eq!(st["last_exit"]["code"], 127, "{st}");
    assert_eq!(
        s.detail("nopath"),
        "exec kennel-no-such-command: command not found in PATH"
    );
    s.wait_log(
        "ghost",
        "kennel",
        "exec /nonexistent/ghost: no such file or directory; failed",
    );
    // Said once: in the unit's log, and in kennel's output (its log lines and the echo of
    // the unit's output; the summary of `kennel up`'s start aside).
    let said = |text: &str| {
        text.lines()
            .filter(|l| l.contains("exec /nonexistent/ghost"))
            .filter(|l| !l.contains("not all units came up"))
            .count()
    };
    assert_eq!(said(&s.log("ghost")), 1, "{}", s.log("ghost"));
    s.wait_for("kennel's line on ghost", || {
        s.daemon_output()
            .contains("ghost: no such file or directory; failed")
    });
    assert_eq!(said(&s.daemon_output()), 1, "{}", s.daemon_output());
}

#[test]
fn start_of_a_unit_whose_command_is_missing_exits_1_naming_the_exec_error() {
    let s = Sandbox::new();
    missing_commands(&s);
    s.up();
    s.wait_state("ghost", "failed");
    let err = s.fails(&["start", "ghost"], 1);
    assert!(
        err.contains("unit ghost failed: exec /nonexistent/ghost: no such file or directory"),
        "{err}"
    );
    let err = s.fails(&["start", "nopath"], 1);
    assert!(
        err.contains("exec kennel-no-such-command: command not found in PATH"),
        "{err}"
    );
}

#[test]
fn start_with_no_wait_returns_before_the_unit_is_up() {
    let s = Sandbox::new();
    s.script_unit(
        "gated",
        "exec sleep 100000",
        &format!(
            "[ready]\ncommand = [\"/bin/sh\", \"-c\", \"test -e {}\"]\n",
            s.p("gate")
        ),
    );
    s.unit(
        "other",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n",
    );
    s.up();
    s.wait_state("other", "up");
    s.ok(&["stop", "gated"]);

    // The gate is closed: a waiting start could not return, --no-wait does.
    s.ok(&["start", "--no-wait", "gated"]);
    assert_eq!(s.state("gated"), "starting");
    s.touch("gate");
    s.wait_state("gated", "up");
}

#[test]
fn unknown_units_are_refused_with_exit_1() {
    let s = Sandbox::new();
    s.unit(
        "real",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n",
    );
    s.up();
    for cmd in ["start", "stop", "restart", "status"] {
        let err = s.fails(&[cmd, "nope"], 1);
        assert!(err.contains("unknown unit \"nope\""), "{cmd}: {err}");
    }
    // A list with one unknown unit is refused as a whole.
    s.wait_state("real", "up");
    let pid = s.pid("real");
    s.fails(&["stop", "real", "nope"], 1);
    assert_eq!(s.pid("real"), pid);
}

#[test]
fn restart_replaces_the_process_and_waits_until_up() {
    let s = Sandbox::new();
    s.unit("svc", "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n");
    s.up();
    s.wait_state("svc", "up");
    let before = s.pid("svc");
    s.ok(&["restart", "svc"]);
    let st = s.status("svc");
    assert_eq!(st["state"], "up", "{st}");
    assert_ne!(st["pid"].as_i64(), Some(before), "{st}");
    // A user restart is not a crash.
    assert_eq!(st["restarts"], 0, "{st}");
}

#[test]
fn environment_working_dir_and_user_reach_the_service() {
    let s = Sandbox::new();
    let out = s.path("out");
    std::fs::create_dir(&out).expect("mkdir out");
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod out");
    std::fs::create_dir(s.path("work")).expect("mkdir work");
    std::fs::write(
        s.path("env"),
        "# comment\nFROM_FILE=file-value\nBOTH=from-file\nexport QUOTED=\"a b\"\n",
    )
    .expect("write env file");
    s.script_unit(
        "envy",
        r#"{
echo "FROM_FILE=$FROM_FILE"
echo "FROM_UNIT=$FROM_UNIT"
echo "BOTH=$BOTH"
echo "QUOTED=$QUOTED"
echo "KENNEL_UNIT=$KENNEL_UNIT"
echo "USER=$USER"
echo "PWD=$(pwd)"
echo "UID=$(id -u)"
echo "GID=$(id -g)"
} > $D/out/result.tmp
mv $D/out/result.tmp $D/out/result"#,
        &format!(
            "type = \"oneshot\"\nenvironment = {{ FROM_UNIT = \"unit-value\", BOTH = \"from-unit\" }}\n\
             environment_file = \"{}\"\nworking_dir = \"{}\"\nuser = \"nobody\"\n\
             [restart]\npolicy = \"no\"\n",
            s.p("env"),
            s.p("work")
        ),
    );
    s.up();
    s.wait_state("envy", "exited");
    let got = s.read("out/result").expect("result written");
    let want = format!(
        "FROM_FILE=file-value\nFROM_UNIT=unit-value\nBOTH=from-unit\nQUOTED=a b\n\
         KENNEL_UNIT=envy\nUSER=nobody\nPWD={}\nUID=65534\nGID=65534\n",
        s.p("work")
    );
    assert_eq!(got, want);
}

/// The zygote (spawn/zygote.rs): a child of kennel's that forks every helper, each of
/// which is kennel's own child (its parent is kennel, not the zygote) and holds nothing
/// of the zygote's (no descriptor beyond its stdio and its log pipes). When the zygote is
/// gone, units still start: helpers are exec'd again.
#[test]
fn helpers_are_forked_by_the_zygote_as_kennels_children_and_survive_its_loss() {
    let s = Sandbox::new();
    s.unit(
        "sleeper",
        "[service]\ncommand = [\"/bin/sleep\", \"1000\"]\n",
    );
    s.up();
    s.wait_state("sleeper", "up");
    let daemon = s.daemon_pid();
    let cmdline = |pid: i32| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
    };
    let kids = crate::harness::children(daemon);
    let zygote = kids
        .iter()
        .copied()
        .find(|&p| cmdline(p).first().map(String::as_str) == Some("kennel-zygote"))
        .unwrap_or_else(|| panic!("no zygote among kennel's children {kids:?}"));
    let sleeper = s.host_pid(s.pid("sleeper"));
    assert!(
        kids.contains(&sleeper),
        "the service (host pid {sleeper}) is not kennel's child: {kids:?}"
    );
    assert!(
        crate::harness::children(zygote).is_empty(),
        "the zygote has children"
    );
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{sleeper}/fd"))
        .expect("list the service's descriptors")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut fds_sorted = fds.clone();
    fds_sorted.sort();
    assert_eq!(fds_sorted, ["0", "1", "2"], "the service's descriptors");

    // Without the zygote, the next start execs its helper.
    // SAFETY: kill(2) of the zygote of this test's own kennel, by pid.
    assert_eq!(unsafe { libc::kill(zygote, libc::SIGKILL) }, 0);
    s.wait_for("the zygote to be gone", || {
        !crate::harness::children(daemon).contains(&zygote)
    });
    s.ok(&["restart", "sleeper"]);
    assert_eq!(s.state("sleeper"), "up");
    let again = s.host_pid(s.pid("sleeper"));
    assert_ne!(again, sleeper);
    assert!(crate::harness::children(daemon).contains(&again));
}

#[test]
fn all_units_up_counts_from_kennels_start_not_the_machines() {
    let s = Sandbox::new();
    s.unit("svc", "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n");
    let before = std::time::Instant::now();
    s.up();
    s.wait_for("all units up", || {
        s.daemon_output().contains("all units up")
    });
    // kennel started after `before`: the time it reports is at most what passed since.
    let bound = before.elapsed().as_secs_f64();
    let out = s.daemon_output();
    let line = out
        .lines()
        .find(|l| l.contains("all units up"))
        .unwrap_or_default();
    let after = line.split("all units up").nth(1).unwrap_or_default();
    let number: String = after
        .trim_start_matches(|c: char| !c.is_ascii_digit())
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let secs: f64 = number
        .parse()
        .unwrap_or_else(|e| panic!("no time in {line:?}: {e}"));
    // (+ 5 ms: kennel rounds to hundredths.)
    assert!(
        secs <= bound + 0.005,
        "{secs}s > {bound}s since the test started kennel: {line}"
    );
    assert!(line.contains("all units up in "), "{line}");
}

#[test]
fn start_of_a_unit_already_up_and_stop_of_one_stopped_say_so() {
    let s = Sandbox::new();
    s.unit("svc", "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n");
    s.unit(
        "other",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n",
    );
    s.up();
    s.wait_state("svc", "up");
    s.wait_state("other", "up");
    let stderr = |args: &[&str]| {
        let out = s.kennel(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        err
    };
    let pid = s.pid("svc");
    assert_eq!(stderr(&["start", "svc"]), "kennel: already up: svc\n");
    assert_eq!(s.pid("svc"), pid, "left as it was");
    s.ok(&["stop", "other"]);
    assert_eq!(
        stderr(&["start", "svc", "other"]),
        "kennel: started: other\nkennel: already up: svc\n"
    );
    s.ok(&["stop", "svc"]);
    assert_eq!(stderr(&["stop", "svc"]), "kennel: already stopped: svc\n");
    assert_eq!(
        stderr(&["stop", "--no-wait", "svc"]),
        "kennel: already stopped: svc\n"
    );
    assert_eq!(stderr(&["start", "svc"]), "kennel: started: svc\n");
}

/// The cell of `column` in each row of `kennel status`'s table, by the header's offsets.
fn table_column(table: &str, column: &str) -> Vec<(String, String)> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let at = header
        .find(column)
        .unwrap_or_else(|| panic!("no {column} in {header:?}"));
    lines
        .map(|l| {
            let name = l.split_whitespace().next().unwrap_or_default().to_string();
            let cell = l.get(at..).unwrap_or_default();
            let cell = cell
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            (name, cell)
        })
        .collect()
}

#[test]
fn status_table_and_json_agree_on_health() {
    let s = Sandbox::new();
    s.unit(
        "plain",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n",
    );
    s.unit(
        "checked",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n\
         [health]\ncommand = [\"/bin/true\"]\ninterval = \"1h\"\n",
    );
    s.up();
    s.wait_state("plain", "up");
    s.wait_state("checked", "up");
    // A unit without [health] has none: null, `-`.
    assert_eq!(s.status("plain")["health"], serde_json::Value::Null);
    let table = s.ok(&["status"]);
    let json = s.status_all();
    for (name, cell) in table_column(&table, "HEALTH") {
        let row = json
            .iter()
            .find(|r| r["name"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} not in {json:?}"));
        let want = row["health"].as_str().unwrap_or("-");
        assert_eq!(cell, want, "{name}: table {table}\njson {row}");
    }
}
