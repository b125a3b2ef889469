//! Stopping: the stop sequence, reverse dependency order, no restart after a user stop,
//! and restart.

use kennel_core::{Event, State};
use kennel_units::RestartPolicy;

use crate::harness::*;

#[test]
fn stop_sequence_then_kill_after_the_timeout() {
    let mut h = Harness::up(vec![unit("web").stop(2, secs(5))]);
    h.take();
    let id = h.stop(&["web"], true);
    assert_eq!(h.take(), ["signal-all 100 INT", "signal-all 100 CONT"]);
    assert_eq!(h.state("web"), State::Stopping);
    assert_eq!(h.next_timeout(), Some(secs(5)));
    h.advance(ms(4999));
    assert_eq!(h.take(), Vec::<String>::new());
    h.advance(ms(1));
    assert_eq!(
        h.take(),
        [
            "notice web warn: did not stop within 5s; killing",
            "signal 100 KILL"
        ]
    );
    assert_eq!(h.next_timeout(), None);
    h.exit("web", sig(9));
    assert_eq!(
        h.take(),
        [
            "signal 100 KILL",
            "notice web info: killed by SIGKILL; stopped",
            format!("reply {id} ok").as_str()
        ]
    );
    let s = h.status("web");
    assert_eq!(
        (s.state, s.pid, s.last_exit, s.restarts),
        (State::Inactive, None, Some(sig(9)), 0)
    );
}

#[test]
fn a_user_stop_never_restarts() {
    for policy in [RestartPolicy::Always, RestartPolicy::OnFailure] {
        let mut h = Harness::up(vec![unit("web").policy(policy)]);
        h.stop(&["web"], false);
        h.exit("web", code(1));
        assert_eq!(h.state("web"), State::Inactive);
        assert_eq!(h.next_timeout(), None);
    }
}

#[test]
fn a_stop_cancels_a_pending_restart_or_dependency_wait() {
    let mut h = Harness::up(vec![
        unit("db").ready_tcp(secs(30)),
        unit("web").requires(&["db"]).after(&["db"]),
    ]);
    h.take();
    h.stop(&["web"], false);
    assert_eq!(h.take(), ["reply 2 ok"]);
    assert_eq!(h.state("web"), State::Inactive);

    let mut h = Harness::up(vec![unit("web")]);
    h.exit("web", code(1));
    h.take();
    h.stop(&["web"], false);
    assert_eq!(h.take(), ["reply 2 ok"]);
    assert_eq!((h.state("web"), h.next_timeout()), (State::Inactive, None));
}

#[test]
fn stopping_a_failed_unit_clears_it() {
    let mut h = Harness::up(vec![unit("web").policy(RestartPolicy::No)]);
    h.exit("web", code(1));
    assert_eq!(h.state("web"), State::Failed);
    h.stop(&["web"], true);
    assert_eq!(
        (h.state("web"), h.detail("web")),
        (State::Inactive, String::new())
    );
}

#[test]
fn stopping_a_required_unit_stops_its_requirers_first() {
    let mut h = Harness::up(vec![
        unit("db"),
        unit("web").requires(&["db"]),
        unit("api").requires(&["web"]),
        unit("cache").after(&["db"]),
    ]);
    let (db, web, api, cache) = (h.pid("db"), h.pid("web"), h.pid("api"), h.pid("cache"));
    h.take();
    let id = h.stop(&["db"], true);
    assert_eq!(
        h.take(),
        [
            format!("signal-all {api} TERM"),
            format!("signal-all {api} CONT")
        ]
    );
    assert_eq!(
        (h.state("db"), h.detail("db")),
        (State::Stopping, "waiting for web to stop".into())
    );
    assert_eq!(h.state("web"), State::Stopping);
    h.exit("api", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            format!("signal {api} KILL"),
            format!("signal-all {web} TERM"),
            format!("signal-all {web} CONT")
        ]
    );
    h.exit("web", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            format!("signal {web} KILL"),
            format!("signal-all {db} TERM"),
            format!("signal-all {db} CONT")
        ]
    );
    h.exit("db", OK);
    assert_eq!(
        h.take_plain(),
        [format!("signal {db} KILL"), format!("reply {id} ok")]
    );
    // Ordering only: cache keeps running.
    assert_eq!(
        (h.state("cache"), h.status("cache").pid),
        (State::Up, Some(cache))
    );
}

#[test]
fn a_unit_stopped_while_spawning_is_stopped_once_spawned() {
    let mut h = Harness::new(vec![unit("web").ready_tcp(secs(30))]);
    h.auto_spawn = false;
    h.start(&["web"], false);
    h.take();
    let id = h.stop(&["web"], true);
    assert_eq!(h.take(), Vec::<String>::new());
    h.spawned("web");
    assert_eq!(
        h.take_plain(),
        ["signal-all 100 TERM", "signal-all 100 CONT"]
    );
    h.exit("web", sig(15));
    assert_eq!(
        h.take_plain(),
        ["signal 100 KILL".to_string(), format!("reply {id} ok")]
    );
}

#[test]
fn a_unit_stopped_while_spawning_that_fails_to_spawn_is_inactive() {
    let mut h = Harness::new(vec![unit("web")]);
    h.auto_spawn = false;
    h.start(&["web"], false);
    let id = h.stop(&["web"], true);
    h.take();
    h.handle(Event::SpawnFailed {
        unit: "web".into(),
        pid: None,
        reason: "fork: EAGAIN".into(),
    });
    assert_eq!(h.take_plain(), [format!("reply {id} ok")]);
    assert_eq!(h.state("web"), State::Inactive);
}

#[test]
fn restart_stops_requirers_first_then_starts_them_again() {
    let mut h = Harness::up(vec![
        unit("db"),
        unit("web").requires(&["db"]),
        unit("tool").requires(&["db"]),
    ]);
    h.stop(&["tool"], false);
    h.exit("tool", OK);
    let (db, web) = (h.pid("db"), h.pid("web"));
    h.take();
    let id = h.restart(&["db"], true);
    assert_eq!(
        h.take(),
        [
            format!("signal-all {web} TERM"),
            format!("signal-all {web} CONT")
        ]
    );
    h.exit("web", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            format!("signal {web} KILL"),
            format!("signal-all {db} TERM"),
            format!("signal-all {db} CONT")
        ]
    );
    assert_eq!(h.state("web"), State::Starting);
    assert_eq!(h.detail("web"), "waiting for db");
    h.exit("db", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            format!("signal {db} KILL"),
            "spawn db".into(),
            "spawn web".into(),
            format!("reply {id} ok")
        ]
    );
    // tool was not running before: it stays stopped.
    assert_eq!(h.state("tool"), State::Inactive);
    assert_eq!(h.status("db").restarts, 0);
}

#[test]
fn restart_of_a_failed_unit_starts_it() {
    let mut h = Harness::up(vec![unit("web").policy(RestartPolicy::No)]);
    h.exit("web", code(1));
    h.take();
    let id = h.restart(&["web"], true);
    assert_eq!(
        h.take_plain(),
        ["spawn web".to_string(), format!("reply {id} ok")]
    );
}

#[test]
fn start_during_a_stop_starts_again_after_it() {
    let mut h = Harness::up(vec![unit("web")]);
    h.stop(&["web"], false);
    h.take();
    let id = h.start(&["web"], true);
    assert_eq!(h.take(), Vec::<String>::new());
    h.exit("web", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            "signal 100 KILL".to_string(),
            "spawn web".into(),
            format!("reply {id} ok")
        ]
    );
}

#[test]
fn a_stop_waiter_is_answered_even_if_a_start_follows_the_stop() {
    let mut h = Harness::up(vec![unit("web")]);
    let stop = h.stop(&["web"], true);
    let start = h.start(&["web"], true);
    h.take();
    h.exit("web", sig(15));
    assert_eq!(
        h.take(),
        [
            "signal 100 KILL".to_string(),
            "notice web info: killed by SIGTERM; restarting".into(),
            "spawn web".into(),
            format!("reply {stop} ok"),
            "notice web info: started, pid 101".into(),
            format!("reply {start} ok"),
        ]
    );
}

#[test]
fn a_start_during_an_unhealthy_stop_restarts_with_fresh_counters() {
    let mut h = Harness::up(vec![unit("web").health(1).policy(RestartPolicy::No)]);
    h.health("web", false, "down");
    h.start(&["web"], false);
    h.take();
    h.exit("web", sig(15));
    assert_eq!(
        h.take_plain(),
        ["signal 100 KILL", "spawn web", "watch-health web 101"]
    );
    assert_eq!(h.status("web").restarts, 0);
}

fn with_mode(mode: kennel_units::KillMode) -> kennel_units::Unit {
    let mut u = unit("web").stop(15, secs(5));
    u.service.kill_mode = mode;
    u
}

/// Stop a running `u` and let the stop timeout pass; returns the pid and the actions.
fn stop_and_time_out(u: kennel_units::Unit) -> (kennel_core::Pid, Vec<String>) {
    let mut h = Harness::up(vec![u]);
    let pid = h.pid("web");
    h.take();
    h.stop(&["web"], false);
    h.advance(secs(5));
    h.exit("web", sig(9));
    (pid, h.take_plain())
}

#[test]
fn kill_modes_choose_who_gets_the_stop_signal_and_sigkill() {
    use kennel_units::KillMode;
    // control-group (the default): the stop signal to every process of the cgroup;
    // SIGKILL to the cgroup (the group action), also for leftovers once the main is gone.
    let (p, a) = stop_and_time_out(with_mode(KillMode::ControlGroup));
    assert_eq!(
        a,
        [
            "reply 2 ok".to_string(),
            format!("signal-all {p} TERM"),
            format!("signal-all {p} CONT"),
            format!("signal {p} KILL"),
            format!("signal {p} KILL"),
        ]
    );
    // mixed: the stop signal to the main process, SIGKILL to the cgroup.
    let (p, a) = stop_and_time_out(with_mode(KillMode::Mixed));
    assert_eq!(
        a,
        [
            "reply 2 ok".to_string(),
            format!("signal {p} TERM (pid only)"),
            format!("signal {p} CONT (pid only)"),
            format!("signal {p} KILL"),
            format!("signal {p} KILL"),
        ]
    );
    // process: the main process only; what it leaves goes with the cgroup at the end of
    // the run (approximated: systemd leaves it running).
    let (p, a) = stop_and_time_out(with_mode(KillMode::Process));
    assert_eq!(
        a,
        [
            "reply 2 ok".to_string(),
            format!("signal {p} TERM (pid only)"),
            format!("signal {p} CONT (pid only)"),
            format!("signal {p} KILL (pid only)"),
            format!("signal {p} KILL"),
        ]
    );
    // none: no stop signal at all; SIGKILL to the main process at the timeout.
    let (p, a) = stop_and_time_out(with_mode(KillMode::None));
    assert_eq!(
        a,
        [
            "reply 2 ok".to_string(),
            format!("signal {p} KILL (pid only)"),
            format!("signal {p} KILL"),
        ]
    );
}

#[test]
fn a_container_gets_the_stop_signal_through_its_inits_group() {
    let mut u = unit("web");
    u.container = Some(kennel_units::Container::new(Vec::new(), "web"));
    let mut h = Harness::up(vec![u]);
    let p = h.pid("web");
    h.take();
    h.stop(&["web"], false);
    assert_eq!(
        h.take_plain(),
        [
            "reply 2 ok".to_string(),
            format!("signal {p} TERM"),
            format!("signal {p} CONT")
        ]
    );
}

#[test]
fn without_send_sigkill_the_stop_waits() {
    let mut u = with_mode(kennel_units::KillMode::ControlGroup);
    u.service.send_sigkill = false;
    let mut h = Harness::up(vec![u]);
    let p = h.pid("web");
    h.take();
    h.stop(&["web"], false);
    h.advance(secs(5));
    assert_eq!(
        h.take(),
        [
            "reply 2 ok".to_string(),
            format!("signal-all {p} TERM"),
            format!("signal-all {p} CONT"),
            "notice web warn: did not stop within 5s; send_sigkill = false: waiting for it"
                .to_string(),
        ]
    );
    assert_eq!(h.state("web"), State::Stopping);
    assert_eq!(h.next_timeout(), None);
    h.advance(secs(3600));
    assert_eq!(h.take(), Vec::<String>::new());
    h.exit("web", sig(15));
    assert_eq!(h.state("web"), State::Inactive);
}

#[test]
fn an_infinite_stop_timeout_never_kills() {
    let mut u = unit("web");
    u.service.stop_timeout = kennel_units::INFINITY;
    let mut h = Harness::up(vec![u]);
    h.take();
    h.stop(&["web"], false);
    assert_eq!(h.next_timeout(), None);
    h.advance(secs(365 * 24 * 3600));
    assert!(!h.take_plain().iter().any(|a| a.contains("KILL")));
    assert_eq!(h.state("web"), State::Stopping);
}
