//! `condition_path_exists` skips a start, `assert_path_exists` fails it.

use kennel_core::{Event, State};
use kennel_units::PathCondition;

use crate::harness::*;

fn conditioned(assert: bool) -> kennel_units::Unit {
    let mut u = unit("web").around("start_pre", "/bin/pre");
    u.service.conditions.push(PathCondition {
        assert,
        path: "/etc/web.conf".into(),
        negate: false,
    });
    u
}

fn checked(h: &mut Harness, failed: Option<PathCondition>) {
    h.handle(Event::ConditionsChecked {
        unit: "web".into(),
        failed,
    });
}

#[test]
fn conditions_are_checked_before_start_pre() {
    let mut h = Harness::new(vec![conditioned(false)]);
    let id = h.start(&["web"], true);
    assert_eq!(h.take_plain(), ["check web"]);
    assert_eq!(h.state("web"), State::Starting);
    checked(&mut h, None);
    assert_eq!(h.take_plain(), ["run web /bin/pre"]);
    h.control_exit("web", OK);
    assert_eq!(
        h.take_plain(),
        ["spawn web".to_string(), format!("reply {id} ok")]
    );
}

#[test]
fn a_failed_condition_skips_the_start_and_its_dependents_start() {
    let mut h = Harness::new(vec![conditioned(false), unit("app").requires(&["web"])]);
    let id = h.start(&["app"], true);
    h.take();
    let c = conditioned(false).service.conditions[0].clone();
    checked(&mut h, Some(c));
    assert_eq!(
        h.take(),
        [
            "notice web info: skipped: condition_path_exists /etc/web.conf does not hold",
            "spawn app",
            "notice app info: started, pid 100",
            format!("reply {id} ok").as_str()
        ]
    );
    assert_eq!(h.state("web"), State::Exited);
}

#[test]
fn a_failed_assertion_fails_the_start_without_a_restart() {
    let mut h = Harness::new(vec![conditioned(true)]);
    let id = h.start(&["web"], true);
    h.take();
    let c = conditioned(true).service.conditions[0].clone();
    checked(&mut h, Some(c));
    assert_eq!(
        h.take(),
        [
            "notice web error: assertion failed: assert_path_exists /etc/web.conf; failed",
            format!("reply {id} failed web: assertion failed: assert_path_exists /etc/web.conf")
                .as_str()
        ]
    );
    assert_eq!(h.state("web"), State::Failed);
    assert_eq!(h.next_timeout(), None);
}
