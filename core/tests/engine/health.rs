//! Health checks: failures counted against `retries`, unhealthy units stopped and restarted.

use kennel_core::{Event, HealthState, State};
use kennel_units::RestartPolicy;

use crate::harness::*;

#[test]
fn consecutive_failures_make_it_unhealthy_and_restart_it() {
    let mut h = Harness::up(vec![unit("web").health(3)]);
    assert_eq!(
        h.take_plain(),
        ["reply 1 ok", "spawn web", "watch-health web 100"]
    );
    h.health("web", false, "timeout");
    h.health("web", false, "timeout");
    assert_eq!(h.status("web").health, Some(HealthState::Failing));
    h.health("web", true, "");
    assert_eq!(h.status("web").health, Some(HealthState::Healthy));
    h.health("web", false, "timeout");
    h.health("web", false, "timeout");
    assert_eq!(h.take(), Vec::<String>::new());
    assert_eq!(h.state("web"), State::Up);
    h.health("web", false, "exit 1: connection refused");
    assert_eq!(
        h.take(),
        [
            "notice web warn: unhealthy: exit 1: connection refused; stopping",
            "unwatch web",
            "signal-all 100 TERM",
            "signal-all 100 CONT",
        ]
    );
    let s = h.status("web");
    assert_eq!(
        (s.state, s.health),
        (State::Stopping, Some(HealthState::Unhealthy))
    );
    // Even a clean exit after the stop signal is a failure.
    h.exit("web", OK);
    assert_eq!(
        h.take(),
        [
            "signal 100 KILL",
            "notice web warn: unhealthy: exit 1: connection refused; restart in 100ms",
        ]
    );
    h.fire();
    assert_eq!(h.take_plain(), ["spawn web", "watch-health web 101"]);
    assert_eq!(h.status("web").health, Some(HealthState::Unknown));
}

#[test]
fn unhealthy_with_policy_no_fails() {
    let mut h = Harness::up(vec![unit("web").health(1).policy(RestartPolicy::No)]);
    h.health("web", false, "timeout");
    h.exit("web", sig(15));
    let s = h.status("web");
    assert_eq!(
        (s.state, s.detail.as_str()),
        (State::Failed, "unhealthy: timeout")
    );
}

#[test]
fn health_of_an_old_pid_is_ignored() {
    let mut h = Harness::up(vec![unit("web").health(1)]);
    h.exit("web", code(1));
    h.fire();
    h.take();
    h.handle(Event::Health {
        unit: "web".into(),
        pid: 100,
        ok: false,
        detail: "old".into(),
    });
    assert_eq!(h.take(), Vec::<String>::new());
    assert_eq!(
        (h.state("web"), h.status("web").health),
        (State::Up, Some(HealthState::Unknown))
    );
}

#[test]
fn exit_of_a_watched_unit_unwatches_it() {
    let mut h = Harness::up(vec![unit("web").health(3)]);
    h.take();
    h.exit("web", code(1));
    assert_eq!(h.take_plain(), ["signal 100 KILL", "unwatch web"]);
}

#[test]
fn a_unit_without_health_checks_has_no_health() {
    let mut h = Harness::up(vec![unit("web"), unit("db").health(1)]);
    h.take();
    assert_eq!(h.status("web").health, None);
    assert_eq!(h.status("db").health, Some(HealthState::Unknown));
}
