//! Reload: added units start, removed ones stop and vanish, changed running ones restart
//! with the new configuration, unchanged ones are left alone.

use kennel_core::{Action, Command, State};

use crate::harness::*;

#[test]
fn reload_adds_removes_changes_and_leaves_the_rest() {
    let mut h = Harness::up(vec![unit("keep"), unit("change"), unit("gone")]);
    let (change, gone, keep) = (h.pid("change"), h.pid("gone"), h.pid("keep"));
    h.take();
    let new = set(vec![
        unit("keep"),
        unit("change").env("MODE", "fast"),
        unit("added"),
    ]);
    let id = h.command(Command::Reload(new.clone()), true);
    assert_eq!(
        h.take_plain(),
        [
            "spawn added".to_string(),
            format!("signal-all {change} TERM"),
            format!("signal-all {change} CONT"),
            format!("signal-all {gone} TERM"),
            format!("signal-all {gone} CONT"),
        ]
    );
    assert_eq!(h.sup.units(), &new);
    h.exit("gone", sig(15));
    assert!(h.sup.unit_status("gone", h.now).is_none());
    h.exit("change", sig(15));
    let actions = h.take_raw();
    let spawned: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn { unit } => Some(unit.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(spawned.len(), 1);
    assert_eq!(
        spawned[0]
            .service
            .environment
            .get("MODE")
            .map(String::as_str),
        Some("fast")
    );
    assert_eq!(render(actions.last().unwrap()), format!("reply {id} ok"));
    assert_eq!(h.status("keep").pid, Some(keep));
    let names: Vec<String> = h.sup.status(h.now).into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["added", "change", "keep"]);
}

#[test]
fn an_inactive_changed_unit_only_takes_the_new_config() {
    let mut h = Harness::new(vec![unit("a")]);
    let id = h.command(Command::Reload(set(vec![unit("a").env("X", "1")])), true);
    assert_eq!(h.take(), [format!("reply {id} ok")]);
    assert_eq!(h.state("a"), State::Inactive);
    h.start(&["a"], false);
    let spawn = h.take_raw().into_iter().find_map(|a| match a {
        Action::Spawn { unit } => Some(unit),
        _ => None,
    });
    assert_eq!(spawn.map(|u| u.service.environment.len()), Some(1));
}

#[test]
fn reload_stops_requirers_of_removed_units_first() {
    let mut h = Harness::up(vec![unit("db"), unit("web").requires(&["db"])]);
    let (db, web) = (h.pid("db"), h.pid("web"));
    h.take();
    // web no longer requires db, and db is removed.
    h.command(Command::Reload(set(vec![unit("web")])), false);
    assert_eq!(
        h.take_plain(),
        [
            "reply 2 ok".to_string(),
            format!("signal-all {web} TERM"),
            format!("signal-all {web} CONT")
        ]
    );
    h.exit("web", sig(15));
    assert_eq!(
        h.take_plain(),
        // The new web has no dependency left: it starts at once.
        [
            format!("signal {web} KILL"),
            format!("signal-all {db} TERM"),
            format!("signal-all {db} CONT"),
            "spawn web".into()
        ]
    );
}

#[test]
fn a_failed_changed_unit_is_not_started() {
    let mut h = Harness::up(vec![unit("a").policy(kennel_units::RestartPolicy::No)]);
    h.exit("a", code(1));
    h.take();
    h.command(Command::Reload(set(vec![unit("a").env("X", "1")])), true);
    assert_eq!(h.take(), ["reply 2 ok"]);
    assert_eq!(h.state("a"), State::Failed);
}

#[test]
fn a_socket_activated_unit_added_by_a_reload_waits_for_its_socket() {
    let mut h = Harness::up(vec![unit("keep")]);
    h.take();
    let mut lazy = unit("lazy");
    lazy.service.activate = kennel_units::Activate::Socket;
    h.command(Command::Reload(set(vec![unit("keep"), lazy])), false);
    assert_eq!(h.take_plain(), ["reply 2 ok"]);
    assert_eq!(h.state("lazy"), State::Inactive);
}
