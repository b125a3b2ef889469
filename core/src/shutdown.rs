//! The shutdown plan: stop everything in reverse dependency order (or kill everything when
//! forced), then answer the shutdown waiters and emit `Exit` exactly once.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::api::{Action, CommandError, ExitStatus, Level, RequestId};
use crate::lifecycle::later;
use crate::lifecycle::Input;
use crate::supervisor::Supervisor;
use crate::unit::Phase;

/// Shutdown progress.
#[derive(Debug, Default)]
pub(crate) struct Shutdown {
    /// Everything still running gets SIGKILL now (second signal).
    pub(crate) forced: bool,
    /// `Command::Shutdown` requests answered just before `Exit`.
    pub(crate) waiters: Vec<RequestId>,
    /// `Exit` was emitted: the supervisor is done.
    pub(crate) exited: bool,
    /// When the shutdown budget is spent (`Ending::budget`).
    pub(crate) deadline: Option<Instant>,
    /// Units that did not stop cleanly: failed before the shutdown, killed at their stop
    /// timeout or at the budget, or ended with another status than a success or their stop
    /// signal. Any makes kennel's exit code 1.
    pub(crate) unclean: BTreeSet<String>,
}

impl Supervisor {
    /// A shutdown signal: the first starts an orderly shutdown, a forced one or any later
    /// one kills what is left.
    pub(crate) fn shutdown_signal(&mut self, force: bool, now: Instant) {
        let already = self.is_shutting_down();
        self.begin_shutdown(now);
        if force || already {
            if let Some(s) = self.shutdown.as_mut() {
                if !s.forced {
                    s.forced = true;
                    self.out
                        .global_notice(Level::Warn, "forced shutdown: killing every unit");
                }
            }
        }
    }

    /// Start the orderly shutdown (once): refuse pending waiters, cancel pending starts and
    /// queue a stop for every unit.
    pub(crate) fn begin_shutdown(&mut self, now: Instant) {
        if self.is_shutting_down() {
            return;
        }
        let unclean = self
            .units
            .values()
            .filter(|u| u.phase == Phase::Failed)
            .map(|u| u.name().to_string())
            .collect();
        self.shutdown = Some(Shutdown {
            deadline: self.ending.budget.map(|b| later(now, b)),
            unclean,
            ..Shutdown::default()
        });
        self.out.global_notice(Level::Info, "shutting down");
        for w in std::mem::take(&mut self.waiters) {
            self.reply(w.id(), Err(CommandError::ShuttingDown));
        }
        let names: Vec<String> = self.units.keys().cloned().collect();
        for name in names {
            self.step(&name, Input::Stop, now);
        }
    }

    /// When no unit has a process left: answer the shutdown waiters, then `Exit`.
    pub(crate) fn check_shutdown(&mut self) {
        let Some(s) = self.shutdown.as_mut() else {
            return;
        };
        if s.exited || self.units.values().any(|u| u.phase.has_process()) {
            return;
        }
        s.exited = true;
        for id in std::mem::take(&mut s.waiters) {
            self.out.push(Action::Reply { id, result: Ok(()) });
        }
        if !s.unclean.is_empty() {
            let names: Vec<&str> = s.unclean.iter().map(String::as_str).collect();
            self.out.global_notice(
                Level::Warn,
                format!("not every unit stopped cleanly: {}", names.join(", ")),
            );
        }
        let code = match self.main_exit {
            Some(code) => code,
            None if s.unclean.is_empty() => 0,
            None => 1,
        };
        self.out.push(Action::Exit { code });
    }

    /// The shutdown budget is spent: kill every unit still running.
    pub(crate) fn budget_timeout(&mut self, now: Instant) {
        let Some(s) = self.shutdown.as_mut() else {
            return;
        };
        if s.forced || s.deadline.is_none_or(|t| t > now) {
            return;
        }
        s.forced = true;
        let budget = self
            .ending
            .budget
            .map(crate::fmt::duration)
            .unwrap_or_default();
        self.out.global_notice(
            Level::Warn,
            format!("shutdown budget of {budget} spent: killing every unit left"),
        );
    }

    /// The main unit failed without a run to end (a dependency failed, its start limit):
    /// kennel ends as if its run had ended.
    pub(crate) fn check_main(&mut self, now: Instant) {
        if self.main_exit.is_some() || self.is_shutting_down() {
            return;
        }
        let Some(main) = self.ending.main.as_deref() else {
            return;
        };
        let Some(rt) = self.units.get(main) else {
            return;
        };
        if rt.phase != Phase::Failed {
            return;
        }
        let code = rt.last_exit.map_or(1, ExitStatus::as_code);
        let note = format!("main unit {main} failed ({}): shutting down", rt.detail);
        self.main_exit = Some(code);
        self.out.global_notice(Level::Info, note);
        self.begin_shutdown(now);
    }
}
