//! The shutdown plan: stop everything in reverse dependency order (or kill everything when
//! forced), then answer the shutdown waiters and emit `Exit` exactly once.

use std::time::Instant;

use crate::api::{Action, CommandError, Level, RequestId};
use crate::lifecycle::Input;
use crate::supervisor::Supervisor;

/// Shutdown progress.
#[derive(Debug, Default)]
pub(crate) struct Shutdown {
    /// Everything still running gets SIGKILL now (second signal).
    pub(crate) forced: bool,
    /// `Command::Shutdown` requests answered just before `Exit`.
    pub(crate) waiters: Vec<RequestId>,
    /// `Exit` was emitted: the supervisor is done.
    pub(crate) exited: bool,
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
        self.shutdown = Some(Shutdown::default());
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
        self.out.push(Action::Exit { code: 0 });
    }
}
