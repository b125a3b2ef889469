//! The FIFO of actions waiting for the shell, with shorthands for the common ones.

use std::collections::VecDeque;

use crate::api::{Action, Level, Pid};

/// SIGKILL.
pub(crate) const SIGKILL: i32 = 9;
/// SIGCONT: sent right after the stop signal so that a stopped process can act on it.
pub(crate) const SIGCONT: i32 = 18;

/// Actions in the order the shell must carry them out.
#[derive(Debug, Default)]
pub(crate) struct Out {
    queue: VecDeque<Action>,
}

impl Out {
    pub(crate) fn push(&mut self, action: Action) {
        self.queue.push_back(action);
    }

    pub(crate) fn pop(&mut self) -> Option<Action> {
        self.queue.pop_front()
    }

    /// A signal to the process group of `pid`.
    pub(crate) fn signal_group(&mut self, pid: Pid, signal: i32) {
        self.push(Action::Signal {
            pid,
            signal,
            group: true,
        });
    }

    /// A signal to `pid` only.
    pub(crate) fn signal_pid(&mut self, pid: Pid, signal: i32) {
        self.push(Action::Signal {
            pid,
            signal,
            group: false,
        });
    }

    pub(crate) fn notice(&mut self, unit: &str, level: Level, message: impl Into<String>) {
        self.push(Action::Notice {
            unit: Some(unit.to_string()),
            level,
            message: message.into(),
        });
    }

    pub(crate) fn global_notice(&mut self, level: Level, message: impl Into<String>) {
        self.push(Action::Notice {
            unit: None,
            level,
            message: message.into(),
        });
    }
}
