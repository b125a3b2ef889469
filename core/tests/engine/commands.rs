//! Client commands: validation, immediate and waited replies.

use kennel_core::{Command, State};
use kennel_units::RestartPolicy;

use crate::harness::*;

#[test]
fn unknown_unit_is_refused_without_doing_anything() {
    let mut h = Harness::new(vec![unit("db")]);
    for wait in [false, true] {
        h.start(&["db", "nope"], wait);
        h.stop(&["nope"], wait);
        h.restart(&["nope"], wait);
    }
    assert_eq!(
        h.take(),
        [1, 2, 3, 4, 5, 6].map(|id| format!("reply {id} unknown nope"))
    );
    assert_eq!(h.state("db"), State::Inactive);
}

#[test]
fn no_wait_replies_before_acting() {
    let mut h = Harness::new(vec![unit("db")]);
    h.start(&["db"], false);
    assert_eq!(h.take_plain(), ["reply 1 ok", "spawn db"]);
}

#[test]
fn wait_replies_once_up() {
    let mut h = Harness::new(vec![
        unit("db").ready_tcp(secs(30)),
        unit("web").requires(&["db"]),
    ]);
    let id = h.start(&["web"], true);
    assert_eq!(h.take_plain(), ["spawn db", "watch-ready db 100"]);
    h.ready("db");
    assert_eq!(
        h.take_plain(),
        ["spawn web".to_string(), format!("reply {id} ok")]
    );
}

#[test]
fn wait_reports_the_failure() {
    let mut h = Harness::new(vec![unit("db")
        .ready_tcp(secs(30))
        .policy(RestartPolicy::No)]);
    let id = h.start(&["db"], true);
    h.exit("db", code(3));
    assert_eq!(
        h.take_plain(),
        [
            "spawn db".to_string(),
            "watch-ready db 100".into(),
            "signal 100 KILL".into(),
            "unwatch db".into(),
            format!("reply {id} failed db: exited 3")
        ]
    );
}

#[test]
fn wait_survives_crashes_that_will_be_restarted() {
    let mut h = Harness::new(vec![unit("db").ready_tcp(secs(30))]);
    let id = h.start(&["db"], true);
    h.exit("db", code(3));
    h.fire();
    h.take();
    h.ready("db");
    assert_eq!(h.take_plain(), [format!("reply {id} ok")]);
}

#[test]
fn wait_for_up_reports_the_start_limit() {
    let mut h = Harness::new(vec![unit("db").ready_tcp(secs(30)).burst(1, secs(10))]);
    let id = h.command(Command::Up, true);
    h.exit("db", code(3));
    assert_eq!(
        h.take_plain().last().cloned(),
        Some(format!(
            "reply {id} failed db: start limit hit: 1 start within 10s"
        ))
    );
}

#[test]
fn exactly_one_reply_per_command() {
    let mut h = Harness::new(vec![unit("db"), unit("web").requires(&["db"])]);
    h.command(Command::Up, true);
    h.stop(&["db"], true);
    h.exit("web", sig(15));
    h.exit("db", sig(15));
    h.restart(&["web"], true);
    h.command(Command::Up, false);
    let replies: Vec<String> = h
        .take()
        .into_iter()
        .filter(|a| a.starts_with("reply"))
        .collect();
    assert_eq!(
        replies,
        ["reply 1 ok", "reply 2 ok", "reply 3 ok", "reply 4 ok"]
    );
}

#[test]
fn already_names_the_units_a_start_or_stop_leaves_as_they_are() {
    let mut h = Harness::up(vec![
        unit("web"),
        unit("slow").ready_tcp(secs(30)),
        oneshot("job"),
        unit("dead").policy(RestartPolicy::No),
        unit("crashy").delays(secs(1), secs(1)),
    ]);
    h.exit("job", code(0));
    h.exit("dead", code(1));
    h.exit("crashy", code(1));
    let names = || {
        ["web", "slow", "job", "dead", "crashy", "nope"]
            .map(String::from)
            .to_vec()
    };
    // Up; not yet ready; a finished oneshot (run again); failed; waiting to restart.
    assert_eq!(h.sup.already(&Command::Start(names())), ["web"]);
    assert_eq!(h.sup.already(&Command::Stop(names())), ["job", "dead"]);
    assert!(h.sup.already(&Command::Restart(names())).is_empty());
    h.stop(&["web"], false);
    assert!(h
        .sup
        .already(&Command::Start(vec!["web".into()]))
        .is_empty());
    assert!(h.sup.already(&Command::Stop(vec!["web".into()])).is_empty());
    h.exit("web", sig(15));
    assert_eq!(h.sup.already(&Command::Stop(vec!["web".into()])), ["web"]);
}
