//! The unit lifecycle: every state × input transition, in one `match` ([`Supervisor::step`]),
//! and the few routines the transitions share (spawn, stop sequence, end of a process).

use std::time::{Duration, Instant};

use kennel_units::{KillMode, RestartPolicy, ServiceType, INFINITY};

use crate::api::{Action, ExitStatus, HealthState, Level, Pid};
use crate::fmt::{duration, exit_detail, exit_phrase};
use crate::out::{SIGCONT, SIGKILL};
use crate::supervisor::Supervisor;
use crate::unit::{End, Phase, StopWhy};

/// What happens to one unit. Events from the shell, decisions of the supervisor
/// (dependencies, stop order, shutdown) and timers all arrive here.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    /// A user start (command, reload, pulled in by a dependent): reset the counters and run.
    Start,
    /// A user stop (command, reload, shutdown): no restart afterwards.
    Stop,
    /// A waiting unit's dependencies allow it to spawn.
    DepsMet,
    /// A required unit failed for good; the detail says which.
    DepFailed(String),
    /// A queued stop may now be carried out (the units ordered after it have stopped).
    SignalNow,
    /// Forced shutdown: SIGKILL the process.
    Kill,
    Spawned(Pid),
    SpawnFailed(Option<Pid>, String),
    Exited(Pid, ExitStatus),
    /// The shell's answer to `CheckConditions`.
    Checked(Option<kennel_units::PathCondition>),
    /// The shell's answer to `FindMainPid`.
    MainPid(Result<Pid, String>),
    /// The control process (a command around the main one) was started.
    ControlSpawned(Pid),
    /// The control process ended (`Err`: it could not be started).
    ControlEnded(Result<ExitStatus, String>),
    OomKilled(Pid),
    Ready(Pid),
    Health {
        pid: Pid,
        ok: bool,
        detail: String,
    },
    /// The phase's deadline has passed.
    Timer,
}

/// How a run ended, for the restart policies that tell ends apart (systemd's table in
/// systemd.service(5), `Restart=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// An exit code of `success_exit_codes`.
    Success,
    /// Another exit code, a start that failed, a failed command around the main one.
    Code,
    /// Killed by this signal.
    Signal(i32),
    /// Not ready within the `[ready]` timeout.
    Timeout,
    /// Stopped after failed health checks (kennel's watchdog).
    Unhealthy,
}

impl How {
    /// Killed by a signal other than SIGHUP, SIGINT, SIGTERM, SIGPIPE.
    fn unclean_signal(self) -> bool {
        matches!(self, How::Signal(s) if ![1, 2, 13, 15].contains(&s))
    }

    fn restarts(self, policy: RestartPolicy) -> bool {
        match policy {
            RestartPolicy::No => false,
            RestartPolicy::Always => true,
            RestartPolicy::OnSuccess => self == How::Success,
            RestartPolicy::OnFailure => self != How::Success,
            RestartPolicy::OnAbnormal => {
                self.unclean_signal() || matches!(self, How::Timeout | How::Unhealthy)
            }
            RestartPolicy::OnAbort => self.unclean_signal(),
            RestartPolicy::OnWatchdog => self == How::Unhealthy,
        }
    }
}

/// Deadlines further away than this are clamped (a unit file can say `timeout = "100000h"`).
const FAR: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `now + d` without overflow.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(FAR)).unwrap_or(now)
}

impl Supervisor {
    /// Apply `input` to unit `name`: the lifecycle table. Inputs that do not apply to the
    /// current phase (stale pids, late timers, duplicates) are ignored.
    pub(crate) fn step(&mut self, name: &str, input: Input, now: Instant) {
        let shutting_down = self.is_shutting_down();
        if matches!(input, Input::Timer) {
            self.control_timer(name, now);
        }
        match input {
            Input::ControlSpawned(pid) => return self.control_spawned(name, pid, now),
            Input::ControlEnded(status) => return self.control_ended(name, status, now),
            _ => {}
        }
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        let out = &mut self.out;
        match (rt.phase.clone(), input) {
            // A user start.
            (
                Phase::Inactive | Phase::Failed | Phase::Exited | Phase::Backoff { .. },
                Input::Start,
            ) => {
                if shutting_down {
                    return;
                }
                rt.restarts = 0;
                rt.backoff.reset();
                rt.succeeded = false;
                rt.detail.clear();
                rt.phase = Phase::Waiting;
            }
            (
                Phase::Waiting | Phase::Spawning | Phase::Running { .. } | Phase::Up { .. },
                Input::Start,
            ) if rt.stop_queued => rt.restart_pending = true,
            // Already starting or up: nothing to do, the caller just waits.
            (
                Phase::Waiting
                | Phase::Checking
                | Phase::PreStart
                | Phase::Spawning
                | Phase::Running { .. }
                | Phase::Up { .. },
                Input::Start,
            ) => {}
            (Phase::Stopping { .. } | Phase::PostStop { .. }, Input::Start) => {
                rt.restart_pending = !shutting_down;
            }

            // A user stop.
            (
                Phase::Inactive
                | Phase::Waiting
                | Phase::Checking
                | Phase::Backoff { .. }
                | Phase::Exited
                | Phase::Failed,
                Input::Stop,
            ) => {
                rt.restart_pending = false;
                self.become_inactive(name, now);
            }
            (Phase::Spawning | Phase::Running { .. } | Phase::Up { .. }, Input::Stop) => {
                rt.restart_pending = false;
                rt.stop_queued = true;
            }
            (Phase::PreStart, Input::Stop) => {
                rt.restart_pending = false;
                self.abandon_control(name, "stopped");
                self.become_inactive(name, now);
            }
            (Phase::PostStop { end, .. }, Input::Stop) => {
                rt.restart_pending = false;
                rt.phase = Phase::PostStop {
                    end,
                    why: Some(StopWhy::User),
                };
            }
            (Phase::Stopping { pid, kill_at, .. }, Input::Stop) => {
                rt.restart_pending = false;
                rt.phase = Phase::Stopping {
                    pid,
                    why: StopWhy::User,
                    kill_at,
                };
            }

            // Conditions.
            (Phase::Checking, Input::Checked(None)) => self.begin_run(name, now),
            (Phase::Checking, Input::Checked(Some(c))) if c.assert => {
                let why = format!("assertion failed: {}", c.describe());
                out.notice(name, Level::Error, format!("{why}; failed"));
                rt.detail = why;
                rt.phase = Phase::Failed;
            }
            (Phase::Checking, Input::Checked(Some(c))) => {
                let why = format!("skipped: {} does not hold", c.describe());
                out.notice(name, Level::Info, &why);
                rt.detail = why;
                // Not a failure: its dependents start (as under systemd).
                rt.succeeded = true;
                rt.phase = Phase::Exited;
            }

            // Dependencies.
            (Phase::Waiting, Input::DepsMet) => self.spawn(name, now),
            (Phase::Waiting, Input::DepFailed(detail)) => {
                out.notice(name, Level::Error, &detail);
                rt.detail = detail;
                rt.phase = Phase::Failed;
            }

            // The shell's answer to Spawn.
            (Phase::Spawning, Input::Spawned(pid)) => {
                out.notice(name, Level::Info, format!("started, pid {pid}"));
                rt.phase = Phase::Running {
                    pid,
                    ready_by: None,
                };
                if rt.stop_queued {
                    // Stopped before it ran: the stop sequence follows, no probes.
                } else if rt.unit.service.kind == ServiceType::Forking {
                    rt.detail = "waiting for the daemon to fork".into();
                } else if rt.is_oneshot() {
                    rt.detail = "running".into();
                } else {
                    self.after_spawn(name, pid, now);
                }
                self.claim_exit(name, pid, now);
            }
            // A failed spawn gets one notice, once the process is gone: the reason with
            // what comes next (`exec /x: not found; restart in 1s`), from `process_ended`.
            (Phase::Spawning, Input::SpawnFailed(None, reason)) => {
                self.process_ended(name, End::NoProcess(reason), now);
            }
            (Phase::Spawning, Input::SpawnFailed(Some(pid), reason)) => {
                rt.phase = Phase::Running {
                    pid,
                    ready_by: None,
                };
                rt.detail.clone_from(&reason);
                rt.spawn_failure = Some(reason);
                self.claim_exit(name, pid, now);
            }

            // The process.
            (Phase::Running { pid, .. }, Input::Exited(p, ExitStatus::Code(0)))
                if p == pid
                    && rt.unit.service.kind == ServiceType::Forking
                    && !rt.main_found
                    && rt.spawn_failure.is_none()
                    && !rt.stop_queued =>
            {
                let limit = rt.unit.service.start_timeout;
                rt.detail = "looking for the daemon".into();
                rt.phase = Phase::FindingMain {
                    parent: pid,
                    until: (limit != INFINITY).then(|| later(now, limit)),
                };
                out.push(Action::FindMainPid {
                    unit: name.into(),
                    parent: pid,
                    pid_file: rt.unit.service.pid_file.clone(),
                });
            }
            (Phase::FindingMain { .. }, Input::MainPid(Ok(pid))) => {
                rt.main_found = true;
                out.notice(name, Level::Info, format!("the daemon is pid {pid}"));
                rt.phase = Phase::Running {
                    pid,
                    ready_by: None,
                };
                self.after_spawn(name, pid, now);
                self.claim_exit(name, pid, now);
            }
            (Phase::FindingMain { parent, .. }, Input::MainPid(Err(why))) => {
                out.signal_group(parent, SIGKILL);
                self.process_ended(name, End::NoProcess(why), now);
            }
            (
                Phase::FindingMain {
                    parent,
                    until: Some(t),
                },
                Input::Timer,
            ) if now >= t => {
                let why = format!(
                    "no daemon found within {}",
                    duration(rt.unit.service.start_timeout)
                );
                out.signal_group(parent, SIGKILL);
                self.process_ended(name, End::NoProcess(why), now);
            }
            (Phase::FindingMain { parent, .. }, Input::Stop | Input::Kill) => {
                rt.restart_pending = false;
                out.signal_group(parent, SIGKILL);
                self.become_inactive(name, now);
            }
            (
                Phase::Running { pid, .. } | Phase::Up { pid } | Phase::Stopping { pid, .. },
                Input::Exited(p, status),
            ) if p == pid => self.process_ended(name, End::Exit(pid, status), now),
            // The shell learns that a spawn failed (exec not found ...) after `Spawned`:
            // the coming exit of that pid is a failure with this reason.
            (
                Phase::Running { pid, .. } | Phase::Up { pid } | Phase::Stopping { pid, .. },
                Input::SpawnFailed(Some(p), reason),
            ) if p == pid => {
                rt.detail.clone_from(&reason);
                rt.spawn_failure = Some(reason);
            }
            (
                Phase::Running { pid, .. } | Phase::Up { pid } | Phase::Stopping { pid, .. },
                Input::OomKilled(p),
            ) if p == pid => {
                out.notice(
                    name,
                    Level::Error,
                    "oom-killed: the unit reached its memory_max",
                );
                rt.spawn_failure = Some("oom-killed".into());
            }
            (Phase::Running { pid, .. }, Input::Ready(p))
                if p == pid
                    && rt.spawn_failure.is_none()
                    && !rt.stop_queued
                    && rt.control.is_none() =>
            {
                out.notice(name, Level::Info, "ready");
                rt.phase = Phase::Running {
                    pid,
                    ready_by: None,
                };
                self.main_up(name, pid, now);
            }
            (Phase::Up { pid }, Input::Health { pid: p, ok, detail })
                if p == pid && !rt.stop_queued =>
            {
                if ok {
                    rt.health = HealthState::Healthy;
                    rt.health_failures = 0;
                    rt.detail.clear();
                    return;
                }
                rt.health_failures = rt.health_failures.saturating_add(1);
                let retries = rt.unit.health.as_ref().map_or(1, |h| h.retries.max(1));
                if rt.health_failures < retries {
                    rt.health = HealthState::Failing;
                    rt.detail = format!("health check failed: {detail}");
                    return;
                }
                rt.health = HealthState::Unhealthy;
                let why = format!("unhealthy: {detail}");
                out.notice(name, Level::Warn, format!("{why}; stopping"));
                out.push(Action::Unwatch { unit: name.into() });
                rt.watching = false;
                self.begin_stop(name, StopWhy::Unhealthy(why), now);
            }

            // Deadlines.
            (
                Phase::Running {
                    ready_by: Some(t), ..
                },
                Input::Timer,
            ) if now >= t => {
                let why = format!(
                    "not ready within {}",
                    rt.unit
                        .ready
                        .as_ref()
                        .map_or_else(String::new, |r| duration(r.timeout))
                );
                out.notice(name, Level::Warn, format!("{why}; stopping"));
                if rt.watching {
                    out.push(Action::Unwatch { unit: name.into() });
                    rt.watching = false;
                }
                self.begin_stop(name, StopWhy::NotReady(why), now);
            }
            (
                Phase::Stopping {
                    pid,
                    why,
                    kill_at: Some(t),
                },
                Input::Timer,
            ) if now >= t => {
                let timeout = duration(rt.unit.service.stop_timeout);
                if !rt.unit.service.send_sigkill {
                    out.notice(
                        name,
                        Level::Warn,
                        format!(
                            "did not stop within {timeout}; send_sigkill = false: waiting for it"
                        ),
                    );
                    rt.phase = Phase::Stopping {
                        pid,
                        why,
                        kill_at: None,
                    };
                    return;
                }
                out.notice(
                    name,
                    Level::Warn,
                    format!("did not stop within {timeout}; killing"),
                );
                match (rt.unit.container.is_some(), rt.unit.service.kill_mode) {
                    (false, KillMode::Process | KillMode::None) => out.signal_pid(pid, SIGKILL),
                    _ => out.signal_group(pid, SIGKILL),
                }
                rt.killed = true;
                rt.phase = Phase::Stopping {
                    pid,
                    why,
                    kill_at: None,
                };
            }
            (Phase::Backoff { until }, Input::Timer) if now >= until => rt.phase = Phase::Waiting,

            // Decisions of the supervisor about a running process.
            (Phase::Running { .. } | Phase::Up { .. }, Input::SignalNow) if rt.stop_queued => {
                self.begin_stop(name, StopWhy::User, now);
            }
            (
                Phase::Running { pid, .. } | Phase::Up { pid } | Phase::Stopping { pid, .. },
                Input::Kill,
            ) if !rt.killed => {
                self.abandon_control(name, "killed");
                let out = &mut self.out;
                let Some(rt) = self.units.get_mut(name) else {
                    return;
                };
                out.signal_group(pid, SIGKILL);
                rt.killed = true;
                rt.stop_queued = false;
                rt.detail = "killed".into();
                rt.phase = Phase::Stopping {
                    pid,
                    why: StopWhy::User,
                    kill_at: None,
                };
            }

            // Forced shutdown while only a command around the main one runs.
            (Phase::PreStart, Input::Kill) => {
                self.abandon_control(name, "killed");
                self.become_inactive(name, now);
            }
            (Phase::PostStop { end, why }, Input::Kill) => {
                self.abandon_control(name, "killed");
                self.finish_run(name, end, why, now);
            }

            // Everything else does not apply: stale pids, late timers, repeated inputs.
            _ => {}
        }
    }

    /// Record the start; run the `start_pre` commands, or spawn the main process.
    fn spawn(&mut self, name: &str, now: Instant) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        rt.spawned_at = Some(now);
        rt.backoff.record_start(&rt.unit.restart, now);
        rt.health = HealthState::Unknown;
        rt.health_failures = 0;
        rt.spawn_failure = None;
        rt.killed = false;
        if !rt.unit.service.conditions.is_empty() {
            rt.phase = Phase::Checking;
            rt.detail = "checking its conditions".into();
            self.out.push(Action::CheckConditions {
                unit: name.into(),
                conditions: rt.unit.service.conditions.clone(),
            });
            return;
        }
        self.begin_run(name, now);
    }

    /// The conditions hold: run the `start_pre` commands, or spawn the main process.
    fn begin_run(&mut self, name: &str, now: Instant) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        if !rt.unit.service.start_pre.is_empty() {
            rt.phase = Phase::PreStart;
            self.run_control(name, crate::unit::ControlKind::StartPre, 0, now);
            return;
        }
        self.spawn_main(name, now);
    }

    /// Emit the Spawn of the main process.
    pub(crate) fn spawn_main(&mut self, name: &str, now: Instant) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        rt.phase = Phase::Spawning;
        rt.spawned_at = Some(now);
        rt.main_found = false;
        rt.notify_status.clear();
        rt.detail = "starting".into();
        self.out.push(Action::Spawn {
            unit: rt.unit.clone(),
        });
    }

    /// The main process `pid` runs: watch for its readiness, or it is up.
    fn after_spawn(&mut self, name: &str, pid: Pid, now: Instant) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        let Some(ready) = rt.unit.ready.clone() else {
            return self.main_up(name, pid, now);
        };
        rt.detail = "waiting for ready".into();
        let start = rt.spawned_at.unwrap_or(now);
        rt.phase = Phase::Running {
            pid,
            ready_by: Some(later(start, ready.timeout)),
        };
        rt.watching = true;
        self.out.push(Action::WatchReady {
            unit: name.into(),
            pid,
            probe: ready.probe,
        });
    }

    /// The main process is up (spawned, or ready): run the `start_post` commands, or go up.
    fn main_up(&mut self, name: &str, pid: Pid, now: Instant) {
        if !self.run_control(name, crate::unit::ControlKind::StartPost, 0, now) {
            self.go_up(name, pid);
        }
    }

    /// The unit is up: start its health checks.
    pub(crate) fn go_up(&mut self, name: &str, pid: Pid) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        rt.phase = Phase::Up { pid };
        rt.detail.clear();
        if let Some(health) = rt.unit.health.clone() {
            rt.watching = true;
            self.out.push(Action::WatchHealth {
                unit: name.into(),
                pid,
                health,
            });
        }
    }

    /// The stop sequence: the `stop` commands, then the stop signal, SIGCONT, SIGKILL at
    /// the stop timeout.
    pub(crate) fn begin_stop(&mut self, name: &str, why: StopWhy, now: Instant) {
        self.abandon_control(name, "stopped");
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        let Some(pid) = rt.phase.pid() else { return };
        rt.stop_queued = false;
        rt.phase = Phase::Stopping {
            pid,
            why,
            kill_at: None,
        };
        if !self.run_control(name, crate::unit::ControlKind::Stop, 0, now) {
            self.signal_stop(name, now);
        }
    }

    /// The stop signal and SIGCONT; SIGKILL follows at the stop timeout.
    pub(crate) fn signal_stop(&mut self, name: &str, now: Instant) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        let Phase::Stopping { pid, why, .. } = rt.phase.clone() else {
            return;
        };
        let stop = rt.unit.service.stop_signal.number;
        // A container's init forwards the signal to the service (and its group).
        let mode = match rt.unit.container {
            Some(_) => None,
            None => Some(rt.unit.service.kill_mode),
        };
        for signal in [stop, SIGCONT] {
            match mode {
                None => self.out.signal_group(pid, signal),
                Some(KillMode::ControlGroup) => self.out.push(Action::SignalAll { pid, signal }),
                Some(KillMode::Mixed | KillMode::Process) => self.out.signal_pid(pid, signal),
                Some(KillMode::None) => {}
            }
        }
        rt.detail = "stopping".into();
        let timeout = rt.unit.service.stop_timeout;
        let kill_at = (timeout != INFINITY).then(|| later(now, timeout));
        rt.phase = Phase::Stopping { pid, why, kill_at };
    }

    /// No process, no restart: take a pending configuration, start again if asked.
    pub(crate) fn become_inactive(&mut self, name: &str, now: Instant) {
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        rt.phase = Phase::Inactive;
        rt.stops = rt.stops.wrapping_add(1);
        rt.stop_queued = false;
        rt.spawn_failure = None;
        rt.killed = false;
        rt.health = HealthState::Unknown;
        rt.detail.clear();
        if let Some(unit) = rt.pending_config.take() {
            rt.unit = unit;
        }
        if std::mem::take(&mut rt.restart_pending) && !rt.remove_when_stopped {
            self.step(name, Input::Start, now);
        }
    }

    /// The main process is gone (or was never created): kill its leftovers and what runs
    /// beside it, then the `stop_post` commands if there are, then [`Supervisor::finish_run`].
    pub(crate) fn process_ended(&mut self, name: &str, end: End, now: Instant) {
        self.abandon_control(name, "the main process ended");
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        if let End::Exit(pid, _) = end {
            self.out.signal_group(pid, SIGKILL);
        }
        if rt.watching {
            self.out.push(Action::Unwatch { unit: name.into() });
            rt.watching = false;
        }
        let why = match &rt.phase {
            Phase::Stopping { why, .. } => Some(why.clone()),
            _ => None,
        };
        if !rt.unit.service.stop_post.is_empty() {
            rt.phase = Phase::PostStop { end, why };
            self.run_control(name, crate::unit::ControlKind::StopPost, 0, now);
            return;
        }
        self.finish_run(name, end, why, now);
    }

    /// The run is over: [`Supervisor::run_ended`], then what the end means for kennel
    /// itself: during the shutdown, whether the unit stopped cleanly; for the main unit
    /// (`Ending::main`), a run that will not be followed by another ends kennel with its
    /// exit code.
    pub(crate) fn finish_run(&mut self, name: &str, end: End, why: Option<StopWhy>, now: Instant) {
        let shutting_down = self.is_shutting_down();
        let Some(rt) = self.units.get(name) else {
            return;
        };
        let killed = rt.killed;
        let stop = rt.unit.service.stop_signal.number;
        let (clean, code) = match &end {
            End::Exit(_, status) => {
                let clean = !killed
                    && (rt.succeeded_with(*status)
                        || *status == ExitStatus::Signal(stop)
                        || *status == ExitStatus::Code(128 + stop));
                (clean, status.as_code())
            }
            End::NoProcess(_) => (false, 1),
        };
        self.run_ended(name, end, why, now);
        if shutting_down && !clean {
            if let Some(s) = self.shutdown.as_mut() {
                s.unclean.insert(name.to_string());
            }
        }
        if self.ending.main.as_deref() == Some(name) {
            let over = shutting_down
                || self.units.get(name).is_none_or(|rt| {
                    matches!(rt.phase, Phase::Exited | Phase::Failed | Phase::Inactive)
                });
            if over && self.main_exit.is_none() {
                self.main_exit = Some(code);
                if !shutting_down {
                    self.out.global_notice(
                        Level::Info,
                        format!("main unit {name} ended (exit code {code}): shutting down"),
                    );
                    self.begin_shutdown(now);
                }
            }
        }
    }

    /// The run is over (`why`: it was being stopped): stop, restart by policy, or settle
    /// as Exited / Failed.
    fn run_ended(&mut self, name: &str, end: End, why: Option<StopWhy>, now: Instant) {
        let shutting_down = self.is_shutting_down();
        let Some(rt) = self.units.get_mut(name) else {
            return;
        };
        let out = &mut self.out;
        let ran_for = rt.spawned_at.map(|t| now.saturating_duration_since(t));
        let (how, detail, phrase) = match (end, rt.spawn_failure.take(), why.clone()) {
            (End::NoProcess(reason), _, _) => {
                rt.last_exit = None;
                (How::Code, reason.clone(), reason)
            }
            (End::Exit(_, status), Some(reason), _) => {
                rt.last_exit = Some(status);
                let how = match status {
                    ExitStatus::Signal(s) => How::Signal(s),
                    ExitStatus::Code(_) => How::Code,
                };
                (how, reason.clone(), reason)
            }
            (End::Exit(_, status), None, Some(StopWhy::NotReady(d))) => {
                rt.last_exit = Some(status);
                (How::Timeout, d.clone(), d)
            }
            (End::Exit(_, status), None, Some(StopWhy::Unhealthy(d))) => {
                rt.last_exit = Some(status);
                (How::Unhealthy, d.clone(), d)
            }
            (End::Exit(_, status), None, Some(StopWhy::StartFailed(d))) => {
                rt.last_exit = Some(status);
                (How::Code, d.clone(), d)
            }
            (End::Exit(_, status), None, _) => {
                rt.last_exit = Some(status);
                let how = match status {
                    _ if rt.succeeded_with(status) => How::Success,
                    ExitStatus::Signal(s) => How::Signal(s),
                    ExitStatus::Code(_) => How::Code,
                };
                (how, exit_detail(status), exit_phrase(status))
            }
        };
        let success = how == How::Success;
        rt.health = HealthState::Unknown;
        rt.killed = false;

        if rt.stop_queued || why == Some(StopWhy::User) || shutting_down || rt.restart_pending {
            // A user stop (or a user start during another stop): no policy decision.
            let next = if rt.restart_pending && !shutting_down {
                "restarting"
            } else {
                "stopped"
            };
            out.notice(name, Level::Info, format!("{phrase}; {next}"));
            self.become_inactive(name, now);
            return;
        }
        if rt.is_oneshot() {
            rt.succeeded = success;
        }
        let restart = how.restarts(rt.unit.restart.policy);
        let level = if success { Level::Info } else { Level::Warn };
        if !restart {
            if success {
                rt.detail = if rt.is_oneshot() {
                    "done".into()
                } else {
                    detail
                };
                rt.phase = Phase::Exited;
                out.notice(name, Level::Info, format!("{phrase}; done"));
            } else {
                out.notice(name, Level::Error, format!("{phrase}; failed"));
                rt.detail = detail;
                rt.phase = Phase::Failed;
            }
            return;
        }
        match rt.backoff.next_delay(&rt.unit.restart, ran_for, now) {
            Ok(delay) => {
                rt.restarts = rt.restarts.saturating_add(1);
                rt.detail = detail;
                if delay.is_zero() {
                    out.notice(name, level, format!("{phrase}; restarting"));
                    rt.phase = Phase::Waiting;
                } else {
                    out.notice(
                        name,
                        level,
                        format!("{phrase}; restart in {}", duration(delay)),
                    );
                    rt.phase = Phase::Backoff {
                        until: later(now, delay),
                    };
                }
            }
            Err(hit) => {
                out.notice(name, Level::Error, format!("{phrase}; {}", hit.detail));
                rt.succeeded = false;
                rt.detail = hit.detail;
                rt.phase = Phase::Failed;
            }
        }
    }

    /// An exit reported before the spawn result: apply it now.
    fn claim_exit(&mut self, name: &str, pid: Pid, now: Instant) {
        if let Some(i) = self.unclaimed.iter().position(|(p, _)| *p == pid) {
            let (_, status) = self.unclaimed.remove(i);
            self.step(name, Input::Exited(pid, status), now);
        }
    }
}
