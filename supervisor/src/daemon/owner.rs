//! The state-owning task: feeds every input to the core, carries out the core's actions,
//! and answers the control socket. Nothing else touches supervision state.

mod requests;
mod spawning;

use std::collections::{BTreeSet, HashMap};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kennel_core::{Action, Command, Event, ExitStatus, Level, Pid, RequestId, Supervisor};
use kennel_logs::LogHub;
use kennel_units::{ReadyProbe, Unit, UnitSet};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::{debug, error, info, warn};

use super::cgroup::UnitCgroups;
use super::notify::{self, NotifySocket};
use super::probes::{self, ProbeProcess};
use super::trash::Trash;
use super::{container, exec, signals, Input, Options};
use crate::control::protocol::{
    ErrorKind, ExecRequest, PowerAction, ProtoError, Reply, ReplyBody, RequestBody, StatusEncoder,
    StatusRow,
};
use crate::control::server::{self, Answer, ControlRequest, ExecSession};
use crate::reaper;
use crate::spawn::{self, env::DEFAULT_PATH, spec::SecuritySpec, SpawnSpec};

/// Why the daemon could not start (once running it never fails, it only shuts down).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("create the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("invalid units in {dir}:\n{problems}")]
    InvalidUnits { dir: PathBuf, problems: String },
    #[error("install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Socket(#[from] server::ServerError),
    #[error(transparent)]
    Logs(#[from] kennel_logs::LogError),
}

/// The request id of the initial `Up`; its reply means "all units up".
const UP_ID: RequestId = 0;

/// What a pending client request waits for.
struct Pending {
    reply: oneshot::Sender<Answer>,
    /// For a reload: the plan to report once done.
    plan: Option<ReplyBody>,
}

struct Owner {
    opts: Options,
    sup: Supervisor,
    logs: LogHub,
    /// Handed to tasks that report back (probes, spawn watchers, signals).
    tx: mpsc::UnboundedSender<Input>,
    /// Probe and health tasks per unit, aborted on `Unwatch`.
    watchers: HashMap<String, Vec<AbortHandle>>,
    /// Probe processes: pid -> (unit, where its exit goes).
    probe_pids: HashMap<Pid, (String, oneshot::Sender<ExitStatus>)>,
    /// Units' helpers whose outcome (exec reached, or a failure) is not known yet, with
    /// their exit if it came first.
    launching: HashMap<Pid, Option<ExitStatus>>,
    /// The mount namespace of each container unit's current run, by the run's pid, held
    /// open from its exec until its end: see [`Owner::hold_mounts`].
    mounts: HashMap<Pid, (String, OwnedFd)>,
    /// Mount namespaces of runs that ended, and overlays no start will use, to let go once
    /// the turn's replies are out.
    released: Vec<(String, OwnedFd)>,
    /// Per container unit, the overlay its last run handed back (a detached clone of its
    /// `/`), with the key of what it is made of: the next start mounts it instead of a new
    /// one when it can (spawning.rs, `pass_overlay`).
    overlays: HashMap<String, (String, OwnedFd)>,
    /// Per unit, how many mount namespaces of its ended runs are still being torn down.
    teardowns: HashMap<String, Arc<AtomicUsize>>,
    /// Per run (its pid), the note its container's init leaves of how the service ended:
    /// read at the run's exit (`spawn::init::noted`).
    exit_notes: HashMap<Pid, OwnedFd>,
    /// `kennel exec` sessions: helper pid -> unit (their exits go through `probe_pids`).
    sessions: HashMap<Pid, String>,
    /// The notify socket of each unit's current start.
    notify: HashMap<String, Arc<NotifySocket>>,
    /// Every unit's cgroup.
    cgroups: UnitCgroups,
    /// Empties containers' trash on a thread of its own.
    trash: Trash,
    /// What to do once stopped, as a machine's init.
    power: Option<PowerAction>,
    /// The security settings each container unit's current process started with (exec
    /// and probes join under the same).
    security: HashMap<String, SecuritySpec>,
    /// Client requests waiting for the core's `Reply`.
    pending: HashMap<RequestId, Pending>,
    next_id: RequestId,
    exit: Option<i32>,
}

pub async fn run(opts: Options) -> Result<super::Outcome, DaemonError> {
    let units = kennel_units::load_paths(std::slice::from_ref(&opts.units)).map_err(|d| {
        DaemonError::InvalidUnits {
            dir: opts.units.clone(),
            problems: render(&d),
        }
    })?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Handlers first: no child may exit unseen.
    let signal_task = signals::install(tx.clone()).map_err(DaemonError::Signals)?;
    tokio::spawn(signal_task);
    if nix::unistd::getpid().as_raw() != 1 {
        if let Err(e) = reaper::become_subreaper() {
            warn!("cannot become a child subreaper ({e}); orphans will go to the host's init");
        }
    }
    let cgroups = UnitCgroups::setup(opts.cgroup_parent.as_deref(), units.names());
    // Helpers are forked from here on (spawn/zygote.rs); its exit, too, is the reaper's.
    // After the cgroup setup: on v2 that moves kennel into a leaf, and the zygote must be
    // born there too (no process may stay in the parent whose controllers it enables).
    if let Err(e) = spawn::zygote::start() {
        warn!("cannot start the spawn zygote ({e}); every helper is exec'd");
    }
    // Sweeps every container's trash, units removed since included, then waits for more.
    let trash = Trash::start(&opts.state_dir);
    let listener = server::bind(&opts.socket, opts.socket_group)?;
    let logs = LogHub::start(&opts.log_dir, opts.echo)?;
    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ControlRequest>(64);
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let server_task = tokio::spawn(server::serve(listener, ctl_tx, alive_tx, opts.socket_group));
    info!(
        units = units.len(),
        dir = %opts.units.display(),
        socket = %opts.socket.display(),
        "kennel up (pid {})",
        std::process::id()
    );

    let mut owner = Owner {
        opts,
        sup: Supervisor::new(units),
        logs,
        tx,
        watchers: HashMap::new(),
        probe_pids: HashMap::new(),
        notify: HashMap::new(),
        sessions: HashMap::new(),
        exit_notes: HashMap::new(),
        launching: HashMap::new(),
        mounts: HashMap::new(),
        overlays: HashMap::new(),
        released: Vec::new(),
        teardowns: HashMap::new(),
        cgroups,
        trash,
        pending: HashMap::new(),
        security: HashMap::new(),
        power: None,
        next_id: UP_ID + 1,
        exit: None,
    };
    owner.reap();
    owner.sup.handle(
        Event::Command {
            id: UP_ID,
            command: Command::Up,
            wait: true,
        },
        Instant::now(),
    );
    owner.drain();

    while owner.exit.is_none() {
        let deadline = owner.sup.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(input) = rx.recv() => owner.input(input),
            Some(req) = ctl_rx.recv() => owner.control(req),
            () = sleep => owner.sup.handle_timeout(Instant::now()),
        }
        owner.drain();
        if owner.cgroups.has_doomed() || !owner.released.is_empty() {
            // Let the connection tasks write the replies this turn produced first.
            tokio::task::yield_now().await;
            owner.cgroups.remove_doomed();
            owner.tear_down_released();
        }
    }

    // Let connection tasks write the last replies (the shutdown's), then finish.
    server_task.abort();
    drop(ctl_rx);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), alive_rx.recv()).await;
    let _ = std::fs::remove_file(&owner.opts.socket);
    owner.cgroups.remove_all();
    // Held mount namespaces go now, here: as a machine's init, the state file system is
    // unmounted next, which their overlays would keep busy.
    owner.mounts.clear();
    owner.overlays.clear();
    owner.released.clear();
    spawn::zygote::stop();
    let code = owner.exit.unwrap_or(0);
    // A machine's init ends everything itself on its way to power-off (boot::power).
    if nix::unistd::getpid().as_raw() == 1 && !owner.opts.boot {
        end_everything_else().await;
    }
    owner
        .logs
        .close_within(std::time::Duration::from_secs(2))
        .await;
    if owner.opts.boot {
        info!("all units stopped");
    } else {
        info!("kennel exits with code {code}");
    }
    Ok(super::Outcome {
        code,
        power: owner.power,
    })
}

/// As PID 1 of a pid namespace: TERM what is left, give it a moment, KILL the rest.
async fn end_everything_else() {
    // SAFETY: kill(-1) from PID 1 signals every other process of the namespace.
    unsafe {
        libc::kill(-1, libc::SIGTERM);
    }
    for _ in 0..20 {
        reaper::reap_all();
        // SAFETY: as above; signal 0 only checks whether anything is left.
        if unsafe { libc::kill(-1, 0) } != 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-1, libc::SIGKILL);
    }
    reaper::reap_all();
}

fn render(diags: &[kennel_units::Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Owner {
    /// Carry out every action the core has queued (handling an action may queue more).
    fn drain(&mut self) {
        while let Some(action) = self.sup.poll_action() {
            self.act(action);
        }
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Spawn { unit } => self.spawn(unit),
            Action::Signal { pid, signal, group } => {
                let target = if group { -pid } else { pid };
                // SAFETY: kill(2) with integers; ESRCH (already gone) is expected and fine.
                let alive = unsafe {
                    if libc::kill(target, signal) != 0 && group && reaper::is_unreaped_child(pid) {
                        // Its helper has not reached setsid yet, so it has no process group
                        // of its own: without this a stop right after a start would be lost.
                        libc::kill(pid, signal);
                    }
                    libc::kill(pid, 0) == 0
                };
                if signal == libc::SIGKILL && group {
                    self.cgroups.kill(pid, alive);
                }
            }
            Action::WatchReady { unit, pid, probe } => self.watch_ready(unit, pid, probe),
            Action::WatchHealth { unit, pid, health } => {
                let spec = match self.unit_spec(&unit, health.command.clone(), pid) {
                    Ok(spec) => spec,
                    Err(e) => {
                        warn!(unit = %unit, "cannot run health checks: {e}");
                        return;
                    }
                };
                let task = tokio::spawn(probes::health(
                    self.tx.clone(),
                    unit.clone(),
                    pid,
                    health,
                    spec,
                ));
                self.watchers
                    .entry(unit)
                    .or_default()
                    .push(task.abort_handle());
            }
            Action::Unwatch { unit } => self.unwatch(&unit),
            Action::Reply { id, result } => self.reply(id, result),
            Action::Notice {
                unit,
                level,
                message,
            } => self.notice(unit, level, message),
            Action::Exit { code } => self.exit = Some(code),
        }
    }

    fn notice(&mut self, unit: Option<String>, level: Level, message: String) {
        let name = unit.as_deref().unwrap_or("kennel");
        match level {
            Level::Info => info!(unit = name, "{message}"),
            Level::Warn => warn!(unit = name, "{message}"),
            Level::Error => error!(unit = name, "{message}"),
        }
        if let Some(u) = unit.as_deref().and_then(|u| self.sup.units().get(u)) {
            self.logs.system(&u.name, &u.logs, &message);
        }
    }

    fn input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Signal(sig) => self.signal(sig),
            Input::Launched {
                unit,
                pid,
                failure,
                overlay,
                exit_note,
            } => {
                let held = self.launching.remove(&pid).flatten();
                if let (None, Some(note)) = (&failure, exit_note) {
                    self.exit_notes.insert(pid, note);
                }
                if let Some((key, fd)) = overlay {
                    // For the next start; one it replaces, or that came with a failure,
                    // goes like an ended run's mounts.
                    let replaced = match failure {
                        None => self.overlays.insert(unit.clone(), (key, fd)),
                        Some(_) => Some((key, fd)),
                    };
                    if let Some((_, old)) = replaced {
                        self.released.push((unit.clone(), old));
                    }
                }
                // The helper is past its rootfs: the layers it moved aside can go now.
                if self
                    .sup
                    .units()
                    .get(&unit)
                    .is_some_and(|u| u.container.is_some())
                {
                    self.trash.empty(&unit);
                    if failure.is_none() {
                        self.hold_mounts(&unit, pid);
                    }
                }
                let event = match failure {
                    None => Event::Spawned { unit, pid },
                    Some(f) => Event::SpawnFailed {
                        unit,
                        pid: Some(pid),
                        reason: f.to_string(),
                    },
                };
                self.sup.handle(event, now);
                if let Some(status) = held {
                    self.exited(pid, status, now);
                }
            }
            Input::Ready { unit, pid } => self.sup.handle(Event::Ready { unit, pid }, now),
            Input::Health {
                unit,
                pid,
                ok,
                detail,
            } => self.sup.handle(
                Event::Health {
                    unit,
                    pid,
                    ok,
                    detail,
                },
                now,
            ),
            Input::RunProbe { spec, reply } => {
                let result = spawn::launch_quiet(&spec)
                    .map(|launched| {
                        let (tx, exit) = oneshot::channel();
                        self.probe_pids
                            .insert(launched.pid, (spec.unit.clone(), tx));
                        ProbeProcess {
                            pid: launched.pid,
                            exit,
                        }
                    })
                    .map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
        }
    }

    fn reap(&mut self) {
        let now = Instant::now();
        for (pid, status) in reaper::reap_all() {
            self.sessions.remove(&pid);
            match self.probe_pids.remove(&pid) {
                Some((_, tx)) => {
                    let _ = tx.send(status);
                }
                // Until the helper's outcome is known, its exit waits: a spawn failure
                // must reach the core before the exit it explains.
                None => match self.launching.get_mut(&pid) {
                    Some(held) => *held = Some(status),
                    None => self.exited(pid, status, now),
                },
            }
        }
    }

    fn exited(&mut self, pid: Pid, status: ExitStatus, now: Instant) {
        let status = match self.exit_notes.remove(&pid) {
            Some(note) => spawn::init::noted(status, &note),
            None => status,
        };
        if let Some(held) = self.mounts.remove(&pid) {
            self.released.push(held);
        }
        if let Some((unit, true)) = self.cgroups.exited(pid) {
            self.sup.handle(Event::OomKilled { unit, pid }, now);
        }
        self.sup.handle(Event::Exited { pid, status }, now);
        self.sweep_overlays();
    }

    /// Holds the mount namespace of container unit `unit`'s run `pid` (its helper, past
    /// exec). When a container's last process exits, the kernel unmounts its whole tree
    /// (overlay, /proc, /sys, /dev, volumes) and waits for an RCU grace period, in that
    /// process's exit, before its parent hears of it: ~1.5 ms between the service's end and
    /// the reply to `kennel start` of a oneshot. Held here, the namespace outlives the
    /// processes; it is let go once the turn's replies are written (`released`), or before
    /// the unit's next start at the latest ([`Owner::release_mounts`]), so the writable
    /// layer is free again by then (unless the overlay itself is kept for the next start:
    /// [`Owner::overlays`]). Best effort: a helper already gone leaves nothing to hold.
    fn hold_mounts(&mut self, unit: &str, pid: Pid) {
        if let Ok(f) = std::fs::File::open(format!("/proc/{pid}/ns/mnt")) {
            self.mounts
                .insert(pid, (unit.to_string(), OwnedFd::from(f)));
        }
    }

    /// The overlays of units that no longer exist go with the mounts of ended runs. A
    /// reload removes a stopped unit at once and a running one once it has ended: called
    /// after a command and after an exit, the moments a unit can go.
    pub(super) fn sweep_overlays(&mut self) {
        let gone: Vec<String> = self
            .overlays
            .keys()
            .filter(|u| self.sup.units().get(u.as_str()).is_none())
            .cloned()
            .collect();
        for unit in gone {
            if let Some((_, fd)) = self.overlays.remove(&unit) {
                self.released.push((unit, fd));
            }
        }
    }

    /// Lets go of the mount namespaces of ended runs and of overlays no start will use,
    /// on the blocking pool (the kernel unmounts the tree in the closing thread).
    fn tear_down_released(&mut self) {
        for (unit, ns) in self.released.drain(..) {
            let running = self.teardowns.entry(unit).or_default().clone();
            running.fetch_add(1, Ordering::Relaxed);
            tokio::task::spawn_blocking(move || {
                drop(ns);
                running.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }

    /// Before a new start of `unit`: lets go of its earlier runs' mount namespaces still
    /// held. Whether one is still being torn down (its overlay may still hold the writable
    /// layer: the new run must then make a new one rather than keep it, unless it mounts
    /// the kept overlay itself; never waited for here, a hung unmount must not hold the
    /// daemon) is [`Owner::teardown_pending`].
    pub(super) fn release_mounts(&mut self, unit: &str) {
        self.mounts.retain(|_, (u, _)| u != unit);
        self.released.retain(|(u, _)| u != unit);
    }

    /// Whether a mount namespace of an earlier run of `unit` is still being torn down.
    pub(super) fn teardown_pending(&self, unit: &str) -> bool {
        self.teardowns
            .get(unit)
            .is_some_and(|n| n.load(Ordering::Relaxed) > 0)
    }

    fn signal(&mut self, sig: i32) {
        let now = Instant::now();
        if self.opts.boot {
            if let Some(action) = crate::boot::emergency::power_signal(sig) {
                self.power_down(action, kennel_units::signal_name(sig));
                return;
            }
        }
        match sig {
            libc::SIGCHLD => self.reap(),
            libc::SIGTERM | libc::SIGINT | libc::SIGQUIT | libc::SIGPWR => {
                let force = self.sup.is_shutting_down();
                if force {
                    warn!(
                        "{} during shutdown: killing what remains",
                        kennel_units::signal_name(sig)
                    );
                } else {
                    info!("{}: shutting down", kennel_units::signal_name(sig));
                }
                self.sup.handle(Event::Shutdown { force }, now);
            }
            libc::SIGHUP => {
                info!("SIGHUP: reloading units from {}", self.opts.units.display());
                let (reply, _) = oneshot::channel();
                self.control(ControlRequest {
                    body: RequestBody::Reload { wait: false },
                    reply,
                });
            }
            libc::SIGUSR1 => {
                for s in self.sup.status(now) {
                    info!(unit = %s.name, state = ?s.state, pid = ?s.pid, restarts = s.restarts, "{}", s.detail);
                }
            }
            other => debug!("{} ignored", kennel_units::signal_name(other)),
        }
    }
}
