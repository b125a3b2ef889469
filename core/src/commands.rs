//! Client commands: validation, what each one does, and the waiters that answer
//! `wait = true` requests once the work is done.

use std::collections::BTreeSet;
use std::time::Instant;

use kennel_units::UnitSet;

use crate::api::{Action, Command, CommandError, Level, RequestId};
use crate::graph::with_requirers;
use crate::lifecycle::Input;
use crate::supervisor::Supervisor;
use crate::unit::{ControlKind, Phase, UnitRt};

/// A client waiting for its command to complete.
#[derive(Debug)]
pub(crate) struct Waiter {
    id: RequestId,
    /// Must each be satisfied once (`Up`, or a oneshot done). Failing first => error.
    up: Vec<String>,
    /// Units of `up` seen satisfied so far.
    seen: BTreeSet<String>,
    /// Must each have no process (or be gone), or have stopped since (name, stop count).
    stopped: Vec<(String, u64)>,
    /// Must each be forgotten (removed by a reload, stopped, gone).
    gone: Vec<String>,
    /// Must each have finished a `reload` run since (name, reload count); one that failed
    /// fails the command.
    reloaded: Vec<(String, u64)>,
}

impl Waiter {
    fn new(id: RequestId, up: Vec<String>, stopped: Vec<(String, u64)>) -> Self {
        Waiter {
            id,
            up,
            seen: BTreeSet::new(),
            stopped,
            gone: Vec::new(),
            reloaded: Vec::new(),
        }
    }
}

/// Why a unit that a waiter wants up will not come up, if it will not.
fn gave_up(rt: Option<&UnitRt>) -> Option<String> {
    let Some(rt) = rt else {
        return Some("removed".into());
    };
    match rt.phase {
        Phase::Failed => Some(rt.detail.clone()),
        Phase::Exited if !rt.satisfied() => Some(rt.detail.clone()),
        Phase::Inactive if !rt.restart_pending => Some("stopped".into()),
        _ => None,
    }
}

impl Supervisor {
    pub(crate) fn reply(&mut self, id: RequestId, result: Result<(), CommandError>) {
        self.out.push(Action::Reply { id, result });
    }

    pub(crate) fn has_exited(&self) -> bool {
        self.shutdown.as_ref().is_some_and(|s| s.exited)
    }

    /// Handle one client command: refuse it, or do it and answer now or through a waiter.
    pub(crate) fn command(&mut self, id: RequestId, command: Command, wait: bool, now: Instant) {
        if self.is_shutting_down() && !matches!(command, Command::Shutdown) {
            return self.reply(id, Err(CommandError::ShuttingDown));
        }
        if let Command::Start(names)
        | Command::Stop(names)
        | Command::Restart(names)
        | Command::ReloadUnits(names) = &command
        {
            if let Some(unit) = names.iter().find(|n| self.set.get(n).is_none()) {
                return self.reply(id, Err(CommandError::UnknownUnit { unit: unit.clone() }));
            }
        }
        if let Command::ReloadUnits(names) = &command {
            if let Some(e) = names.iter().find_map(|n| self.cannot_reload(n)) {
                return self.reply(id, Err(e));
            }
        }
        if !wait {
            self.reply(id, Ok(()));
        }
        let waiter = match command {
            Command::Up => {
                // A socket-activated unit waits for its first connection (the shell
                // watches its sockets), unless a unit started now requires it.
                let all: Vec<String> = self
                    .set
                    .names()
                    .filter(|n| {
                        self.set
                            .get(n)
                            .is_some_and(|u| u.service.activate == kennel_units::Activate::Up)
                    })
                    .map(String::from)
                    .collect();
                let mut visited = BTreeSet::new();
                for name in &all {
                    self.start_tree(name, false, &mut visited, now);
                }
                Waiter::new(id, all, Vec::new())
            }
            Command::Start(names) => {
                let mut visited = BTreeSet::new();
                for name in &names {
                    self.start_tree(name, true, &mut visited, now);
                }
                Waiter::new(id, names, Vec::new())
            }
            Command::Stop(names) => {
                let set = with_requirers(&self.units, &names);
                for name in &set {
                    self.step(name, Input::Stop, now);
                }
                let stopped = set.into_iter().map(|n| self.stop_mark(n)).collect();
                Waiter::new(id, Vec::new(), stopped)
            }
            Command::Restart(names) => {
                let set = with_requirers(&self.units, &names);
                let mut start: Vec<String> = names.clone();
                for name in &set {
                    let active = self.units.get(name).is_some_and(is_active);
                    if active && !start.contains(name) {
                        start.push(name.clone());
                    }
                }
                for name in &set {
                    self.step(name, Input::Stop, now);
                }
                let mut visited = BTreeSet::new();
                for name in &start {
                    self.start_tree(name, true, &mut visited, now);
                }
                Waiter::new(id, start, Vec::new())
            }
            Command::Reload(set) => self.reload(id, set, now),
            Command::ReloadUnits(names) => {
                let mut reloaded = Vec::new();
                for name in names {
                    let Some(rt) = self.units.get(&name) else {
                        continue;
                    };
                    let mark = rt.reloads;
                    let signal = rt.unit.service.reload_signal;
                    let pid = rt.phase.pid();
                    if self.run_control(&name, ControlKind::Reload, 0, now) {
                        reloaded.push((name, mark));
                    } else if let (Some(sig), Some(pid)) = (signal, pid) {
                        self.out.push(Action::Signal {
                            pid,
                            signal: sig.number,
                            group: false,
                        });
                        self.out.notice(
                            &name,
                            Level::Info,
                            format!("reload: {} sent", kennel_units::signal_name(sig.number)),
                        );
                    }
                }
                Waiter {
                    reloaded,
                    ..Waiter::new(id, Vec::new(), Vec::new())
                }
            }
            Command::Shutdown => {
                self.begin_shutdown(now);
                if wait {
                    if let Some(s) = self.shutdown.as_mut() {
                        s.waiters.push(id);
                    }
                }
                return;
            }
        };
        if wait {
            self.waiters.push(waiter);
        }
    }

    /// Start `name` and, recursively, the units it requires that are not running. A
    /// finished oneshot is run again only when `explicit`.
    fn start_tree(
        &mut self,
        name: &str,
        explicit: bool,
        visited: &mut BTreeSet<String>,
        now: Instant,
    ) {
        if !visited.insert(name.to_string()) {
            return;
        }
        let Some(rt) = self.units.get(name) else {
            return;
        };
        let done = rt.phase == Phase::Exited && rt.satisfied();
        let requires = rt.unit.service.requires.clone();
        // A oneshot that remains up is not run again (systemd: it is active).
        if (explicit && !rt.remains()) || !done {
            self.step(name, Input::Start, now);
        }
        for dep in &requires {
            self.start_tree(dep, false, visited, now);
        }
    }

    /// Replace the unit set: stop and forget removed units, restart changed running ones
    /// with their new configuration, start added ones.
    fn reload(&mut self, id: RequestId, set: UnitSet, now: Instant) -> Waiter {
        let removed: Vec<String> = self
            .units
            .keys()
            .filter(|n| set.get(n).is_none())
            .cloned()
            .collect();
        for name in &removed {
            self.step(name, Input::Stop, now);
            if let Some(rt) = self.units.get_mut(name) {
                rt.remove_when_stopped = true;
            }
        }
        let mut up = Vec::new();
        let mut added = Vec::new();
        for unit in set.iter() {
            let name = unit.name.clone();
            let Some(rt) = self.units.get_mut(&name) else {
                self.units.insert(name.clone(), UnitRt::new(unit.clone()));
                // Like `Up`: a socket-activated unit waits for its first connection.
                if unit.service.activate == kennel_units::Activate::Up {
                    added.push(name);
                }
                continue;
            };
            let revived = std::mem::take(&mut rt.remove_when_stopped);
            let next = rt.pending_config.as_ref().unwrap_or(&rt.unit);
            if next == unit && !revived {
                continue;
            }
            let restart = revived || is_active(rt);
            if rt.phase.has_process() {
                rt.pending_config = Some(unit.clone());
            } else {
                rt.unit = unit.clone();
                rt.pending_config = None;
            }
            if restart {
                self.step(&name, Input::Stop, now);
                self.step(&name, Input::Start, now);
                up.push(name);
            }
        }
        self.set = set;
        let mut visited = BTreeSet::new();
        for name in &added {
            self.start_tree(name, true, &mut visited, now);
        }
        up.extend(added);
        Waiter {
            gone: removed,
            ..Waiter::new(id, up, Vec::new())
        }
    }

    /// The units named by a `Start` or `Stop` that are already where the command would take
    /// them, so that it leaves them as they are: for `Start`, the units up (a finished
    /// oneshot is run again, so it is not among them); for `Stop`, the units with no process
    /// and no restart to come (inactive, exited, failed). In the command's order; empty for
    /// other commands and for names not in the set. Ask before handling the command.
    pub fn already(&self, command: &Command) -> Vec<String> {
        let (names, there): (&[String], fn(&UnitRt) -> bool) = match command {
            Command::Start(names) => (names, |rt| {
                (matches!(rt.phase, Phase::Up { .. }) || rt.remains()) && !rt.stop_queued
            }),
            Command::Stop(names) => (names, |rt| {
                matches!(rt.phase, Phase::Inactive | Phase::Exited | Phase::Failed)
                    && !rt.restart_pending
                    && !rt.remains()
            }),
            _ => return Vec::new(),
        };
        names
            .iter()
            .filter(|n| self.units.get(*n).is_some_and(there))
            .cloned()
            .collect()
    }

    /// Why `name` cannot be reloaded now, if it cannot.
    fn cannot_reload(&self, name: &str) -> Option<CommandError> {
        let rt = self.units.get(name)?;
        let reason = if !matches!(rt.phase, Phase::Up { .. }) || rt.stop_queued {
            "cannot reload: not up".to_string()
        } else if rt.unit.service.reload.is_empty() && rt.unit.service.reload_signal.is_none() {
            "cannot reload: the unit has no reload commands and no reload_signal".to_string()
        } else if let Some(c) = &rt.control {
            format!("cannot reload: its {} commands run", c.kind.key())
        } else {
            return None;
        };
        Some(CommandError::UnitFailed {
            unit: name.to_string(),
            reason,
        })
    }

    /// A unit and its stop count now, for a stop waiter.
    fn stop_mark(&self, name: String) -> (String, u64) {
        let stops = self.units.get(&name).map_or(0, |u| u.stops);
        (name, stops)
    }

    /// Answer the waiters whose work is done or has failed.
    pub(crate) fn check_waiters(&mut self) {
        let mut replies = Vec::new();
        let units = &self.units;
        self.waiters.retain_mut(|w| {
            for name in &w.up {
                if w.seen.contains(name) {
                    continue;
                }
                let rt = units.get(name);
                if rt.is_some_and(UnitRt::satisfied) {
                    w.seen.insert(name.clone());
                } else if let Some(reason) = gave_up(rt) {
                    let unit = name.clone();
                    replies.push((w.id, Err(CommandError::UnitFailed { unit, reason })));
                    return false;
                }
            }
            let stopped = w.stopped.iter().all(|(n, mark)| match units.get(n) {
                None => true,
                Some(u) => u.is_stopped() || u.stops != *mark,
            });
            let gone = w.gone.iter().all(|n| !units.contains_key(n));
            let mut reloaded = true;
            for (n, mark) in &w.reloaded {
                match units.get(n) {
                    None => {
                        let reason = "removed".to_string();
                        let unit = n.clone();
                        replies.push((w.id, Err(CommandError::UnitFailed { unit, reason })));
                        return false;
                    }
                    Some(u) if u.reloads == *mark => reloaded = false,
                    Some(u) => {
                        if let Err(reason) = &u.last_reload {
                            let (unit, reason) = (n.clone(), reason.clone());
                            replies.push((w.id, Err(CommandError::UnitFailed { unit, reason })));
                            return false;
                        }
                    }
                }
            }
            if w.seen.len() == w.up.len() && stopped && gone && reloaded {
                replies.push((w.id, Ok(())));
                return false;
            }
            true
        });
        for (id, result) in replies {
            self.reply(id, result);
        }
    }
}

/// Running or about to run: a restart brings it back.
fn is_active(rt: &UnitRt) -> bool {
    match rt.phase {
        Phase::Waiting
        | Phase::Spawning
        | Phase::Running { .. }
        | Phase::Up { .. }
        | Phase::Backoff { .. } => !rt.stop_queued || rt.restart_pending,
        Phase::Checking | Phase::PreStart | Phase::FindingMain { .. } => {
            !rt.stop_queued || rt.restart_pending
        }
        Phase::Stopping { .. } | Phase::PostStop { .. } => rt.restart_pending,
        Phase::Inactive | Phase::Exited | Phase::Failed => false,
    }
}

impl Waiter {
    pub(crate) fn id(&self) -> RequestId {
        self.id
    }
}
