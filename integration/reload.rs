//! Reload (`kennel reload` and SIGHUP): added units start, removed ones stop and are gone,
//! changed ones restart with their new configuration, the others keep running; invalid
//! units are refused with every problem and nothing changes.

use crate::harness::Sandbox;

/// A service that writes its `$GREETING` to `NAME.greeting` and stays up.
fn greeter(s: &Sandbox, name: &str, greeting: &str) {
    s.script_unit(
        name,
        &format!("echo \"$GREETING\" > $D/{name}.greeting\nexec sleep 100000"),
        &format!("environment = {{ GREETING = \"{greeting}\" }}\n"),
    );
}

#[test]
fn reload_starts_added_stops_removed_and_restarts_changed_units() {
    let s = Sandbox::new();
    greeter(&s, "keep", "same");
    greeter(&s, "gone", "bye");
    greeter(&s, "change", "one");
    s.up();
    for u in ["keep", "gone", "change"] {
        s.wait_state(u, "up");
    }
    s.wait_file("change.greeting");
    let keep = s.pid("keep");
    let change = s.pid("change");

    greeter(&s, "added", "new");
    s.remove_unit("gone");
    greeter(&s, "change", "two");
    let out = s.ok(&["reload"]);
    assert_eq!(out, "added: added\nremoved: gone\nchanged: change\n");

    assert_eq!(s.state("added"), "up");
    assert_eq!(s.wait_file("added.greeting"), "new\n");
    let names: Vec<String> = s
        .status_all()
        .iter()
        .map(|u| u["name"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(names, ["added", "change", "keep"]);
    let err = s.fails(&["status", "gone"], 1);
    assert!(err.contains("unknown unit \"gone\""), "{err}");

    let st = s.status("change");
    assert_eq!(st["state"], "up", "{st}");
    assert_ne!(
        st["pid"].as_i64(),
        Some(change),
        "changed unit restarted: {st}"
    );
    s.wait_for("the new greeting", || {
        s.read("change.greeting").as_deref() == Some("two\n")
    });
    assert_eq!(s.pid("keep"), keep, "unchanged unit keeps its process");
}

#[test]
fn reload_with_invalid_units_changes_nothing() {
    let s = Sandbox::new();
    greeter(&s, "keep", "same");
    greeter(&s, "change", "one");
    s.up();
    s.wait_state("keep", "up");
    s.wait_state("change", "up");
    let keep = s.pid("keep");
    let change = s.pid("change");

    greeter(&s, "change", "two");
    greeter(&s, "added", "new");
    s.unit(
        "broken",
        "[service]\ncommand = [\"/bin/true\"]\nstop_timeout = 10\n",
    );
    s.unit("typo", "[service]\ncomand = [\"/bin/true\"]\n");
    let err = s.fails(&["reload"], 1);
    let units = s.units.display();
    for line in [
        format!(
            "{units}/broken.toml:3:16: service.stop_timeout: expected a duration string \
             such as \"10s\", found integer 10"
        ),
        format!("{units}/typo.toml:1:1: service.command is required"),
        format!(
            "{units}/typo.toml:2:1: unknown key \"comand\" in [service]; did you mean \"command\"?"
        ),
    ] {
        assert!(
            err.lines().any(|l| l == line),
            "missing {line:?} in:\n{err}"
        );
    }
    assert!(err.contains("nothing was changed"), "{err}");

    let names: Vec<String> = s
        .status_all()
        .iter()
        .map(|u| u["name"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(names, ["change", "keep"]);
    assert_eq!(s.pid("keep"), keep);
    assert_eq!(s.pid("change"), change);
    assert_eq!(s.read("change.greeting").as_deref(), Some("one\n"));
}

#[test]
fn sighup_reloads_the_unit_directory() {
    let s = Sandbox::new();
    greeter(&s, "keep", "same");
    greeter(&s, "gone", "bye");
    s.up();
    s.wait_state("keep", "up");
    s.wait_state("gone", "up");
    let keep = s.pid("keep");

    greeter(&s, "added", "new");
    s.remove_unit("gone");
    s.signal_daemon(libc::SIGHUP);
    s.wait_state("added", "up");
    s.wait_for("gone to be forgotten", || {
        s.kennel(&["status", "gone"]).status.code() == Some(1)
    });
    assert_eq!(s.pid("keep"), keep);

    // An invalid directory on SIGHUP is logged and changes nothing.
    s.unit("typo", "[service]\ncomand = [\"/bin/true\"]\n");
    s.signal_daemon(libc::SIGHUP);
    s.wait_for("the refused reload to be logged", || {
        s.daemon_output().contains("did you mean \\\"command\\\"")
            || s.daemon_output().contains("did you mean \"command\"")
    });
    assert_eq!(s.status_all().len(), 2);
    assert_eq!(s.pid("keep"), keep);
}
