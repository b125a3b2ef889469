//! The runtime record of one unit: its lifecycle phase, process, counters and flags.

use std::time::Instant;

use kennel_units::{ServiceType, Unit};

use crate::api::{ExitStatus, HealthState, Pid, State};
use crate::backoff::Backoff;

/// Why a unit's process is being stopped; decides what its exit means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StopWhy {
    /// The user, a reload or the shutdown: the exit ends in `Inactive`, never a restart.
    User,
    /// The readiness probe did not pass in time: the exit is a failure with this detail.
    NotReady(String),
    /// Too many failed health checks: the exit is a failure with this detail.
    Unhealthy(String),
    /// A `start_post` command failed: the exit is a failure with this detail.
    StartFailed(String),
}

/// Which list of commands around the main one a control process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ControlKind {
    StartPre,
    StartPost,
    Reload,
    Stop,
    StopPost,
}

impl ControlKind {
    /// The key of the list, as in unit files.
    pub(crate) fn key(self) -> &'static str {
        match self {
            ControlKind::StartPre => "start_pre",
            ControlKind::StartPost => "start_post",
            ControlKind::Reload => "reload",
            ControlKind::Stop => "stop",
            ControlKind::StopPost => "stop_post",
        }
    }
}

/// A command around the main one, running (or being spawned) for a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Control {
    pub(crate) kind: ControlKind,
    /// Which command of the list.
    pub(crate) index: usize,
    /// `None` until the shell reports the spawn.
    pub(crate) pid: Option<Pid>,
    /// When it is killed as timed out (`None`: no limit, or already killed).
    pub(crate) deadline: Option<Instant>,
    /// Killed at its deadline: its end is a failure `timed out`.
    pub(crate) timed_out: bool,
}

/// How a unit's main process came to its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    Exit(Pid, ExitStatus),
    /// No process: `SpawnFailed` without a pid, or a failed `start_pre`.
    NoProcess(String),
}

/// Where a unit is in its lifecycle. Finer than the public [`State`] (see [`Phase::state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not running, not asked to run.
    Inactive,
    /// Asked to run, waiting for its dependencies (no process).
    Waiting,
    /// `Action::Spawn` emitted; waiting for `Spawned` or `SpawnFailed`.
    Spawning,
    /// A process exists but the unit is not up: readiness pending, a oneshot running, or a
    /// process whose spawn failed and that is about to exit.
    Running { pid: Pid, ready_by: Option<Instant> },
    /// Running and ready.
    Up { pid: Pid },
    /// Stop sequence sent; `kill_at` is when SIGKILL follows (None once sent).
    Stopping {
        pid: Pid,
        why: StopWhy,
        kill_at: Option<Instant>,
    },
    /// The shell checks the unit's conditions ([`crate::Action::CheckConditions`]).
    Checking,
    /// `start_pre` commands run (see [`UnitRt::control`]); no main process yet.
    PreStart,
    /// A forking service's first process (`parent`) exited 0: the shell looks for the
    /// daemon ([`crate::Action::FindMainPid`]) until `until`.
    FindingMain { parent: Pid, until: Option<Instant> },
    /// The main process ended (`end`, stopped for `why`); `stop_post` commands run.
    PostStop { end: End, why: Option<StopWhy> },
    /// Exited, waiting for the restart delay.
    Backoff { until: Instant },
    /// Exited for good (success): a finished oneshot, or a success under `on-failure`/`no`.
    Exited,
    /// Given up (see [`UnitRt::detail`]).
    Failed,
}

impl Phase {
    /// The public state for this phase.
    pub(crate) fn state(&self) -> State {
        match self {
            Phase::Inactive => State::Inactive,
            Phase::Waiting
            | Phase::Checking
            | Phase::PreStart
            | Phase::FindingMain { .. }
            | Phase::Spawning
            | Phase::Running { .. } => State::Starting,
            Phase::PostStop { .. } => State::Stopping,
            Phase::Up { .. } => State::Up,
            Phase::Stopping { .. } => State::Stopping,
            Phase::Backoff { .. } | Phase::Exited => State::Exited,
            Phase::Failed => State::Failed,
        }
    }

    /// The live main process, if any.
    pub(crate) fn pid(&self) -> Option<Pid> {
        match self {
            Phase::Running { pid, .. } | Phase::Up { pid } | Phase::Stopping { pid, .. } => {
                Some(*pid)
            }
            _ => None,
        }
    }

    /// A process exists or is being created (a main process, or the commands before or
    /// after it).
    pub(crate) fn has_process(&self) -> bool {
        matches!(
            self,
            Phase::Spawning | Phase::PreStart | Phase::FindingMain { .. } | Phase::PostStop { .. }
        ) || self.pid().is_some()
    }

    /// The deadline this phase wants to be woken at.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Phase::Running { ready_by, .. } => *ready_by,
            Phase::Stopping { kill_at, .. } => *kill_at,
            Phase::Backoff { until } => Some(*until),
            Phase::FindingMain { until, .. } => *until,
            _ => None,
        }
    }
}

/// One unit as the supervisor tracks it.
#[derive(Debug)]
pub(crate) struct UnitRt {
    /// The configuration the current (or next) process runs with.
    pub(crate) unit: Unit,
    pub(crate) phase: Phase,
    /// When the current or last process was spawned.
    pub(crate) spawned_at: Option<Instant>,
    pub(crate) last_exit: Option<ExitStatus>,
    /// Why it is Failed / Exited, or what a running process is doing.
    pub(crate) detail: String,
    pub(crate) health: HealthState,
    /// Consecutive failed health checks.
    pub(crate) health_failures: u32,
    /// Restarts done by policy since the last user start.
    pub(crate) restarts: u32,
    pub(crate) backoff: Backoff,
    /// A oneshot whose last run succeeded (it satisfies its dependents).
    pub(crate) succeeded: bool,
    /// `SpawnFailed` with a pid came: its exit is a failure with this detail.
    pub(crate) spawn_failure: Option<String>,
    /// Probes or health checks are running (an `Unwatch` is due when the process ends).
    pub(crate) watching: bool,
    /// A stop was asked for while the process runs; the stop sequence waits for the units
    /// ordered after this one to stop first.
    pub(crate) stop_queued: bool,
    /// Start again (as a user start) once stopped: restart, reload, start during a stop.
    pub(crate) restart_pending: bool,
    /// Reload changed the unit while it ran: use this configuration from the next start.
    pub(crate) pending_config: Option<Unit>,
    /// Reload removed the unit: forget it once it has no process.
    pub(crate) remove_when_stopped: bool,
    /// SIGKILL already sent to the current process (forced shutdown, stop timeout).
    pub(crate) killed: bool,
    /// The command around the main one that runs now, if any.
    pub(crate) control: Option<Control>,
    /// The last `STATUS=` of the current process (sd_notify).
    pub(crate) notify_status: String,
    /// A forking service's daemon was found: exits are the daemon's from now on.
    pub(crate) main_found: bool,
    /// `kennel reload UNIT` runs completed, and how the last one ended.
    pub(crate) reloads: u64,
    pub(crate) last_reload: Result<(), String>,
    /// How many times a stop brought it to `Inactive`: a stop waiter is done once this
    /// moved, even if a later start already runs the unit again.
    pub(crate) stops: u64,
}

impl UnitRt {
    /// Whether a run that ended with `status` succeeded: one of its success exit codes.
    pub(crate) fn succeeded_with(&self, status: ExitStatus) -> bool {
        matches!(status, ExitStatus::Code(c) if self.unit.service.success_exit_codes.contains(&c))
    }

    pub(crate) fn new(unit: Unit) -> Self {
        UnitRt {
            unit,
            phase: Phase::Inactive,
            spawned_at: None,
            last_exit: None,
            detail: String::new(),
            health: HealthState::Unknown,
            health_failures: 0,
            restarts: 0,
            backoff: Backoff::default(),
            succeeded: false,
            spawn_failure: None,
            watching: false,
            stop_queued: false,
            restart_pending: false,
            pending_config: None,
            remove_when_stopped: false,
            killed: false,
            control: None,
            notify_status: String::new(),
            main_found: false,
            reloads: 0,
            last_reload: Ok(()),
            stops: 0,
        }
    }

    /// The deadline this unit wants to be woken at: its phase's or its control process's.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let control = self.control.as_ref().and_then(|c| c.deadline);
        match (self.phase.deadline(), control) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.unit.name
    }

    pub(crate) fn is_oneshot(&self) -> bool {
        self.unit.service.kind == ServiceType::Oneshot
    }

    /// Counts as up for its dependents: Up, or a oneshot whose last run succeeded.
    pub(crate) fn satisfied(&self) -> bool {
        if self.stop_queued {
            return false;
        }
        match self.phase {
            Phase::Up { .. } => true,
            Phase::Exited => self.succeeded,
            Phase::Waiting
            | Phase::Checking
            | Phase::PreStart
            | Phase::FindingMain { .. }
            | Phase::Spawning
            | Phase::Running { .. }
            | Phase::Backoff { .. } => self.is_oneshot() && self.succeeded,
            Phase::Inactive | Phase::Stopping { .. } | Phase::PostStop { .. } | Phase::Failed => {
                false
            }
        }
    }

    /// No process and no stop in progress.
    pub(crate) fn is_stopped(&self) -> bool {
        !self.phase.has_process() && !self.stop_queued
    }

    /// A oneshot with `remain_after_exit` whose last run succeeded: it stays up.
    pub(crate) fn remains(&self) -> bool {
        self.phase == Phase::Exited && self.succeeded && self.unit.service.remain_after_exit
    }

    /// The public state, counting a queued stop as `Stopping`.
    pub(crate) fn state(&self) -> State {
        if self.stop_queued && self.phase.has_process() {
            State::Stopping
        } else if self.remains() {
            State::Up
        } else {
            self.phase.state()
        }
    }
}
