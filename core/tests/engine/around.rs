//! Commands around the main one: `start_pre`, `start_post`, `reload`, `stop`, `stop_post`,
//! each list in order, a failure's meaning, the `-` prefix, their timeouts.

use kennel_core::{Command, State};
use kennel_units::RestartPolicy;

use crate::harness::*;

#[test]
fn start_pre_and_start_post_run_in_order_around_the_main_process() {
    let u = unit("web")
        .around("start_pre", "/bin/pre1 a")
        .around("start_pre", "/bin/pre2")
        .around("start_post", "/bin/post");
    let mut h = Harness::new(vec![u]);
    let id = h.start(&["web"], true);
    assert_eq!(h.take_plain(), ["run web /bin/pre1 a"]);
    assert_eq!(h.state("web"), State::Starting);
    assert_eq!(h.detail("web"), "start_pre /bin/pre1");
    h.control_exit("web", OK);
    assert_eq!(h.take_plain(), ["run web /bin/pre2"]);
    h.control_exit("web", OK);
    let main = h.pid("web");
    assert_eq!(
        h.take_plain(),
        [
            "spawn web".to_string(),
            format!("run web /bin/post (main {main})")
        ]
    );
    assert_eq!(h.state("web"), State::Starting);
    h.control_exit("web", OK);
    assert_eq!(h.take_plain(), [format!("reply {id} ok")]);
    assert_eq!(h.state("web"), State::Up);
}

#[test]
fn a_failed_start_pre_fails_the_start_and_a_dash_ignores_it() {
    let u = unit("web")
        .policy(RestartPolicy::No)
        .around("start_pre", "-/bin/may-fail")
        .around("start_pre", "/bin/must-pass");
    let mut h = Harness::new(vec![u]);
    let id = h.start(&["web"], true);
    h.control_exit("web", code(1));
    assert_eq!(
        h.take(),
        [
            "run web /bin/may-fail",
            "notice web info: start_pre /bin/may-fail: exited 1 (ignored: \"-\")",
            "run web /bin/must-pass"
        ]
    );
    h.control_exit("web", code(2));
    assert_eq!(
        h.take(),
        [
            "notice web error: start_pre /bin/must-pass: exited 2; failed",
            format!("reply {id} failed web: start_pre /bin/must-pass: exited 2").as_str()
        ]
    );
    assert_eq!(h.state("web"), State::Failed);
}

#[test]
fn a_failed_start_pre_is_restarted_by_policy_after_stop_post() {
    let u = unit("web")
        .around("start_pre", "/bin/pre")
        .around("stop_post", "/bin/cleanup");
    let mut h = Harness::up(vec![u]);
    h.take();
    h.control_exit("web", code(1));
    assert_eq!(h.take_plain(), ["run web /bin/cleanup"]);
    assert_eq!(h.state("web"), State::Stopping);
    h.control_exit("web", OK);
    assert_eq!(
        h.take_notices(),
        ["notice web warn: start_pre /bin/pre: exited 1; restart in 100ms"]
    );
    h.advance(ms(100));
    assert_eq!(h.take_plain(), ["run web /bin/pre"]);
}

#[test]
fn a_failed_start_post_stops_the_unit_as_a_failed_start() {
    let u = unit("web")
        .policy(RestartPolicy::No)
        .around("start_post", "/bin/post");
    let mut h = Harness::new(vec![u]);
    let id = h.start(&["web"], true);
    let p = h.pid("web");
    h.take();
    h.control_exit("web", code(3));
    assert_eq!(
        h.take(),
        [
            "notice web warn: start_post /bin/post: exited 3; stopping",
            format!("signal-all {p} TERM").as_str(),
            format!("signal-all {p} CONT").as_str(),
        ]
    );
    h.exit("web", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            format!("signal {p} KILL"),
            format!("reply {id} failed web: start_post /bin/post: exited 3")
        ]
    );
    assert_eq!(h.state("web"), State::Failed);
}

#[test]
fn stop_commands_run_before_the_stop_signal_and_stop_post_after_the_end() {
    let u = unit("web")
        .stop(15, secs(5))
        .around("stop", "/bin/ctl stop")
        .around("stop_post", "/bin/cleanup");
    let mut h = Harness::up(vec![u]);
    let p = h.pid("web");
    h.take();
    let id = h.stop(&["web"], true);
    assert_eq!(
        h.take_plain(),
        [format!("run web /bin/ctl stop (main {p})")]
    );
    assert_eq!(h.next_timeout(), Some(secs(5)));
    h.control_exit("web", OK);
    assert_eq!(
        h.take_plain(),
        [
            format!("signal-all {p} TERM"),
            format!("signal-all {p} CONT")
        ]
    );
    h.exit("web", sig(15));
    assert_eq!(
        h.take_plain(),
        [
            format!("signal {p} KILL"),
            "run web /bin/cleanup".to_string()
        ]
    );
    assert_eq!(h.state("web"), State::Stopping);
    h.control_exit("web", code(1));
    assert_eq!(
        h.take(),
        [
            "notice web warn: stop_post /bin/cleanup: exited 1",
            "notice web info: killed by SIGTERM; stopped",
            format!("reply {id} ok").as_str()
        ]
    );
    assert_eq!(h.state("web"), State::Inactive);
}

#[test]
fn a_stop_command_that_times_out_is_killed_then_the_signal_follows() {
    let u = unit("web")
        .stop(15, secs(5))
        .around("stop", "/bin/ctl stop");
    let mut h = Harness::up(vec![u]);
    let p = h.pid("web");
    h.take();
    h.stop(&["web"], false);
    let c = h.control("web");
    h.take();
    h.advance(secs(5));
    assert_eq!(h.take_plain(), [format!("signal {c} KILL")]);
    h.control_exit("web", sig(9));
    assert_eq!(
        h.take(),
        [
            "notice web warn: stop /bin/ctl: timed out after 5s",
            format!("signal-all {p} TERM").as_str(),
            format!("signal-all {p} CONT").as_str(),
        ]
    );
    assert_eq!(h.next_timeout(), Some(secs(5)));
}

#[test]
fn the_main_process_ending_kills_a_running_command_and_stop_post_still_runs() {
    let u = unit("web")
        .policy(RestartPolicy::No)
        .around("start_post", "/bin/post")
        .around("stop_post", "/bin/cleanup");
    let mut h = Harness::up(vec![u]);
    let (p, c) = (h.pid("web"), h.control("web"));
    h.take();
    h.exit("web", code(1));
    assert_eq!(
        h.take_plain(),
        [
            format!("signal {c} KILL"),
            format!("signal {p} KILL"),
            "run web /bin/cleanup".to_string()
        ]
    );
    // The killed start_post's exit is no one's any more.
    h.handle(kennel_core::Event::Exited {
        pid: c,
        status: sig(9),
    });
    assert_eq!(h.take(), Vec::<String>::new());
    h.control_exit("web", OK);
    assert_eq!(
        h.take_notices(),
        ["notice web error: exited with code 1; failed"]
    );
    assert_eq!(h.state("web"), State::Failed);
}

#[test]
fn reload_runs_the_reload_commands_and_waits_for_them() {
    let u = unit("web").around("reload", "/bin/kill -HUP");
    let mut h = Harness::up(vec![u]);
    let p = h.pid("web");
    h.take();
    let id = h.command(Command::ReloadUnits(vec!["web".into()]), true);
    assert_eq!(
        h.take_plain(),
        [format!("run web /bin/kill -HUP (main {p})")]
    );
    assert_eq!(h.state("web"), State::Up);
    // One reload at a time.
    let busy = h.command(Command::ReloadUnits(vec!["web".into()]), true);
    assert_eq!(
        h.take_plain(),
        [format!(
            "reply {busy} failed web: cannot reload: its reload commands run"
        )]
    );
    h.control_exit("web", OK);
    assert_eq!(
        h.take(),
        [
            "notice web info: reloaded",
            format!("reply {id} ok").as_str()
        ]
    );
    let id = h.command(Command::ReloadUnits(vec!["web".into()]), true);
    h.control_exit("web", code(1));
    assert_eq!(
        h.take_plain(),
        [
            format!("run web /bin/kill -HUP (main {p})"),
            format!("reply {id} failed web: reload /bin/kill: exited 1")
        ]
    );
    // A failed reload leaves the unit up.
    assert_eq!(h.state("web"), State::Up);
}

#[test]
fn reload_sends_the_reload_signal_or_says_why_it_cannot() {
    let mut u = unit("web");
    u.service.reload_signal = Some(kennel_units::Signal::HUP);
    let mut h = Harness::up(vec![u, unit("db")]);
    let p = h.pid("web");
    h.take();
    let id = h.command(Command::ReloadUnits(vec!["web".into()]), true);
    assert_eq!(
        h.take(),
        [
            format!("signal {p} 1 (pid only)").as_str(),
            "notice web info: reload: SIGHUP sent",
            format!("reply {id} ok").as_str()
        ]
    );
    let id = h.command(Command::ReloadUnits(vec!["db".into()]), true);
    assert_eq!(
        h.take(),
        [format!(
            "reply {id} failed db: cannot reload: the unit has no reload commands and no reload_signal"
        )]
    );
    h.stop(&["web"], false);
    h.exit("web", sig(15));
    h.take();
    let id = h.command(Command::ReloadUnits(vec!["web".into()]), true);
    assert_eq!(
        h.take(),
        [format!("reply {id} failed web: cannot reload: not up")]
    );
}

#[test]
fn a_stop_during_start_pre_kills_it_and_the_unit_is_inactive() {
    let u = unit("web").around("start_pre", "/bin/slow");
    let mut h = Harness::up(vec![u]);
    let c = h.control("web");
    h.take();
    let id = h.stop(&["web"], true);
    assert_eq!(
        h.take_plain(),
        [format!("signal {c} KILL"), format!("reply {id} ok")]
    );
    assert_eq!(h.state("web"), State::Inactive);
}

#[test]
fn a_start_pre_timeout_fails_the_start() {
    let mut u = unit("web")
        .policy(RestartPolicy::No)
        .around("start_pre", "/bin/slow");
    u.service.start_timeout = secs(2);
    let mut h = Harness::up(vec![u]);
    let c = h.control("web");
    h.take();
    h.advance(secs(2));
    assert_eq!(h.take_plain(), [format!("signal {c} KILL")]);
    h.control_exit("web", sig(9));
    assert_eq!(h.detail("web"), "start_pre /bin/slow: timed out after 2s");
    assert_eq!(h.state("web"), State::Failed);
}
