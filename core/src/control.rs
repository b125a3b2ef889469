//! Commands around the main one (`start_pre`, `start_post`, `reload`, `stop`,
//! `stop_post`): each list runs in order, one control process at a time, and its end (or
//! a failure) moves the unit on, as systemd's `ExecStartPre=` ... `ExecStopPost=` do.

use std::time::Instant;

use kennel_units::{ExecCommand, Unit, INFINITY};

use crate::api::{Action, ExitStatus, Level, Pid};
use crate::fmt::{duration, exit_detail};
use crate::lifecycle::later;
use crate::out::SIGKILL;
use crate::supervisor::Supervisor;
use crate::unit::{Control, ControlKind, End, Phase, StopWhy};

/// The list of commands `kind` of `unit`.
fn commands(unit: &Unit, kind: ControlKind) -> &[ExecCommand] {
    let s = &unit.service;
    match kind {
        ControlKind::StartPre => &s.start_pre,
        ControlKind::StartPost => &s.start_post,
        ControlKind::Reload => &s.reload,
        ControlKind::Stop => &s.stop,
        ControlKind::StopPost => &s.stop_post,
    }
}

/// The time each command of `kind` has: the stop timeout for `stop` and `stop_post`, the
/// start timeout for the others.
fn timeout(unit: &Unit, kind: ControlKind) -> std::time::Duration {
    match kind {
        ControlKind::Stop | ControlKind::StopPost => unit.service.stop_timeout,
        _ => unit.service.start_timeout,
    }
}

impl Supervisor {
    /// Run command `index` of the list `kind` of unit `name`; false if there is none.
    pub(crate) fn run_control(
        &mut self,
        name: &str,
        kind: ControlKind,
        index: usize,
        now: Instant,
    ) -> bool {
        let Some(rt) = self.units.get_mut(name) else {
            return false;
        };
        let Some(cmd) = commands(&rt.unit, kind).get(index) else {
            return false;
        };
        let limit = timeout(&rt.unit, kind);
        rt.control = Some(Control {
            kind,
            index,
            pid: None,
            deadline: (limit != INFINITY).then(|| later(now, limit)),
            timed_out: false,
        });
        rt.detail = format!("{} {}", kind.key(), cmd.argv[0]);
        self.out.push(Action::RunControl {
            unit: name.to_string(),
            argv: cmd.argv.clone(),
            main_pid: rt.phase.pid(),
        });
        true
    }

    /// The shell started the control process of `name`.
    pub(crate) fn control_spawned(&mut self, name: &str, pid: Pid, now: Instant) {
        let waiting = self
            .units
            .get_mut(name)
            .and_then(|rt| rt.control.as_mut())
            .filter(|c| c.pid.is_none());
        match waiting {
            Some(c) => c.pid = Some(pid),
            // Nobody waits for it any more (the unit was stopped meanwhile).
            None => return self.out.signal_group(pid, SIGKILL),
        }
        if let Some(i) = self.unclaimed.iter().position(|(p, _)| *p == pid) {
            let (_, status) = self.unclaimed.remove(i);
            self.control_ended(name, Ok(status), now);
        }
    }

    /// A control process deadline passed: kill it; its exit is a failure `timed out`.
    pub(crate) fn control_timer(&mut self, name: &str, now: Instant) {
        let Some(c) = self.units.get_mut(name).and_then(|rt| rt.control.as_mut()) else {
            return;
        };
        if c.deadline.is_some_and(|t| now >= t) {
            c.deadline = None;
            c.timed_out = true;
            if let Some(pid) = c.pid {
                self.out.signal_group(pid, SIGKILL);
            }
        }
    }

    /// The control process of `name` ended (`Err`: it could not be started): the next
    /// command of its list, or what the end of the list means.
    pub(crate) fn control_ended(
        &mut self,
        name: &str,
        status: Result<ExitStatus, String>,
        now: Instant,
    ) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        let Some(c) = rt.control.take() else { return };
        let Some(cmd) = commands(&rt.unit, c.kind).get(c.index) else {
            return;
        };
        let failure = match status {
            _ if c.timed_out => Some(format!(
                "timed out after {}",
                duration(timeout(&rt.unit, c.kind))
            )),
            Ok(ExitStatus::Code(0)) => None,
            Ok(s) => Some(exit_detail(s)),
            Err(reason) => Some(reason),
        };
        let mut failure = failure.map(|f| format!("{} {}: {f}", c.kind.key(), cmd.argv[0]));
        if cmd.ignore_failure {
            if let Some(f) = failure.take() {
                self.out
                    .notice(name, Level::Info, format!("{f} (ignored: \"-\")"));
            }
        }
        if failure.is_none() && self.run_control(name, c.kind, c.index + 1, now) {
            return;
        }
        self.control_done(name, c.kind, failure, now);
    }

    /// The list `kind` of `name` is done (or failed with `failure`).
    fn control_done(
        &mut self,
        name: &str,
        kind: ControlKind,
        failure: Option<String>,
        now: Instant,
    ) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        rt.detail.clear();
        let phase = rt.phase.clone();
        match (kind, phase, failure) {
            (ControlKind::StartPre, Phase::PreStart, None) => self.spawn_main(name, now),
            (ControlKind::StartPre, Phase::PreStart, Some(f)) => {
                self.process_ended(name, End::NoProcess(f), now);
            }
            (ControlKind::StartPost, Phase::Running { pid, .. }, None) => {
                self.go_up(name, pid);
            }
            (ControlKind::StartPost, Phase::Running { .. }, Some(f)) => {
                self.out.notice(name, Level::Warn, format!("{f}; stopping"));
                self.begin_stop(name, StopWhy::StartFailed(f), now);
            }
            (ControlKind::Reload, _, failure) => {
                rt.reloads = rt.reloads.wrapping_add(1);
                match failure {
                    None => {
                        self.out.notice(name, Level::Info, "reloaded");
                        rt.last_reload = Ok(());
                    }
                    Some(f) => {
                        self.out
                            .notice(name, Level::Warn, format!("reload failed: {f}"));
                        rt.last_reload = Err(f);
                    }
                }
            }
            (ControlKind::Stop, Phase::Stopping { .. }, failure) => {
                if let Some(f) = failure {
                    self.out.notice(name, Level::Warn, f);
                }
                self.signal_stop(name, now);
            }
            (ControlKind::StopPost, Phase::PostStop { end, why }, failure) => {
                if let Some(f) = failure {
                    self.out.notice(name, Level::Warn, f);
                }
                self.finish_run(name, end, why, now);
            }
            // The phase moved on meanwhile (a stop, the main process's end).
            _ => {}
        }
    }

    /// Kill the running control process of `name` and forget it (a reload in progress
    /// fails with `why`). One still being spawned is killed when it is reported.
    pub(crate) fn abandon_control(&mut self, name: &str, why: &str) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        let Some(c) = rt.control.take() else { return };
        if let Some(pid) = c.pid {
            self.out.signal_group(pid, SIGKILL);
        }
        if c.kind == ControlKind::Reload {
            rt.reloads = rt.reloads.wrapping_add(1);
            rt.last_reload = Err(format!("reload: {why}"));
        }
    }
}
