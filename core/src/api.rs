//! The core's vocabulary: the events the shell feeds in, the actions it takes out, and the
//! status it can read. The shell (the daemon) and the tests use only these types and the
//! methods of [`crate::Supervisor`].

use std::time::Duration;

use kennel_units::{Health, ReadyProbe, Unit, UnitSet};
use serde::{Deserialize, Serialize};

/// A process id as the kernel gives it.
pub type Pid = i32;

/// Identifies a client request so that its [`Action::Reply`] can find the waiting client.
pub type RequestId = u64;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl ExitStatus {
    /// The shell convention: the code, or 128 + the signal number.
    pub fn as_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// What happened, as the shell saw it. Every event is handled with the current time.
#[derive(Debug, Clone)]
pub enum Event {
    /// The shell started the process asked for by [`Action::Spawn`]. Fed back right after
    /// the action was carried out.
    Spawned { unit: String, pid: Pid },
    /// The spawn asked for by [`Action::Spawn`] failed. `pid` is the process that was
    /// created and will exit (it is then also reported by [`Event::Exited`], in either order),
    /// or `None` when no process was created at all (no `Exited` follows).
    /// `reason` is one line naming the step and the path, e.g. `exec /bin/nope: not found`.
    SpawnFailed {
        unit: String,
        pid: Option<Pid>,
        reason: String,
    },
    /// The reaper collected a process. Pids the core does not know are ignored.
    Exited { pid: Pid, status: ExitStatus },
    /// The kernel's OOM killer killed a process in the unit's cgroup while `pid` was its
    /// main process. Sent just before that pid's [`Event::Exited`]: the exit then counts as
    /// a failure with detail `oom-killed`, whatever its status.
    OomKilled { unit: String, pid: Pid },
    /// The readiness probe asked for by [`Action::WatchReady`] passed for this pid.
    Ready { unit: String, pid: Pid },
    /// One health check asked for by [`Action::WatchHealth`] finished.
    Health {
        unit: String,
        pid: Pid,
        ok: bool,
        detail: String,
    },
    /// A client command. Answered by exactly one [`Action::Reply`] with the same id.
    Command {
        id: RequestId,
        command: Command,
        wait: bool,
    },
    /// A `STATUS=` notification of the unit's main process `pid` (sd_notify): shown as
    /// the unit's detail while it has no other.
    Status {
        unit: String,
        pid: Pid,
        text: String,
    },
    /// The answer to [`Action::CheckConditions`]: the first condition or assertion that
    /// does not hold, if any.
    ConditionsChecked {
        unit: String,
        failed: Option<kennel_units::PathCondition>,
    },
    /// The answer to [`Action::FindMainPid`]: the daemon's pid, or why there is none.
    MainPid {
        unit: String,
        pid: Result<Pid, String>,
    },
    /// The shell started the command asked for by [`Action::RunControl`].
    ControlSpawned { unit: String, pid: Pid },
    /// The command asked for by [`Action::RunControl`] could not be started (no process):
    /// it counts as a failed command.
    ControlSpawnFailed { unit: String, reason: String },
    /// A signal asked for shutdown (SIGTERM, SIGINT). `force` is true for the second one:
    /// everything still running is killed at once.
    Shutdown { force: bool },
}

/// What a client (or `kennel up` itself) asks for.
#[derive(Debug, Clone)]
pub enum Command {
    /// Start every unit of the set (what `kennel up` does first).
    Up,
    /// Start these units (and what they require).
    Start(Vec<String>),
    /// Stop these units (and, first, the units that require them).
    Stop(Vec<String>),
    /// Stop then start these units.
    Restart(Vec<String>),
    /// Replace the unit set: start added units, stop removed ones, restart changed ones.
    Reload(UnitSet),
    /// Stop everything in reverse dependency order, then [`Action::Exit`].
    Shutdown,
    /// `kennel reload UNIT...`: run each unit's `reload` commands (or send its
    /// `reload_signal`); done once they finished.
    ReloadUnits(Vec<String>),
}

/// Why a command did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandError {
    /// No unit of that name in the current set.
    UnknownUnit { unit: String },
    /// The unit failed (for good) instead of coming up or stopping; `reason` says why.
    UnitFailed { unit: String, reason: String },
    /// The daemon is shutting down and takes no new work.
    ShuttingDown,
}

/// What the shell must do. Carry out every action in order before handling the next event.
// `Spawn` carries the whole unit; actions are short-lived and polled one at a time.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Action {
    /// Start a process for this unit (fresh session and process group whose id is the pid);
    /// answer with [`Event::Spawned`] or [`Event::SpawnFailed`].
    Spawn { unit: Unit },
    /// Run `argv` as a command around the unit's main one (`start_pre`, `stop`, ...): the
    /// unit's user, environment and working directory, `MAINPID` set to `main_pid` if there
    /// is one, in a new session, its output in the unit's log. Answer with
    /// [`Event::ControlSpawned`] or [`Event::ControlSpawnFailed`]; its exit comes as
    /// [`Event::Exited`].
    RunControl {
        unit: String,
        argv: Vec<String>,
        main_pid: Option<Pid>,
    },
    /// Check the unit's `condition_path_exists` and `assert_path_exists` now; answer with
    /// [`Event::ConditionsChecked`].
    CheckConditions {
        unit: String,
        conditions: Vec<kennel_units::PathCondition>,
    },
    /// A forking service's first process `parent` exited 0: find its daemon, from
    /// `pid_file` (waiting for the file, a live pid in it) or, without one, as the only
    /// process left in the unit's cgroup; answer with [`Event::MainPid`]. The daemon is
    /// the unit's main process from then on (its cgroup's, its exits).
    FindMainPid {
        unit: String,
        parent: Pid,
        pid_file: Option<std::path::PathBuf>,
    },
    /// Send `signal` to every process of the cgroup of the unit whose main process is
    /// `pid`, and to the process group `pid` (a unit without a cgroup: the group only).
    SignalAll { pid: Pid, signal: i32 },
    /// Send `signal` to `pid`, or to the process group `pid` when `group` is true.
    /// The target may already be gone (ESRCH is not an error).
    Signal { pid: Pid, signal: i32, group: bool },
    /// Run this readiness probe for `pid` until it passes (then [`Event::Ready`]); the core
    /// enforces the timeout itself. For [`ReadyProbe::Notify`] the shell listens on the
    /// unit's notify socket (it set `NOTIFY_SOCKET` at spawn because the unit has a notify probe).
    WatchReady {
        unit: String,
        pid: Pid,
        probe: ReadyProbe,
    },
    /// Run health checks for `pid` every `health.interval`, each reported as [`Event::Health`].
    WatchHealth {
        unit: String,
        pid: Pid,
        health: Health,
    },
    /// Stop every probe and health check of this unit.
    Unwatch { unit: String },
    /// Answer the client request `id`.
    Reply {
        id: RequestId,
        result: Result<(), CommandError>,
    },
    /// Something worth a line in kennel's log (restart scheduled, start limit hit, ...).
    Notice {
        unit: Option<String>,
        level: Level,
        message: String,
    },
    /// The shutdown is complete (no unit has a process left): exit with this code.
    Exit { code: i32 },
}

/// Severity of an [`Action::Notice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// A unit's lifecycle state, as shown by `kennel status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not running and not asked to run (never started, or stopped by the user).
    Inactive,
    /// Asked to run: waiting for its dependencies, or spawned and not yet ready.
    Starting,
    /// Running and ready.
    Up,
    /// Stop signal sent; waiting for the process to end.
    Stopping,
    /// The process ended: a finished oneshot, a success under `on-failure`, or waiting for
    /// its restart delay (see [`UnitStatus::detail`]).
    Exited,
    /// Given up: start limit hit, failure with policy `no`, or a required unit failed.
    Failed,
}

/// Health as last seen, for a unit with `[health]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Not checked yet in this run (or not up).
    Unknown,
    Healthy,
    /// Failing checks, fewer than `retries` in a row so far.
    Failing,
    Unhealthy,
}

/// One row of `kennel status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitStatus {
    pub name: String,
    pub state: State,
    /// The main process, while there is one.
    pub pid: Option<Pid>,
    /// Time since the current process was spawned (while it runs).
    pub uptime: Option<Duration>,
    /// Restarts done by policy since the last user start.
    pub restarts: u32,
    /// How the last process ended.
    pub last_exit: Option<ExitStatus>,
    /// Whether the unit counts as up for its dependents right now.
    pub ready: bool,
    /// `None` for a unit without `[health]` (`null` in `status --json`, `-` in the table).
    pub health: Option<HealthState>,
    /// Why it is in this state, in a few words: `waiting for db`, `restart in 400ms`,
    /// `start limit hit: 5 starts within 10s`, `required unit db failed`, `exec /x: not found`.
    pub detail: String,
}
