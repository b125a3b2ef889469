//! Readiness probes: up on Ready for the current pid, killed and restarted when late.

use kennel_core::{HealthState, State};
use kennel_units::RestartPolicy;

use crate::harness::*;

#[test]
fn ready_event_brings_the_unit_up_and_starts_health_checks() {
    let mut h = Harness::up(vec![unit("web").ready_tcp(secs(30)).health(3)]);
    assert_eq!(
        h.take_plain(),
        ["reply 1 ok", "spawn web", "watch-ready web 100"]
    );
    let s = h.status("web");
    assert_eq!(
        (s.state, s.ready, s.pid),
        (State::Starting, false, Some(100))
    );
    h.ready("web");
    assert_eq!(h.take(), ["notice web info: ready", "watch-health web 100"]);
    let s = h.status("web");
    assert_eq!(
        (s.state, s.ready, s.health),
        (State::Up, true, Some(HealthState::Unknown))
    );
    assert_eq!(h.next_timeout(), None);
}

#[test]
fn stale_ready_for_another_pid_is_ignored() {
    let mut h = Harness::up(vec![unit("web").ready_tcp(secs(30))]);
    h.take();
    h.handle(kennel_core::Event::Ready {
        unit: "web".into(),
        pid: 99,
    });
    assert_eq!(h.take(), Vec::<String>::new());
    assert_eq!(h.state("web"), State::Starting);
}

#[test]
fn not_ready_in_time_is_stopped_then_restarted() {
    let mut h = Harness::up(vec![unit("web").ready_tcp(secs(30))]);
    h.take();
    assert_eq!(h.next_timeout(), Some(secs(30)));
    h.advance(secs(30));
    assert_eq!(
        h.take(),
        [
            "notice web warn: not ready within 30s; stopping",
            "unwatch web",
            "signal-all 100 TERM",
            "signal-all 100 CONT",
        ]
    );
    assert_eq!(h.state("web"), State::Stopping);
    h.exit("web", sig(15));
    assert_eq!(
        h.take(),
        [
            "signal 100 KILL",
            "notice web warn: not ready within 30s; restart in 100ms"
        ]
    );
    let s = h.status("web");
    assert_eq!(
        (s.state, s.restarts, s.last_exit),
        (State::Exited, 1, Some(sig(15)))
    );
    h.fire();
    assert_eq!(h.take_plain(), ["spawn web", "watch-ready web 101"]);
    // A late Ready of the old process changes nothing.
    h.handle(kennel_core::Event::Ready {
        unit: "web".into(),
        pid: 100,
    });
    assert_eq!(h.state("web"), State::Starting);
}

#[test]
fn not_ready_in_time_with_policy_no_fails() {
    let mut h = Harness::up(vec![unit("web")
        .ready_tcp(secs(5))
        .policy(RestartPolicy::No)]);
    h.advance(secs(5));
    h.exit("web", code(0));
    h.take();
    assert_eq!(
        (h.state("web"), h.detail("web")),
        (State::Failed, "not ready within 5s".into())
    );
}

#[test]
fn ready_timeout_is_cancelled_by_ready() {
    let mut h = Harness::up(vec![unit("web").ready_tcp(secs(5))]);
    h.advance(secs(4));
    h.ready("web");
    h.advance(secs(60));
    h.take();
    assert_eq!(h.state("web"), State::Up);
}

#[test]
fn a_status_notification_is_the_detail_of_the_running_process() {
    let mut h = Harness::up(vec![unit("db").kind(kennel_units::ServiceType::Notify)]);
    let pid = h.pid("db");
    h.ready("db");
    h.handle(kennel_core::Event::Status {
        unit: "db".into(),
        pid,
        text: "serving".into(),
    });
    assert_eq!(h.detail("db"), "serving");
    // A stale pid's is ignored.
    h.handle(kennel_core::Event::Status {
        unit: "db".into(),
        pid: pid + 1,
        text: "old".into(),
    });
    assert_eq!(h.detail("db"), "serving");
    h.exit("db", code(1));
    assert_eq!(h.detail("db"), "restart in 100ms");
}
