//! [`Supervisor`]: the engine's public face. Dispatches events to the lifecycle table and
//! then settles the consequences across units (dependency waits, stop order, waiters,
//! shutdown).

use std::time::{Duration, Instant};

use kennel_units::UnitSet;

use crate::api::{Action, Event, ExitStatus, Pid, UnitStatus};
use crate::commands::Waiter;
use crate::graph::{check_deps, stop_blocker, Deps, Units};
use crate::lifecycle::Input;
use crate::out::Out;
use crate::shutdown::Shutdown;
use crate::unit::{Phase, UnitRt};

/// At most this many exits of not-yet-claimed pids are kept while a spawn is in flight.
const MAX_UNCLAIMED: usize = 64;

/// The supervision engine: unit states, restarts, backoff, start limits, dependency order,
/// client commands and the shutdown plan, as a deterministic state machine.
///
/// It performs no I/O and never reads a clock: every input carries the current time, every
/// output is an [`Action`] for the shell to carry out.
///
/// # How the shell drives it
///
/// 1. Build it with [`Supervisor::new`] (every unit `Inactive`), then feed
///    `Event::Command { command: Command::Up, .. }` to start everything.
/// 2. For each thing that happens (a child reaped, a spawn result, a probe, a client
///    request, a signal), call [`Supervisor::handle`] with the event and `Instant::now()`.
/// 3. After **every** `handle` or `handle_timeout` call, call [`Supervisor::poll_action`]
///    until it returns `None`, carrying the actions out in order. A `Spawn` is answered by
///    feeding `Spawned`/`SpawnFailed` back through `handle` (then poll again).
/// 4. Then read [`Supervisor::poll_timeout`] and arm a single timer for it (it changes after
///    every call, so re-read it each time round the loop). When it fires, call
///    [`Supervisor::handle_timeout`] with the current time, then go to 3.
/// 5. Stop the loop after carrying out [`Action::Exit`] (emitted exactly once).
///
/// [`Supervisor::status`] and [`Supervisor::unit_status`] can be called at any time.
///
/// # Semantics worth knowing
///
/// - Every process end emits `Signal { pid, 9, group: true }` first (leftovers of the
///   group), then `Unwatch` if probes or health checks ran, then a `Notice`.
/// - An `Exited` for a pid no unit owns is ignored, except while a `Spawn` is unanswered:
///   then it is kept (up to 64) and applied when `Spawned`/`SpawnFailed` names that pid.
/// - A user stop always ends in `Inactive` (and clears `Failed`). A stop queued behind the
///   units ordered after it shows as `Stopping` with detail `waiting for web to stop`.
/// - A `Start` during a stop (or a `Restart`, or a reload of a running unit) starts the
///   unit again as soon as its process has ended, with fresh counters.
/// - `Up` starts every unit except oneshots that already finished successfully; `Start`
///   of a finished oneshot runs it again.
/// - `[ready]` and `[health]` are ignored for oneshots (they are up when they exit 0).
///   A oneshot that exited 0 keeps satisfying its dependents between runs under `always`.
/// - A waiting unit whose required unit is `Failed` fails (`required unit db failed`);
///   one whose required unit exited for good fails (`required unit db exited`); an
///   inactive required unit is started.
/// - Waiters: `Start`/`Up`/`Restart`/`Reload` complete once each target has been
///   satisfied at least once since the command; they fail with the unit's detail when a
///   target is `Failed`, exited for good, stopped (`stopped`) or removed (`removed`).
///   A `Stop` completes when each unit of the stop set has stopped (at least once).
/// - `Command::Shutdown` while shutting down only adds a waiter; a second
///   `Event::Shutdown` (forced or not) kills everything.
/// - After `Exit`, every event is ignored and every command answered `ShuttingDown`.
#[derive(Debug)]
pub struct Supervisor {
    /// The current unit set (after a reload: the new one, while removed units still stop).
    pub(crate) set: UnitSet,
    /// Runtime record per unit, by name. Removed units stay until they have stopped.
    pub(crate) units: Units,
    /// Actions not yet polled.
    pub(crate) out: Out,
    /// Clients waiting for a command to complete.
    pub(crate) waiters: Vec<Waiter>,
    /// Set once the shutdown started.
    pub(crate) shutdown: Option<Shutdown>,
    /// Exits reported for pids no unit claims yet, kept while a spawn is in flight (the
    /// reaper can see a child exit before its spawn result arrives).
    pub(crate) unclaimed: Vec<(Pid, ExitStatus)>,
    /// How kennel itself ends: the shutdown budget and the main unit.
    pub(crate) ending: Ending,
    /// The exit code of the main unit's last run, once it ended for good.
    pub(crate) main_exit: Option<i32>,
}

/// How kennel itself ends (`kennel up --stop-budget`, `--main`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ending {
    /// The whole shutdown's time: when it is spent, every unit still running gets SIGKILL
    /// (a container runtime kills everything at its own timeout; this comes first).
    pub budget: Option<Duration>,
    /// The main unit: when its run ends and no other follows (its restart policy, its
    /// start limit, a stop), kennel shuts down and exits with that run's exit code
    /// (128 + N for signal N), as `tini` does with its child.
    pub main: Option<String>,
}

impl Supervisor {
    /// A supervisor for `units`, every unit `Inactive`. Nothing starts until `Command::Up`
    /// or `Command::Start`.
    pub fn new(units: UnitSet) -> Self {
        let records = units
            .iter()
            .map(|u| (u.name.clone(), UnitRt::new(u.clone())))
            .collect();
        Supervisor {
            set: units,
            units: records,
            out: Out::default(),
            waiters: Vec::new(),
            shutdown: None,
            unclaimed: Vec::new(),
            ending: Ending::default(),
            main_exit: None,
        }
    }

    /// The same supervisor, ending as `ending` says.
    #[must_use]
    pub fn with_ending(mut self, ending: Ending) -> Self {
        self.ending = ending;
        self
    }

    /// Feed one event that happened at `now`.
    pub fn handle(&mut self, event: Event, now: Instant) {
        if self.has_exited() {
            if let Event::Command { id, .. } = event {
                self.reply(id, Err(crate::api::CommandError::ShuttingDown));
            }
            return;
        }
        match event {
            Event::Spawned { unit, pid } => self.step(&unit, Input::Spawned(pid), now),
            Event::OomKilled { unit, pid } => self.step(&unit, Input::OomKilled(pid), now),
            Event::SpawnFailed { unit, pid, reason } => {
                self.step(&unit, Input::SpawnFailed(pid, reason), now);
            }
            Event::Exited { pid, status } => self.exited(pid, status, now),
            Event::MainPid { unit, pid } => self.step(&unit, Input::MainPid(pid), now),
            Event::Status { unit, pid, text } => {
                if let Some(rt) = self.units.get_mut(&unit) {
                    if rt.phase.pid() == Some(pid) {
                        rt.notify_status = text;
                    }
                }
            }
            Event::ConditionsChecked { unit, failed } => {
                self.step(&unit, Input::Checked(failed), now);
            }
            Event::ControlSpawned { unit, pid } => {
                self.step(&unit, Input::ControlSpawned(pid), now);
            }
            Event::ControlSpawnFailed { unit, reason } => {
                self.step(&unit, Input::ControlEnded(Err(reason)), now);
            }
            Event::Ready { unit, pid } => self.step(&unit, Input::Ready(pid), now),
            Event::Health {
                unit,
                pid,
                ok,
                detail,
            } => {
                self.step(&unit, Input::Health { pid, ok, detail }, now);
            }
            Event::Command { id, command, wait } => self.command(id, command, wait, now),
            Event::Shutdown { force } => self.shutdown_signal(force, now),
        }
        self.settle(now);
    }

    /// The next action for the shell, in order; `None` when there is nothing (left) to do.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.out.pop()
    }

    /// The earliest instant at which [`Supervisor::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.has_exited() {
            return None;
        }
        let budget = self
            .shutdown
            .as_ref()
            .filter(|s| !s.forced)
            .and_then(|s| s.deadline);
        self.units
            .values()
            .filter_map(UnitRt::deadline)
            .chain(budget)
            .min()
    }

    /// Fire every deadline that is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.has_exited() {
            return;
        }
        let due: Vec<String> = self
            .units
            .values()
            .filter(|u| u.deadline().is_some_and(|t| t <= now))
            .map(|u| u.name().to_string())
            .collect();
        for name in due {
            self.step(&name, Input::Timer, now);
        }
        self.budget_timeout(now);
        self.settle(now);
    }

    /// Every unit's status, in name order (removed units that still stop included).
    pub fn status(&self, now: Instant) -> Vec<UnitStatus> {
        self.statuses(now).collect()
    }

    /// Every unit's status, made one at a time (a caller that encodes each and drops it
    /// holds one row at a time, not the whole list).
    pub fn statuses(&self, now: Instant) -> impl ExactSizeIterator<Item = UnitStatus> + '_ {
        self.units.values().map(move |u| self.status_of(u, now))
    }

    /// One unit's status.
    pub fn unit_status(&self, name: &str, now: Instant) -> Option<UnitStatus> {
        self.units.get(name).map(|u| self.status_of(u, now))
    }

    /// The current unit set (the new one as soon as a reload was handled).
    pub fn units(&self) -> &UnitSet {
        &self.set
    }

    /// Whether the shutdown has started (no more starts, new commands refused).
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    fn exited(&mut self, pid: Pid, status: ExitStatus, now: Instant) {
        let owner = self
            .units
            .values()
            .find(|u| u.phase.pid() == Some(pid))
            .map(|u| u.name().to_string());
        let control = || {
            self.units
                .values()
                .find(|u| u.control.as_ref().is_some_and(|c| c.pid == Some(pid)))
                .map(|u| u.name().to_string())
        };
        if let Some(name) = owner.is_none().then(control).flatten() {
            return self.step(&name, Input::ControlEnded(Ok(status)), now);
        }
        match owner {
            Some(name) => self.step(&name, Input::Exited(pid, status), now),
            None if self.spawn_in_flight() => {
                if self.unclaimed.len() >= MAX_UNCLAIMED {
                    self.unclaimed.remove(0);
                }
                self.unclaimed.push((pid, status));
            }
            None => {}
        }
    }

    /// A main or control process was asked for and its pid is not known yet.
    fn spawn_in_flight(&self) -> bool {
        self.units.values().any(|u| {
            matches!(u.phase, Phase::Spawning | Phase::FindingMain { .. })
                || u.control.as_ref().is_some_and(|c| c.pid.is_none())
        })
    }

    /// Apply the consequences of the last input across units until nothing changes:
    /// waiting units spawn or fail, queued stops are signalled in order, removed units are
    /// forgotten; then answer waiters and finish the shutdown.
    pub(crate) fn settle(&mut self, now: Instant) {
        loop {
            let mut changed = false;
            let forced = self.shutdown.as_ref().is_some_and(|s| s.forced);
            let names: Vec<String> = self.units.keys().cloned().collect();
            for name in names {
                let Some(rt) = self.units.get(&name) else {
                    continue;
                };
                let only_control = (matches!(rt.phase, Phase::PreStart | Phase::PostStop { .. })
                    && rt.control.is_some())
                    || matches!(rt.phase, Phase::FindingMain { .. });
                if forced && ((rt.phase.pid().is_some() && !rt.killed) || only_control) {
                    self.step(&name, Input::Kill, now);
                    changed = true;
                } else if rt.phase == Phase::Waiting {
                    match check_deps(&self.units, rt) {
                        Deps::Met => {
                            self.step(&name, Input::DepsMet, now);
                            changed = true;
                        }
                        Deps::Failed(detail) => {
                            self.step(&name, Input::DepFailed(detail), now);
                            changed = true;
                        }
                        Deps::PullIn(dep) if !self.is_shutting_down() => {
                            self.step(&dep, Input::Start, now);
                            changed = true;
                        }
                        Deps::PullIn(_) | Deps::WaitFor(_) => {}
                    }
                } else if rt.stop_queued && rt.phase.pid().is_some() {
                    if stop_blocker(&self.units, &name).is_none() {
                        self.step(&name, Input::SignalNow, now);
                        changed = true;
                    }
                } else if rt.remove_when_stopped && !rt.phase.has_process() {
                    self.units.remove(&name);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        if !self.spawn_in_flight() {
            self.unclaimed.clear();
        }
        self.check_main(now);
        self.check_waiters();
        self.check_shutdown();
    }

    fn status_of(&self, rt: &UnitRt, now: Instant) -> UnitStatus {
        let pid = rt.phase.pid();
        let detail = match &rt.phase {
            Phase::Waiting => match check_deps(&self.units, rt) {
                Deps::WaitFor(d) | Deps::PullIn(d) => format!("waiting for {d}"),
                Deps::Failed(d) => d,
                Deps::Met => "starting".into(),
            },
            Phase::Backoff { until } => {
                format!(
                    "restart in {}",
                    crate::fmt::duration(until.saturating_duration_since(now))
                )
            }
            _ if rt.stop_queued && rt.phase.has_process() => {
                match stop_blocker(&self.units, rt.name()) {
                    Some(b) => format!("waiting for {b} to stop"),
                    None => "stopping".into(),
                }
            }
            _ if rt.detail.is_empty() && rt.phase.pid().is_some() => rt.notify_status.clone(),
            _ => rt.detail.clone(),
        };
        UnitStatus {
            name: rt.name().to_string(),
            state: rt.state(),
            pid,
            uptime: pid
                .and(rt.spawned_at)
                .map(|t| now.saturating_duration_since(t)),
            restarts: rt.restarts,
            last_exit: rt.last_exit,
            ready: rt.satisfied(),
            health: rt.unit.health.as_ref().map(|_| rt.health),
            detail,
        }
    }
}
