//! Readiness and `requires`: a dependent starts only once its dependency is up (notify,
//! tcp, command probes; a oneshot once it exited 0), and not at all when it failed.

use crate::harness::{Sandbox, KENNEL};

/// The dependency's script: wait for the test to open `go`, write `dep.ready`, then `rest`
/// (which makes it ready).
fn gated(rest: &str) -> String {
    format!("while [ ! -e $D/go ]; do sleep 0.05; done\ntouch $D/dep.ready\n{rest}")
}

/// The dependent records whether the dependency's marker existed when it started.
fn dependent(s: &Sandbox) {
    s.script_unit(
        "app",
        "if [ -e $D/dep.ready ]; then echo ready > $D/saw; else echo not-ready > $D/saw; fi\n\
         exec sleep 100000",
        "requires = [\"dep\"]\n",
    );
}

/// While `dep` runs but is not ready, `app` waits without a process; once the test opens
/// the gate, `app` starts and saw the dependency ready.
fn assert_app_waits_for_dep(s: &Sandbox) {
    s.up();
    s.wait_for("dep to run", || s.status("dep")["pid"].is_i64());
    let dep = s.status("dep");
    assert_eq!(dep["state"], "starting", "{dep}");
    assert_eq!(dep["ready"], false, "{dep}");
    let app = s.status("app");
    assert_eq!(app["state"], "starting", "{app}");
    assert!(app["pid"].is_null(), "{app}");
    assert_eq!(app["detail"], "waiting for dep", "{app}");

    s.touch("go");
    s.wait_state("app", "up");
    assert_eq!(s.wait_file("saw"), "ready\n");
    assert_eq!(s.state("dep"), "up");
    // The dependency's readiness was recorded before the dependent started.
    s.wait_log("app", "kennel", "started, pid");
    let ready = s.records("dep");
    let ready = ready
        .iter()
        .find(|r| r.stream == "kennel" && r.text == "ready")
        .expect("dep's ready record");
    let started = s.starts("app");
    assert_eq!(started.len(), 1);
    assert!(
        ready.ms <= started[0],
        "ready {ready:?}, app started {started:?}"
    );
}

#[test]
fn dependent_starts_after_notify_ready() {
    let s = Sandbox::new();
    s.script_unit(
        "dep",
        &gated(&format!("{KENNEL} notify --ready\nexec sleep 100000")),
        "[ready]\nnotify = true\n",
    );
    dependent(&s);
    assert_app_waits_for_dep(&s);
}

#[test]
fn dependent_starts_after_type_notify_sends_ready() {
    let s = Sandbox::new();
    s.script_unit(
        "dep",
        &gated(&format!(
            "{KENNEL} notify --status loaded\n{KENNEL} notify --ready\nexec sleep 100000"
        )),
        "type = \"notify\"\n",
    );
    dependent(&s);
    assert_app_waits_for_dep(&s);
}

#[test]
fn dependent_starts_after_tcp_port_accepts() {
    const PORT: u16 = 24_731;
    let s = Sandbox::new();
    s.script_unit(
        "dep",
        &gated(&format!(
            "exec /bin/busybox httpd -f -p 127.0.0.1:{PORT} -h $D"
        )),
        &format!("[ready]\ntcp = \"127.0.0.1:{PORT}\"\n"),
    );
    dependent(&s);
    assert_app_waits_for_dep(&s);
}

#[test]
fn dependent_starts_after_ready_command_succeeds() {
    let s = Sandbox::new();
    s.script_unit(
        "dep",
        &gated("exec sleep 100000"),
        &format!(
            "[ready]\ncommand = [\"/bin/sh\", \"-c\", \"test -e {}\"]\n",
            s.p("dep.ready")
        ),
    );
    dependent(&s);
    assert_app_waits_for_dep(&s);
}

#[test]
fn readiness_timeout_fails_the_unit_and_its_dependents() {
    let s = Sandbox::new();
    s.unit(
        "dep",
        "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n\
         [ready]\ncommand = [\"/bin/false\"]\ntimeout = \"300ms\"\n[restart]\npolicy = \"no\"\n",
    );
    dependent(&s);
    s.up();
    s.wait_state("dep", "failed");
    let dep = s.status("dep");
    assert_eq!(dep["detail"], "not ready within 300ms", "{dep}");
    assert!(
        dep["pid"].is_null(),
        "the unready process is stopped: {dep}"
    );
    s.wait_state("app", "failed");
    assert_eq!(s.detail("app"), "required unit dep failed");
    assert!(s.starts("app").is_empty(), "app must never start");
    assert_eq!(s.read("saw"), None);
}

#[test]
fn dependent_starts_after_its_oneshot_exited_0() {
    let s = Sandbox::new();
    s.script_unit(
        "dep",
        &gated("echo migrated"),
        "type = \"oneshot\"\n[restart]\npolicy = \"no\"\n",
    );
    dependent(&s);
    s.up();
    s.wait_for("dep to run", || s.status("dep")["pid"].is_i64());
    let app = s.status("app");
    assert!(app["pid"].is_null(), "{app}");
    assert_eq!(app["detail"], "waiting for dep", "{app}");

    s.touch("go");
    s.wait_state("app", "up");
    assert_eq!(s.wait_file("saw"), "ready\n");
    let dep = s.status("dep");
    assert_eq!(dep["state"], "exited", "{dep}");
    assert_eq!(dep["detail"], "done", "{dep}");
    assert_eq!(dep["last_exit"]["code"], 0, "{dep}");
}

#[test]
fn failed_oneshot_keeps_its_dependent_from_starting() {
    let s = Sandbox::new();
    s.unit(
        "dep",
        "[service]\ncommand = [\"/bin/sh\", \"-c\", \"exit 1\"]\ntype = \"oneshot\"\n\
         [restart]\npolicy = \"no\"\n",
    );
    dependent(&s);
    s.up();
    s.wait_state("app", "failed");
    assert_eq!(s.state("dep"), "failed");
    assert_eq!(s.detail("app"), "required unit dep failed");
    assert!(s.starts("app").is_empty(), "app must never start");

    // Asking for it again runs the oneshot again, which fails again: the reason is given.
    let err = s.fails(&["start", "app"], 1);
    assert!(
        err.contains("unit app failed: required unit dep failed"),
        "{err}"
    );
    s.wait_for("dep's second start", || s.starts("dep").len() == 2);
    assert!(s.starts("app").is_empty(), "app must never start");
    assert_eq!(s.read("saw"), None);
}

/// `kennel status --ready` (a container's healthcheck): 0 once every unit is up or a
/// oneshot finished, 1 naming the units that are not while one is still starting.
#[test]
fn status_ready_exits_0_only_when_every_unit_is_ready() {
    let s = Sandbox::new();
    s.script_unit(
        "dep",
        &gated("exec sleep 100000"),
        &format!(
            "[ready]\ncommand = [\"/bin/test\", \"-e\", \"{}\"]\ntimeout = \"1h\"\n",
            s.p("dep.ready")
        ),
    );
    s.unit("web", "[service]\ncommand = [\"/bin/sleep\", \"100000\"]\n");
    s.script_unit("once", "exit 0", "type = \"oneshot\"\n");
    s.up();
    s.wait_state("web", "up");
    s.wait_state("once", "exited");
    let out = s.kennel(&["status", "--ready"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("not ready:\n  dep (starting"), "{text}");
    assert!(!text.contains("web") && !text.contains("once"), "{text}");
    assert_eq!(s.ok(&["status", "--ready", "web", "once"]), "ready\n");
    s.touch("go");
    s.wait_state("dep", "up");
    assert_eq!(s.ok(&["status", "--ready"]), "ready\n");
}

#[test]
fn a_notify_status_is_the_units_detail() {
    let s = Sandbox::new();
    s.script_unit(
        "db",
        &format!(
            "{KENNEL} notify --ready --status 'accepting connections'\n\
             while [ ! -e $D/next ]; do sleep 0.05; done\n\
             {KENNEL} notify --status 'checkpointing'\nexec sleep 100000"
        ),
        "type = \"notify\"\n",
    );
    s.up();
    s.wait_state("db", "up");
    s.wait_for("the first status", || {
        s.detail("db") == "accepting connections"
    });
    s.touch("next");
    s.wait_for("the second status", || s.detail("db") == "checkpointing");
}
