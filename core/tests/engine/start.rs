//! Starting: dependency order, oneshots, required units failing, spawn failures.

use kennel_core::{Command, Event, State};
use kennel_units::RestartPolicy;

use crate::harness::*;

#[test]
fn up_starts_in_dependency_order() {
    let mut h = Harness::new(vec![
        unit("db"),
        unit("web").requires(&["db"]),
        unit("proxy").after(&["web"]),
    ]);
    h.command(Command::Up, false);
    assert_eq!(
        h.take_plain(),
        ["reply 1 ok", "spawn db", "spawn web", "spawn proxy"]
    );
    for (name, pid) in [("db", 100), ("web", 101), ("proxy", 102)] {
        let s = h.status(name);
        assert_eq!(
            (s.state, s.pid, s.ready),
            (State::Up, Some(pid), true),
            "{name}"
        );
    }
}

#[test]
fn a_unit_waits_while_its_dependency_starts() {
    let mut h = Harness::new(vec![
        unit("db").ready_tcp(secs(30)),
        unit("web").requires(&["db"]),
    ]);
    h.command(Command::Up, false);
    assert_eq!(
        h.take_plain(),
        ["reply 1 ok", "spawn db", "watch-ready db 100"]
    );
    assert_eq!(h.state("web"), State::Starting);
    assert_eq!(h.detail("web"), "waiting for db");
    assert_eq!(h.detail("db"), "waiting for ready");
    h.ready("db");
    assert_eq!(
        h.take(),
        [
            "notice db info: ready",
            "spawn web",
            "notice web info: started, pid 101"
        ]
    );
}

#[test]
fn start_pulls_in_required_units_but_not_ordering_only_ones() {
    let mut h = Harness::new(vec![
        unit("db"),
        unit("cache"),
        unit("web").requires(&["db"]).after(&["cache"]),
    ]);
    h.start(&["web"], false);
    assert_eq!(h.take_plain(), ["reply 1 ok", "spawn db", "spawn web"]);
    assert_eq!(h.state("cache"), State::Inactive);
}

#[test]
fn start_of_a_running_unit_is_a_no_op() {
    let mut h = Harness::up(vec![unit("web")]);
    h.take();
    h.start(&["web"], true);
    assert_eq!(h.take(), ["reply 2 ok"]);
    assert_eq!(h.status("web").pid, Some(100));
}

#[test]
fn dependent_of_a_oneshot_spawns_after_it_exited_0() {
    let mut h = Harness::up(vec![oneshot("migrate"), unit("web").requires(&["migrate"])]);
    assert_eq!(h.take_plain(), ["reply 1 ok", "spawn migrate"]);
    let s = h.status("migrate");
    assert_eq!(
        (s.state, s.ready, s.detail.as_str()),
        (State::Starting, false, "running")
    );
    assert_eq!(h.detail("web"), "waiting for migrate");
    h.exit("migrate", OK);
    assert_eq!(h.take_plain(), ["signal 100 KILL", "spawn web"]);
    let s = h.status("migrate");
    assert_eq!(
        (s.state, s.ready, s.detail.as_str()),
        (State::Exited, true, "done")
    );
    assert_eq!((s.pid, s.uptime, s.last_exit), (None, None, Some(OK)));
}

#[test]
fn dependent_of_a_failed_oneshot_fails_transitively() {
    let mut h = Harness::up(vec![
        oneshot("migrate").policy(RestartPolicy::No),
        unit("web").requires(&["migrate"]),
        unit("api").requires(&["web"]),
        unit("metrics").after(&["web"]),
    ]);
    let id = h.start(&["api"], true);
    h.take();
    h.exit("migrate", code(2));
    assert_eq!(
        h.take(),
        [
            "signal 100 KILL",
            "notice migrate error: exited with code 2; failed",
            "notice web error: required unit migrate failed",
            "notice api error: required unit web failed",
            // Ordering only: a failed unit does not hold it back.
            "spawn metrics",
            format!("reply {id} failed api: required unit web failed").as_str(),
            "notice metrics info: started, pid 101",
        ]
    );
    assert_eq!(h.status("migrate").detail, "exited 2");
    assert_eq!(
        (h.state("web"), h.detail("web")),
        (State::Failed, "required unit migrate failed".into())
    );
    assert_eq!(h.state("api"), State::Failed);
}

#[test]
fn a_oneshot_that_will_be_restarted_keeps_dependents_waiting() {
    let mut h = Harness::up(vec![oneshot("migrate"), unit("web").requires(&["migrate"])]);
    h.take();
    h.exit("migrate", code(1));
    assert_eq!(h.take_plain(), ["signal 100 KILL"]);
    assert_eq!(h.detail("web"), "waiting for migrate");
    h.fire();
    h.exit("migrate", OK);
    assert_eq!(
        h.take_plain(),
        ["spawn migrate", "signal 101 KILL", "spawn web"]
    );
}

#[test]
fn explicit_start_reruns_a_finished_oneshot_and_up_does_not() {
    let mut h = Harness::up(vec![oneshot("migrate")]);
    h.exit("migrate", OK);
    h.take();
    h.command(Command::Up, true);
    assert_eq!(h.take(), ["reply 2 ok"]);
    h.start(&["migrate"], false);
    assert_eq!(h.take_plain(), ["reply 3 ok", "spawn migrate"]);
}

#[test]
fn spawn_failure_without_a_pid_is_a_failed_start() {
    let mut h = Harness::new(vec![unit("db").policy(RestartPolicy::No)]);
    h.auto_spawn = false;
    let id = h.start(&["db"], true);
    assert_eq!(h.take(), ["spawn db"]);
    h.handle(Event::SpawnFailed {
        unit: "db".into(),
        pid: None,
        reason: "exec /bin/db: not found".into(),
    });
    assert_eq!(
        h.take(),
        [
            "notice db error: exec /bin/db: not found; failed",
            format!("reply {id} failed db: exec /bin/db: not found").as_str(),
        ]
    );
    let s = h.status("db");
    assert_eq!(
        (s.state, s.last_exit, s.detail.as_str()),
        (State::Failed, None, "exec /bin/db: not found")
    );
}

#[test]
fn spawn_failure_without_a_pid_restarts_by_policy() {
    let mut h = Harness::new(vec![unit("db")]);
    h.auto_spawn = false;
    h.start(&["db"], true);
    h.handle(Event::SpawnFailed {
        unit: "db".into(),
        pid: None,
        reason: "exec /bin/db: not found".into(),
    });
    h.take();
    assert_eq!(
        (h.state("db"), h.detail("db")),
        (State::Exited, "restart in 100ms".into())
    );
    assert_eq!(h.fire(), ms(100));
    assert_eq!(h.take(), ["spawn db"]);
}

#[test]
fn spawn_failure_with_a_pid_waits_for_the_exit_in_either_order() {
    for exit_first in [false, true] {
        let mut h = Harness::new(vec![unit("db").policy(RestartPolicy::No)]);
        h.auto_spawn = false;
        h.start(&["db"], false);
        h.take();
        let failed = Event::SpawnFailed {
            unit: "db".into(),
            pid: Some(100),
            reason: "mount overlay on /x: EINVAL".into(),
        };
        let exited = Event::Exited {
            pid: 100,
            status: code(127),
        };
        if exit_first {
            h.handle(exited);
            assert_eq!(h.take(), Vec::<String>::new());
            h.handle(failed);
        } else {
            h.handle(failed);
            assert_eq!(h.state("db"), State::Starting);
            assert_eq!(h.status("db").pid, Some(100));
            h.handle(exited);
        }
        // One notice for the failed spawn, with what follows.
        assert_eq!(
            h.take(),
            [
                "signal 100 KILL",
                "notice db error: mount overlay on /x: EINVAL; failed"
            ],
            "exit first: {exit_first}"
        );
        let s = h.status("db");
        assert_eq!(s.state, State::Failed);
        assert_eq!(s.detail, "mount overlay on /x: EINVAL");
        assert_eq!(s.last_exit, Some(code(127)));
    }
}

#[test]
fn an_exit_reported_before_spawned_is_kept() {
    let mut h = Harness::new(vec![unit("db").policy(RestartPolicy::No)]);
    h.auto_spawn = false;
    h.start(&["db"], false);
    h.take();
    h.handle(Event::Exited {
        pid: 100,
        status: code(3),
    });
    h.spawned("db");
    assert_eq!(h.take_plain(), ["signal 100 KILL"]);
    assert_eq!(
        (h.state("db"), h.detail("db")),
        (State::Failed, "exited 3".into())
    );
}

#[test]
fn unknown_pids_are_ignored() {
    let mut h = Harness::up(vec![unit("db")]);
    h.take();
    h.handle(Event::Exited {
        pid: 4242,
        status: code(1),
    });
    h.handle(Event::Spawned {
        unit: "db".into(),
        pid: 555,
    });
    h.handle(Event::Ready {
        unit: "nope".into(),
        pid: 100,
    });
    assert_eq!(h.take(), Vec::<String>::new());
    assert_eq!(h.status("db").pid, Some(100));
}

#[test]
fn uptime_counts_from_the_spawn() {
    let mut h = Harness::up(vec![unit("db")]);
    h.advance(secs(7));
    assert_eq!(h.status("db").uptime, Some(secs(7)));
}

#[test]
fn up_leaves_socket_activated_units_to_their_sockets_unless_required() {
    let activated = |name: &str| {
        let mut u = unit(name);
        u.service.activate = kennel_units::Activate::Socket;
        u
    };
    let mut h = Harness::new(vec![
        activated("idle"),
        activated("db"),
        unit("web").requires(&["db"]),
    ]);
    h.command(Command::Up, true);
    // db is pulled in by web; idle waits for a connection (the shell starts it then).
    assert_eq!(h.take_plain(), ["spawn db", "spawn web", "reply 1 ok"]);
    assert_eq!(h.state("idle"), State::Inactive);
    h.start(&["idle"], false);
    assert_eq!(h.take_plain(), ["reply 2 ok", "spawn idle"]);
}

#[test]
fn a_oneshot_that_remains_after_exit_stays_up_until_stopped() {
    let mut u = oneshot("setup");
    u.service.remain_after_exit = true;
    let mut h = Harness::up(vec![u]);
    h.exit("setup", OK);
    assert_eq!(h.state("setup"), State::Up);
    h.take();
    // It is up: a start does not run it again.
    let id = h.start(&["setup"], true);
    assert_eq!(h.take_plain(), [format!("reply {id} ok")]);
    assert_eq!(
        h.sup
            .already(&kennel_core::Command::Start(vec!["setup".into()])),
        ["setup"]
    );
    h.stop(&["setup"], true);
    assert_eq!(h.state("setup"), State::Inactive);
    h.take();
    h.start(&["setup"], false);
    assert_eq!(h.take_plain(), ["reply 4 ok", "spawn setup"]);
}
