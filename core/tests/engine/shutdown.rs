//! Shutdown: reverse dependency order, forced kill, exactly one Exit, refused commands.

use kennel_core::{Command, Ending, Event, State};
use kennel_units::RestartPolicy;

use crate::harness::*;

fn three() -> Harness {
    let mut h = Harness::up(vec![
        unit("db"),
        unit("web").requires(&["db"]),
        unit("proxy").after(&["web"]),
    ]);
    assert_eq!((h.pid("db"), h.pid("web"), h.pid("proxy")), (100, 101, 102));
    h.take();
    h
}

#[test]
fn shutdown_stops_in_reverse_dependency_order_and_exits_once() {
    let mut h = three();
    h.handle(Event::Shutdown { force: false });
    assert_eq!(
        h.take(),
        [
            "notice - info: shutting down",
            "signal-all 102 TERM",
            "signal-all 102 CONT"
        ]
    );
    assert!(h.sup.is_shutting_down());
    h.exit("proxy", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            "signal 102 KILL",
            "signal-all 101 TERM",
            "signal-all 101 CONT"
        ]
    );
    h.exit("web", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            "signal 101 KILL",
            "signal-all 100 TERM",
            "signal-all 100 CONT"
        ]
    );
    h.exit("db", code(0));
    assert_eq!(h.take_plain(), ["signal 100 KILL", "exit 0"]);
    for name in ["db", "web", "proxy"] {
        assert_eq!(h.state(name), State::Inactive);
    }
    h.handle(Event::Shutdown { force: true });
    h.handle(Event::Exited {
        pid: 100,
        status: OK,
    });
    h.advance(secs(60));
    assert_eq!(h.take(), Vec::<String>::new());
    assert_eq!(h.sup.poll_timeout(), None);
}

#[test]
fn second_signal_kills_everything() {
    let mut h = three();
    h.handle(Event::Shutdown { force: false });
    h.take();
    h.handle(Event::Shutdown { force: false });
    assert_eq!(
        h.take(),
        [
            "notice - warn: forced shutdown: killing every unit",
            "signal 100 KILL",
            "signal 102 KILL",
            "signal 101 KILL",
        ]
    );
    h.exit("db", sig(9));
    h.exit("proxy", sig(9));
    assert!(!h.take_plain().contains(&"exit 0".to_string()));
    h.exit("web", sig(9));
    // Killed, not stopped: the exit code says so.
    assert_eq!(
        h.take(),
        [
            "signal 101 KILL",
            "notice web info: killed by SIGKILL; stopped",
            "notice - warn: not every unit stopped cleanly: db, proxy, web",
            "exit 1"
        ]
    );
}

#[test]
fn forced_shutdown_from_the_start() {
    let mut h = three();
    h.handle(Event::Shutdown { force: true });
    assert_eq!(
        h.take_plain(),
        ["signal 100 KILL", "signal 102 KILL", "signal 101 KILL"]
    );
}

#[test]
fn nothing_running_exits_at_once() {
    let mut h = Harness::new(vec![unit("db")]);
    h.handle(Event::Shutdown { force: false });
    assert_eq!(h.take(), ["notice - info: shutting down", "exit 0"]);
}

#[test]
fn shutdown_cancels_restarts_and_waits() {
    let mut h = Harness::up(vec![
        unit("db").ready_tcp(secs(30)),
        unit("web").requires(&["db"]),
        unit("x"),
    ]);
    h.exit("x", code(1));
    h.take();
    h.handle(Event::Shutdown { force: false });
    assert_eq!(
        h.take_plain(),
        ["signal-all 100 TERM", "signal-all 100 CONT"]
    );
    assert_eq!(
        (h.state("web"), h.state("x")),
        (State::Inactive, State::Inactive)
    );
    h.exit("db", sig(15));
    assert_eq!(h.take_plain(), ["signal 100 KILL", "unwatch db", "exit 0"]);
}

#[test]
fn shutdown_command_replies_just_before_exit() {
    let mut h = Harness::up(vec![unit("db")]);
    let waiting = h.start(&["db"], true);
    h.take();
    h.auto_spawn = false;
    // A start still waiting when the shutdown begins is refused.
    h.handle(Event::Exited {
        pid: 100,
        status: code(1),
    });
    let start = h.start(&["db"], true);
    let id = h.command(Command::Shutdown, true);
    let late = h.start(&["db"], false);
    assert_eq!(
        h.take_plain(),
        [
            "signal 100 KILL".to_string(),
            "spawn db".into(),
            format!("reply {start} shutting down"),
            format!("reply {late} shutting down"),
        ]
    );
    assert_eq!(waiting, 2);
    h.spawned("db");
    assert_eq!(
        h.take_plain(),
        ["signal-all 101 TERM", "signal-all 101 CONT"]
    );
    h.exit("db", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            "signal 101 KILL".to_string(),
            format!("reply {id} ok"),
            "exit 0".into()
        ]
    );
    let after = h.command(Command::Up, true);
    assert_eq!(h.take(), [format!("reply {after} shutting down")]);
}

#[test]
fn shutdown_command_without_wait_replies_at_once() {
    let mut h = Harness::up(vec![unit("db")]);
    h.take();
    let id = h.command(Command::Shutdown, false);
    assert_eq!(
        h.take_plain(),
        [
            format!("reply {id} ok"),
            "signal-all 100 TERM".into(),
            "signal-all 100 CONT".into()
        ]
    );
    let again = h.command(Command::Shutdown, true);
    h.exit("db", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            "signal 100 KILL".to_string(),
            format!("reply {again} ok"),
            "exit 0".into()
        ]
    );
}

fn ending(budget: Option<u64>, main: Option<&str>) -> Ending {
    Ending {
        budget: budget.map(secs),
        main: main.map(str::to_string),
    }
}

#[test]
fn the_budget_kills_what_is_left_when_it_is_spent_and_the_exit_code_says_so() {
    let mut h = Harness::with_ending(
        vec![unit("db"), unit("web").requires(&["db"])],
        ending(Some(8), None),
    );
    h.take();
    h.handle(Event::Shutdown { force: false });
    assert_eq!(
        h.take_plain(),
        ["signal-all 101 TERM", "signal-all 101 CONT"]
    );
    // web's own stop_timeout (10s by default) is longer than the budget.
    assert_eq!(h.next_timeout(), Some(secs(8)));
    h.advance(secs(8));
    assert_eq!(
        h.take(),
        [
            "notice - warn: shutdown budget of 8s spent: killing every unit left",
            "signal 100 KILL",
            "signal 101 KILL",
        ]
    );
    h.exit("web", sig(9));
    h.exit("db", sig(9));
    assert_eq!(
        h.take_notices(),
        [
            "notice web info: killed by SIGKILL; stopped",
            "notice db info: killed by SIGKILL; stopped",
            "notice - warn: not every unit stopped cleanly: db, web"
        ]
    );
    assert_eq!(h.exit_code(), Some(1));
}

#[test]
fn stopped_by_the_stop_signal_or_143_is_clean_and_exits_0() {
    let mut h = Harness::with_ending(vec![unit("db"), unit("web")], ending(Some(8), None));
    h.take();
    h.handle(Event::Shutdown { force: false });
    h.exit("web", sig(15));
    h.exit("db", code(143));
    assert_eq!(h.exit_code(), Some(0));
}

#[test]
fn a_unit_failed_before_the_shutdown_makes_the_exit_code_1() {
    let mut h = Harness::up(vec![unit("db"), unit("web").policy(RestartPolicy::No)]);
    h.exit("web", code(2));
    assert_eq!(h.state("web"), State::Failed);
    h.take();
    h.handle(Event::Shutdown { force: false });
    h.exit("db", sig(15));
    assert_eq!(
        h.take_notices(),
        [
            "notice - info: shutting down",
            "notice db info: killed by SIGTERM; stopped",
            "notice - warn: not every unit stopped cleanly: web"
        ]
    );
    assert_eq!(h.exit_code(), Some(1));
}

#[test]
fn the_main_unit_ending_for_good_ends_kennel_with_its_exit_code() {
    let mut h = Harness::with_ending(
        vec![
            unit("db"),
            unit("web").requires(&["db"]).policy(RestartPolicy::No),
        ],
        ending(None, Some("web")),
    );
    h.take();
    h.exit("web", code(3));
    assert_eq!(
        h.take(),
        [
            "signal 101 KILL",
            "notice web error: exited with code 3; failed",
            "notice - info: main unit web ended (exit code 3): shutting down",
            "notice - info: shutting down",
            "signal-all 100 TERM",
            "signal-all 100 CONT",
        ]
    );
    h.exit("db", sig(15));
    assert_eq!(h.exit_code(), Some(3));
}

#[test]
fn a_main_unit_that_restarts_does_not_end_kennel() {
    let mut h = Harness::with_ending(
        vec![unit("web")
            .policy(RestartPolicy::Always)
            .delays(ms(0), ms(0))],
        ending(None, Some("web")),
    );
    h.take();
    h.exit("web", code(3));
    assert!(!h.sup.is_shutting_down());
    assert_eq!(h.exit_code(), None);
}

#[test]
fn the_main_unit_stopped_by_the_shutdown_gives_128_plus_the_signal() {
    let mut h = Harness::with_ending(vec![unit("web")], ending(None, Some("web")));
    h.take();
    h.handle(Event::Shutdown { force: false });
    h.exit("web", sig(15));
    assert_eq!(h.exit_code(), Some(143));
}
