//! Restart policy, exponential backoff, reset_after and the start limit.

use std::time::Duration;

use kennel_core::State;
use kennel_units::RestartPolicy;

use crate::harness::*;

#[test]
fn crashes_back_off_exponentially_up_to_max_delay() {
    let mut h = Harness::up(vec![unit("web")
        .delays(ms(100), secs(1))
        .burst(100, secs(10))]);
    h.take();
    let mut delays = Vec::new();
    for n in 1..=6u32 {
        h.exit("web", code(1));
        let s = h.status("web");
        assert_eq!((s.state, s.restarts, s.pid), (State::Exited, n, None));
        delays.push(h.fire());
    }
    assert_eq!(
        delays,
        [ms(100), ms(200), ms(400), ms(800), secs(1), secs(1)]
    );
    let notices = h.take_notices();
    assert!(notices.contains(&"notice web warn: exited with code 1; restart in 800ms".to_string()));
    assert!(notices.contains(&"notice web info: started, pid 106".to_string()));
}

#[test]
fn status_shows_the_remaining_delay() {
    let mut h = Harness::up(vec![unit("web").delays(ms(400), secs(1))]);
    h.exit("web", code(1));
    assert_eq!(h.detail("web"), "restart in 400ms");
    h.advance(ms(150));
    assert_eq!(h.detail("web"), "restart in 250ms");
}

#[test]
fn a_long_run_resets_the_backoff() {
    let mut h = Harness::up(vec![unit("web").reset_after(secs(5)).burst(100, secs(10))]);
    h.exit("web", code(1));
    assert_eq!(h.fire(), ms(100));
    h.exit("web", code(1));
    assert_eq!(h.fire(), ms(200));
    h.advance(ms(4999));
    h.exit("web", code(1));
    assert_eq!(h.fire(), ms(400));
    h.advance(secs(5));
    h.exit("web", code(1));
    assert_eq!(h.fire(), ms(100));
    assert_eq!(h.status("web").restarts, 4);
}

#[test]
fn start_limit_fails_the_unit() {
    let mut h = Harness::up(vec![unit("web").burst(3, secs(10))]);
    h.exit("web", code(1));
    h.fire();
    h.exit("web", code(1));
    h.fire();
    h.take();
    h.exit("web", code(1));
    assert_eq!(
        h.take(),
        [
            "signal 102 KILL",
            "notice web error: exited with code 1; start limit hit: 3 starts within 10s"
        ]
    );
    let s = h.status("web");
    assert_eq!((s.state, s.restarts), (State::Failed, 2));
    assert_eq!(s.detail, "start limit hit: 3 starts within 10s");
    assert_eq!(h.next_timeout(), None);

    // A user start resets the counters.
    h.start(&["web"], false);
    assert_eq!(h.take_plain(), ["reply 2 ok", "spawn web"]);
    h.exit("web", code(1));
    assert_eq!(h.fire(), ms(100));
    assert_eq!(h.status("web").restarts, 1);
}

/// The quickstart's `flaky` (burst 4 within 20s): the message counts the starts that
/// happened, not the one refused.
#[test]
fn start_limit_counts_the_starts_that_happened() {
    let mut h = Harness::new(vec![unit("web")
        .delays(ms(200), secs(5))
        .burst(4, secs(20))]);
    h.start(&["web"], false);
    loop {
        h.advance(secs(1));
        h.exit("web", code(3));
        if h.state("web") == State::Failed {
            break;
        }
        h.fire();
    }
    let spawns = h.take().iter().filter(|a| *a == "spawn web").count();
    assert_eq!(spawns, 4);
    assert_eq!(h.detail("web"), "start limit hit: 4 starts within 20s");
}

#[test]
fn starts_older_than_the_interval_do_not_count() {
    let mut h = Harness::up(vec![unit("web").burst(2, secs(1)).delays(ms(100), ms(100))]);
    h.exit("web", code(1)); // 1 start within 1s: restart
    h.fire();
    h.advance(ms(950));
    h.exit("web", code(1)); // the first start (1.05s ago) left the window: 1 start
    assert_eq!(h.state("web"), State::Exited);
    h.fire();
    h.exit("web", code(1)); // the second start left it too
    assert_eq!(h.state("web"), State::Exited);
    h.fire();
    h.exit("web", code(1)); // 2 starts within 1s, a third would exceed the burst
    assert_eq!(
        (h.state("web"), h.detail("web")),
        (State::Failed, "start limit hit: 2 starts within 1s".into())
    );
}

#[test]
fn zero_delay_restarts_in_the_same_call() {
    let mut h = Harness::up(vec![unit("web").delays(ms(0), ms(0))]);
    h.take();
    h.exit("web", code(1));
    assert_eq!(h.take_plain(), ["signal 100 KILL", "spawn web"]);
    assert_eq!(h.status("web").pid, Some(101));
}

/// (policy, oneshot, exit) => (state, detail) right after the exit.
#[test]
fn policy_decides_on_success_and_failure() {
    use RestartPolicy::*;
    let cases = [
        (No, false, OK, State::Exited, "exited 0"),
        (No, false, code(3), State::Failed, "exited 3"),
        (No, false, sig(9), State::Failed, "killed by SIGKILL"),
        (OnFailure, false, OK, State::Exited, "exited 0"),
        (OnFailure, false, code(3), State::Exited, "restart in 100ms"),
        (OnFailure, false, sig(11), State::Exited, "restart in 100ms"),
        (Always, false, OK, State::Exited, "restart in 100ms"),
        (Always, false, code(3), State::Exited, "restart in 100ms"),
        (No, true, OK, State::Exited, "done"),
        (No, true, code(1), State::Failed, "exited 1"),
        (OnFailure, true, OK, State::Exited, "done"),
        (OnFailure, true, code(1), State::Exited, "restart in 100ms"),
        (Always, true, OK, State::Exited, "restart in 100ms"),
    ];
    for (policy, is_oneshot, status, state, detail) in cases {
        let u = if is_oneshot { oneshot("u") } else { unit("u") };
        let mut h = Harness::up(vec![u.policy(policy)]);
        h.exit("u", status);
        let what = format!("{policy:?} oneshot={is_oneshot} {status:?}");
        assert_eq!(
            (h.state("u"), h.detail("u")),
            (state, detail.to_string()),
            "{what}"
        );
        assert_eq!(h.status("u").last_exit, Some(status), "{what}");
        let restarts = u32::from(detail.starts_with("restart"));
        assert_eq!(h.status("u").restarts, restarts, "{what}");
    }
}

#[test]
fn success_exit_codes_are_successes() {
    let mut u = unit("u").policy(RestartPolicy::OnFailure);
    u.service.success_exit_codes = vec![0, 3];
    let mut h = Harness::up(vec![u]);
    h.exit("u", code(3));
    assert_eq!(
        (h.state("u"), h.detail("u")),
        (State::Exited, "exited 3".into())
    );
    assert_eq!(h.next_timeout(), None);
}

#[test]
fn a_always_oneshot_keeps_its_dependents_satisfied_between_runs() {
    let mut h = Harness::up(vec![
        oneshot("tick")
            .policy(RestartPolicy::Always)
            .delays(secs(1), secs(1)),
        unit("web").requires(&["tick"]),
    ]);
    h.exit("tick", OK);
    assert_eq!(h.state("web"), State::Up);
    assert!(h.status("tick").ready);
    h.fire();
    assert!(h.status("tick").ready);
}

#[test]
fn restart_waits_for_dependencies_again() {
    let mut h = Harness::up(vec![unit("db"), unit("web").requires(&["db"])]);
    h.exit("web", code(1));
    h.advance(ms(50));
    h.exit("db", code(1));
    h.take();
    // web's delay ends first, but db is still backing off.
    assert_eq!(h.fire(), ms(50));
    assert_eq!(h.take_plain(), Vec::<String>::new());
    assert_eq!(
        (h.state("web"), h.detail("web")),
        (State::Starting, "waiting for db".into())
    );
    assert_eq!(h.fire(), ms(50));
    assert_eq!(h.take_plain(), ["spawn db", "spawn web"]);
}

#[test]
fn huge_durations_do_not_overflow_the_clock() {
    let mut h = Harness::up(vec![unit("web")
        .delays(Duration::MAX, Duration::MAX)
        .stop(15, Duration::MAX)
        .ready_tcp(Duration::MAX)]);
    h.exit("web", code(1));
    assert_eq!(h.state("web"), State::Exited);
    assert!(h.next_timeout().is_some());
}

#[test]
fn an_oom_kill_is_the_exit_reason_and_a_failure() {
    let mut h = Harness::up(vec![unit("web").burst(100, secs(10))]);
    let pid = h.pid("web");
    h.take();
    h.handle(kennel_core::Event::OomKilled {
        unit: "web".into(),
        pid,
    });
    // Killed by SIGKILL, but also an exit code 0 would count as a failure after an OOM kill.
    h.exit("web", code(0));
    let s = h.status("web");
    assert_eq!(
        (s.state, s.detail.as_str()),
        (State::Exited, "restart in 100ms")
    );
    let notices = h.take_notices();
    assert!(
        notices
            .contains(&"notice web error: oom-killed: the unit reached its memory_max".to_string()),
        "{notices:?}"
    );
    assert!(
        notices.contains(&"notice web warn: oom-killed; restart in 100ms".to_string()),
        "{notices:?}"
    );
}

#[test]
fn an_oom_kill_under_policy_no_fails_with_the_reason() {
    let mut h = Harness::up(vec![unit("web").policy(RestartPolicy::No)]);
    let pid = h.pid("web");
    h.handle(kennel_core::Event::OomKilled {
        unit: "web".into(),
        pid,
    });
    h.exit("web", sig(9));
    let s = h.status("web");
    assert_eq!((s.state, s.detail.as_str()), (State::Failed, "oom-killed"));
    // A stale OOM report for an old pid changes nothing.
    h.handle(kennel_core::Event::OomKilled {
        unit: "web".into(),
        pid: pid + 50,
    });
    assert_eq!(h.status("web").detail, "oom-killed");
}

#[test]
fn a_spawn_failure_reported_after_spawned_is_the_exit_reason() {
    let mut h = Harness::up(vec![unit("web").policy(RestartPolicy::No)]);
    let pid = h.pid("web");
    assert_eq!(h.state("web"), State::Up);
    h.handle(kennel_core::Event::SpawnFailed {
        unit: "web".into(),
        pid: Some(pid),
        reason: "exec /nope: no such file or directory".into(),
    });
    h.exit("web", code(127));
    let s = h.status("web");
    assert_eq!(
        (s.state, s.detail.as_str()),
        (State::Failed, "exec /nope: no such file or directory")
    );
    let notices: Vec<String> = h
        .take_notices()
        .into_iter()
        .filter(|n| n.contains("/nope"))
        .collect();
    assert_eq!(
        notices,
        ["notice web error: exec /nope: no such file or directory; failed"]
    );
}

/// Whether `policy` restarts a run that ended with `status` (or as `how` says).
fn restarts(policy: RestartPolicy, end: &str) -> bool {
    let mut u = unit("web").policy(policy);
    if end == "not ready" {
        u = u.ready_tcp(secs(1));
    }
    if end == "unhealthy" {
        u = u.health(1);
    }
    let mut h = Harness::up(vec![u]);
    if end == "unhealthy" {
        h.health("web", false, "exit 1");
    }
    match end {
        "exit 0" => h.exit("web", OK),
        "exit 1" => h.exit("web", code(1)),
        "SIGTERM" => h.exit("web", sig(15)),
        "SIGSEGV" => h.exit("web", sig(11)),
        "not ready" => {
            h.advance(secs(1));
            h.exit("web", sig(15));
        }
        "unhealthy" => h.exit("web", sig(15)),
        other => panic!("no end {other}"),
    }
    h.take_notices().iter().any(|n| n.contains("restart in"))
}

#[test]
fn the_seven_restart_policies_of_systemd() {
    use RestartPolicy::*;
    let ends = [
        "exit 0",
        "exit 1",
        "SIGTERM",
        "SIGSEGV",
        "not ready",
        "unhealthy",
    ];
    // systemd.service(5)'s table (a clean signal, SIGTERM, is a failure for kennel).
    let table = [
        (No, [false, false, false, false, false, false]),
        (Always, [true, true, true, true, true, true]),
        (OnSuccess, [true, false, false, false, false, false]),
        (OnFailure, [false, true, true, true, true, true]),
        (OnAbnormal, [false, false, false, true, true, true]),
        (OnAbort, [false, false, false, true, false, false]),
        (OnWatchdog, [false, false, false, false, false, true]),
    ];
    for (policy, want) in table {
        for (end, want) in ends.iter().zip(want) {
            assert_eq!(restarts(policy, end), want, "{policy:?} after {end}");
        }
    }
}
