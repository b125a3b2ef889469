//! Restarts: a crashing unit is restarted with growing delays, the start limit makes it
//! failed for good (until an operator starts it), and an unhealthy unit is restarted.

use std::time::Duration;

use crate::harness::Sandbox;

#[test]
fn crashing_unit_is_restarted_with_growing_delays() {
    let s = Sandbox::new();
    s.script_unit(
        "crash",
        "echo crashing; exit 1",
        "[restart]\ndelay = \"150ms\"\nmax_delay = \"10s\"\nburst = 100\ninterval = \"1m\"\n",
    );
    s.up();
    s.wait_for("four starts", || s.starts("crash").len() >= 4);
    let starts = s.starts("crash");
    let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    // Delays 150ms, 300ms, 600ms: each gap is the delay plus the same short run.
    assert!(
        gaps[0] >= 150 && gaps[1] > gaps[0] && gaps[2] > gaps[1],
        "gaps between starts must grow: {gaps:?}"
    );
    let st = s.status("crash");
    assert!(st["restarts"].as_u64().unwrap_or(0) >= 3, "{st}");
    assert_eq!(st["last_exit"]["code"], 1, "{st}");
    let records = s.records("crash");
    assert!(
        records
            .iter()
            .any(|r| r.stream == "kennel" && r.text == "exited with code 1; restart in 300ms"),
        "{records:?}"
    );
    assert!(records
        .iter()
        .any(|r| r.stream == "stdout" && r.text == "crashing"));
}

#[test]
fn start_limit_marks_the_unit_failed_and_restarts_stop() {
    let s = Sandbox::new();
    s.script_unit(
        "crash",
        "echo crashing; exit 2",
        "[restart]\ndelay = \"50ms\"\nmax_delay = \"50ms\"\nburst = 3\ninterval = \"1m\"\n",
    );
    s.up();
    s.wait_state("crash", "failed");
    let st = s.status("crash");
    assert!(
        st["detail"].as_str().unwrap_or("").contains("start limit"),
        "{st}"
    );
    assert_eq!(st["last_exit"]["code"], 2, "{st}");
    assert!(st["pid"].is_null(), "{st}");
    s.wait_for("the third start's record", || s.starts("crash").len() == 3);
    // Restarts came every 50ms; many times that passes without another start.
    s.assert_stays(
        "no start after the limit",
        Duration::from_millis(600),
        || s.starts("crash").len() == 3 && s.state("crash") == "failed",
    );
}

#[test]
fn operator_start_revives_a_failed_unit() {
    let s = Sandbox::new();
    s.script_unit(
        "flaky",
        "[ -e $D/fixed ] || exit 1\nexec sleep 100000",
        "[restart]\ndelay = \"50ms\"\nmax_delay = \"50ms\"\nburst = 2\ninterval = \"1m\"\n",
    );
    s.up();
    s.wait_state("flaky", "failed");
    s.touch("fixed");
    s.ok(&["start", "flaky"]);
    let st = s.status("flaky");
    assert_eq!(st["state"], "up", "{st}");
    assert_eq!(st["restarts"], 0, "a user start resets the counters: {st}");
}

#[test]
fn clean_exit_is_not_restarted_under_on_failure() {
    let s = Sandbox::new();
    s.script_unit("once", "echo bye; exit 0", "[restart]\ndelay = \"50ms\"\n");
    s.script_unit(
        "always",
        "echo bye; exit 0",
        "[restart]\npolicy = \"always\"\ndelay = \"50ms\"\nmax_delay = \"50ms\"\nburst = 100\n",
    );
    s.up();
    s.wait_state("once", "exited");
    s.wait_for("always to restart", || s.starts("always").len() >= 3);
    s.assert_stays("once not restarted", Duration::from_millis(500), || {
        s.starts("once").len() == 1
    });
    assert_eq!(s.status("once")["last_exit"]["code"], 0);
}

#[test]
fn unhealthy_unit_is_stopped_and_restarted() {
    let s = Sandbox::new();
    s.script_unit(
        "svc",
        "touch $D/healthy; exec sleep 100000",
        &format!(
            "[restart]\ndelay = \"50ms\"\n[health]\ncommand = [\"/bin/sh\", \"-c\", \"test -e {}\"]\n\
             interval = \"100ms\"\nretries = 2\n",
            s.p("healthy")
        ),
    );
    s.up();
    s.wait_for("svc healthy", || s.status("svc")["health"] == "healthy");
    let first = s.pid("svc");
    std::fs::remove_file(s.path("healthy")).expect("remove marker");
    s.wait_for("svc restarted and healthy again", || {
        let st = s.status("svc");
        st["health"] == "healthy" && st["pid"].as_i64().is_some_and(|p| p != first)
    });
    assert_eq!(s.status("svc")["restarts"], 1);
    s.wait_log(
        "svc",
        "kennel",
        "unhealthy: check exited with code 1; stopping",
    );
}
