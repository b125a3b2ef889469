//! `type = "forking"`: the first process exits 0, the shell finds the daemon, which is
//! then the main process.

use kennel_core::{Event, State};
use kennel_units::{RestartPolicy, ServiceType};

use crate::harness::*;

fn forking() -> kennel_units::Unit {
    let mut u = unit("web").kind(ServiceType::Forking);
    u.service.pid_file = Some("/run/web.pid".into());
    u
}

#[test]
fn the_daemon_from_the_pid_file_becomes_the_main_process() {
    let mut h = Harness::new(vec![forking().around("start_post", "/bin/post")]);
    let id = h.start(&["web"], true);
    let parent = h.pid("web");
    assert_eq!(h.take_plain(), ["spawn web"]);
    assert_eq!(h.state("web"), State::Starting);
    h.exit("web", OK);
    assert_eq!(
        h.take_plain(),
        [format!("find-main web {parent} /run/web.pid")]
    );
    assert_eq!(h.detail("web"), "looking for the daemon");
    h.handle(Event::MainPid {
        unit: "web".into(),
        pid: Ok(500),
    });
    assert_eq!(h.take_plain(), ["run web /bin/post (main 500)"]);
    h.control_exit("web", OK);
    assert_eq!(h.take_plain(), [format!("reply {id} ok")]);
    assert_eq!(h.status("web").pid, Some(500));
    // The daemon's end is the run's end.
    h.stop(&["web"], false);
    assert_eq!(
        h.take_plain(),
        ["reply 2 ok", "signal-all 500 TERM", "signal-all 500 CONT"]
    );
    h.handle(Event::Exited {
        pid: 500,
        status: sig(15),
    });
    assert_eq!(h.state("web"), State::Inactive);
}

#[test]
fn a_first_process_that_fails_or_no_daemon_found_fails_the_start() {
    let mut h = Harness::new(vec![forking().policy(RestartPolicy::No)]);
    let id = h.start(&["web"], true);
    h.exit("web", code(1));
    assert_eq!(
        h.take_plain(),
        [
            "spawn web".to_string(),
            format!("signal {} KILL", h.pid("web")),
            format!("reply {id} failed web: exited 1")
        ]
    );
    let id = h.start(&["web"], true);
    let parent = h.pid("web");
    h.exit("web", OK);
    h.handle(Event::MainPid {
        unit: "web".into(),
        pid: Err("/run/web.pid: no such file".into()),
    });
    assert_eq!(
        h.take_plain(),
        [
            "spawn web".to_string(),
            format!("find-main web {parent} /run/web.pid"),
            format!("signal {parent} KILL"),
            format!("reply {id} failed web: /run/web.pid: no such file")
        ]
    );
    assert_eq!(h.state("web"), State::Failed);
}

#[test]
fn no_daemon_within_the_start_timeout_fails_the_start() {
    let mut u = forking().policy(RestartPolicy::No);
    u.service.start_timeout = secs(3);
    let mut h = Harness::up(vec![u]);
    h.exit("web", OK);
    h.take();
    assert_eq!(h.next_timeout(), Some(secs(3)));
    h.advance(secs(3));
    assert_eq!(h.detail("web"), "no daemon found within 3s");
    assert_eq!(h.state("web"), State::Failed);
    // A late answer is ignored.
    h.handle(Event::MainPid {
        unit: "web".into(),
        pid: Ok(500),
    });
    assert_eq!(h.state("web"), State::Failed);
}
