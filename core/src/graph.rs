//! Dependency questions over the runtime records: may a unit spawn, may it be signalled,
//! who requires whom. Computed from each unit's own `after`/`requires` (the configuration
//! its current process runs with), so a reload in progress stays consistent.

use std::collections::{BTreeMap, BTreeSet};

use crate::unit::{Phase, UnitRt};

/// The runtime records, by name.
pub(crate) type Units = BTreeMap<String, UnitRt>;

/// What a waiting unit's dependencies allow.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Deps {
    /// Every dependency is satisfied or need not be waited for: spawn.
    Met,
    /// Wait for this unit.
    WaitFor(String),
    /// This required unit is inactive and not being started: start it, then wait.
    PullIn(String),
    /// A required unit failed for good: fail with this detail.
    Failed(String),
}

/// Check the dependencies of `rt` (`service.after`, which includes every `requires`).
pub(crate) fn check_deps(units: &Units, rt: &UnitRt) -> Deps {
    for dep in &rt.unit.service.after {
        let Some(d) = units.get(dep) else { continue };
        if d.satisfied() {
            continue;
        }
        let required = rt.unit.service.requires.contains(dep);
        let in_progress = d.phase.has_process() || d.stop_queued;
        match (&d.phase, required) {
            (Phase::Failed, true) => return Deps::Failed(format!("required unit {dep} failed")),
            (Phase::Exited, true) => {
                return Deps::Failed(format!("required unit {dep} exited"));
            }
            (Phase::Inactive, true) if !in_progress => return Deps::PullIn(dep.clone()),
            (Phase::Failed | Phase::Exited | Phase::Inactive, false) if !in_progress => {}
            _ => return Deps::WaitFor(dep.clone()),
        }
    }
    Deps::Met
}

/// The first unit that must stop before `name` may be signalled: one that is ordered after
/// it (`after` contains `name`), still has a process, and is itself being stopped.
pub(crate) fn stop_blocker<'a>(units: &'a Units, name: &str) -> Option<&'a str> {
    units
        .values()
        .find(|y| {
            y.name() != name
                && y.unit.service.after.iter().any(|a| a == name)
                && y.phase.has_process()
                && (y.stop_queued || matches!(y.phase, Phase::Stopping { .. }))
        })
        .map(UnitRt::name)
}

/// `names` plus every unit that requires one of them, transitively.
pub(crate) fn with_requirers(units: &Units, names: &[String]) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = names.iter().cloned().collect();
    loop {
        let more: Vec<String> = units
            .values()
            .filter(|u| !set.contains(u.name()))
            .filter(|u| u.unit.service.requires.iter().any(|r| set.contains(r)))
            .map(|u| u.name().to_string())
            .collect();
        if more.is_empty() {
            return set;
        }
        set.extend(more);
    }
}
