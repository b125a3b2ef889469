//! The state-owning task: feeds every input to the core, carries out the core's actions,
//! and answers the control socket. Nothing else touches supervision state.

mod requests;
mod spawning;

use std::collections::{BTreeSet, HashMap};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
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
use super::runs::{ContainerRuns, Handed};
use super::trash::Trash;
use super::{container, exec, signals, Input, Options};
use crate::control::protocol::{
    ErrorKind, ExecRequest, NetStatus, PowerAction, ProtoError, Reply, ReplyBody, RequestBody,
    StatusEncoder, StatusRow,
};
use crate::control::server::{self, Answer, ControlRequest, ExecSession};
use crate::reaper;
use crate::spawn::{self, env::DEFAULT_PATH, SpawnSpec};

/// Why the daemon could not start (once running it never fails, it only shuts down).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("create the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("invalid units in {dir}:\n{problems}")]
    InvalidUnits { dir: PathBuf, problems: String },
    #[error("--main {main}: no unit {main} in {}", dir.display())]
    NoMainUnit { main: String, dir: PathBuf },
    #[error("install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Socket(#[from] server::ServerError),
    #[error(transparent)]
    Logs(#[from] kennel_logs::LogError),
}

impl DaemonError {
    /// What to do about it, where the error alone does not say.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            DaemonError::Logs(kennel_logs::LogError::CreateDir { source, .. })
                if source.raw_os_error() == Some(libc::EROFS) =>
            {
                Some(
                    "the root file system is read-only (podman or docker --read-only, Kubernetes' \
                     readOnlyRootFilesystem): give --log-dir on a writable mount, e.g. \
                     --log-dir /run/kennel/log (podman mounts a tmpfs on /run) or an emptyDir volume; \
                     the units' output also goes to kennel's stdout",
                )
            }
            _ => None,
        }
    }
}

/// The request id of the initial `Up`; its reply means "all units up".
const UP_ID: RequestId = 0;

/// What a pending client request waits for.
struct Pending {
    reply: oneshot::Sender<Answer>,
    /// What to answer once done instead of a bare `Done`: a reload's plan, the units a
    /// start or stop found already up or stopped.
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
    /// Container runs: held mount namespaces and overlays, teardowns, the init's exit
    /// notes, security settings, exec sessions.
    runs: ContainerRuns,
    /// The notify socket of each unit's current start.
    notify: HashMap<String, Arc<NotifySocket>>,
    /// Every unit's cgroup.
    cgroups: UnitCgroups,
    /// The units' `[[socket]]`s, held across their runs.
    sockets: super::sockets::HeldSockets,
    /// Container networks: leases, namespaces and veths of the units on a bridge network.
    net: super::network::Networking,
    /// Empties containers' trash on the runtime's blocking pool.
    trash: Trash,
    /// What to do once stopped, as a machine's init.
    power: Option<PowerAction>,
    /// Client requests waiting for the core's `Reply`.
    pending: HashMap<RequestId, Pending>,
    next_id: RequestId,
    exit: Option<i32>,
    /// When this daemon started: `all units up in 1.23s` counts from here.
    started: Instant,
    /// Units whose runtime directories were made, until they stopped and those went.
    runtime_dirs: BTreeSet<String>,
}

pub async fn run(opts: Options) -> Result<super::Outcome, DaemonError> {
    let started = Instant::now();
    let (units, networks) = opts.load().map_err(|d| DaemonError::InvalidUnits {
        dir: opts.units.clone(),
        problems: render(&d),
    })?;
    if let Some(main) = &opts.ending.main {
        if units.get(main).is_none() {
            return Err(DaemonError::NoMainUnit {
                main: main.clone(),
                dir: opts.units.clone(),
            });
        }
    }
    debug!(units = units.len(), "units read");
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Handlers first: no child may exit unseen.
    let signal_task = signals::install(tx.clone()).map_err(DaemonError::Signals)?;
    tokio::spawn(signal_task);
    if nix::unistd::getpid().as_raw() != 1 {
        if let Err(e) = reaper::become_subreaper() {
            warn!("cannot become a child subreaper ({e}); orphans will go to the host's init");
        }
    }
    debug!("signal handlers installed");
    let cgroups = UnitCgroups::setup(opts.cgroup_parent.as_deref(), units.names());
    debug!("cgroups ready");
    // Helpers are forked from here on (spawn/zygote.rs); its exit, too, is the reaper's.
    // After the cgroup setup: on v2 that moves kennel into a leaf, and the zygote must be
    // born there too (no process may stay in the parent whose controllers it enables).
    if let Err(e) = spawn::launch::zygote::start() {
        warn!("cannot start the spawn zygote ({e}); every helper is exec'd");
    }
    debug!("zygote started");
    // Sweeps every container's trash, units removed since included, on the blocking pool.
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

    let ending = opts.ending.clone();
    let opts_state_dir = opts.state_dir.clone();
    let opts_cni_conf_dir = opts.cni_conf_dir.clone();
    let opts_cni_path = opts.cni_path.clone();
    let mut owner = Owner {
        opts,
        sup: Supervisor::new(units).with_ending(ending),
        logs,
        tx,
        watchers: HashMap::new(),
        probe_pids: HashMap::new(),
        notify: HashMap::new(),
        launching: HashMap::new(),
        runs: ContainerRuns::default(),
        cgroups,
        sockets: Default::default(),
        net: super::network::Networking::new(
            &opts_state_dir,
            networks,
            super::cni::CniNets::new(&opts_state_dir, opts_cni_conf_dir, opts_cni_path),
        ),
        trash,
        pending: HashMap::new(),
        power: None,
        next_id: UP_ID + 1,
        exit: None,
        started,
        runtime_dirs: BTreeSet::new(),
    };
    owner.reap();
    // Nothing runs yet: every namespace and veth of a unit is a crash's leftover.
    owner.net.remove_leftovers();
    owner.sup.handle(
        Event::Command {
            id: UP_ID,
            command: Command::Up,
            wait: true,
        },
        Instant::now(),
    );
    owner.drain();
    owner.watch_sockets();

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
        owner.watch_sockets();
        if !owner.runtime_dirs.is_empty() {
            owner.remove_runtime_dirs();
        }
        if owner.cgroups.has_doomed() || owner.runs.has_released() {
            // Let the connection tasks write the replies this turn produced first.
            tokio::task::yield_now().await;
            owner.cgroups.remove_doomed();
            owner.runs.tear_down_released();
        }
    }

    // Let connection tasks write the last replies (the shutdown's), then finish.
    server_task.abort();
    drop(ctl_rx);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), alive_rx.recv()).await;
    let _ = std::fs::remove_file(&owner.opts.socket);
    owner.cgroups.remove_all();
    owner.sockets.clear();
    // Held mount namespaces go now, here: as a machine's init, the state file system is
    // unmounted next, which their overlays would keep busy.
    owner.runs.clear();
    // The ended runs' veths and namespaces still being removed.
    owner.net.finish_teardowns();
    spawn::launch::zygote::stop();
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

/// `signal` to `pid`, or to its process group; whether `pid` is still alive.
fn send_signal(pid: Pid, signal: i32, group: bool) -> bool {
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) with integers; ESRCH (already gone) is expected and fine.
    unsafe {
        if libc::kill(target, signal) != 0 && group && reaper::is_unreaped_child(pid) {
            // Its helper has not reached setsid yet, so it has no process group
            // of its own: without this a stop right after a start would be lost.
            libc::kill(pid, signal);
        }
        libc::kill(pid, 0) == 0
    }
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
            Action::RunControl {
                unit,
                argv,
                main_pid,
            } => self.run_control(unit, argv, main_pid),
            Action::Signal { pid, signal, group } => {
                let alive = send_signal(pid, signal, group);
                if signal == libc::SIGKILL && group {
                    self.cgroups.kill(pid, alive);
                }
            }
            Action::SignalAll { pid, signal } => {
                // Each process of the cgroup once (what left the group, by setsid or a
                // double fork, included); without a cgroup, the group.
                let pids = self.cgroups.pids_with_main(pid);
                if !pids.contains(&pid) {
                    // No cgroup, or a helper not in it yet.
                    send_signal(pid, signal, true);
                }
                for p in pids {
                    // SAFETY: kill(2) with integers; ESRCH (already gone) is fine.
                    unsafe {
                        libc::kill(p, signal);
                    }
                }
            }
            Action::WatchReady { unit, pid, probe } => self.watch_ready(unit, pid, probe),
            Action::CheckConditions { unit, conditions } => {
                // Conditions first, then assertions, as systemd checks them.
                let failed = conditions
                    .iter()
                    .filter(|c| !c.assert)
                    .chain(conditions.iter().filter(|c| c.assert))
                    .find(|c| c.path.exists() == c.negate)
                    .cloned();
                self.sup
                    .handle(Event::ConditionsChecked { unit, failed }, Instant::now());
            }
            Action::FindMainPid { unit, pid_file, .. } => self.find_main_pid(unit, pid_file),
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
                hold_mount_ns,
                exit_note,
            } => {
                let held = self.launching.remove(&pid).flatten();
                self.runs.launched(
                    &unit,
                    pid,
                    failure.is_none(),
                    Handed {
                        overlay,
                        hold_mount_ns,
                        exit_note,
                    },
                );
                // The helper is past its rootfs: the layers it moved aside can go now.
                if self
                    .sup
                    .units()
                    .get(&unit)
                    .is_some_and(|u| u.container.is_some())
                {
                    self.trash.empty(&unit);
                }
                if failure.is_some() {
                    // The start failed: what was set up for it goes now (the lease stays).
                    self.net.detach(&unit);
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
            Input::SocketActivity { unit } => {
                self.sockets.unwatch(&unit);
                if self.socket_idle(&unit) {
                    let message = "activity on its socket: starting it".to_string();
                    self.notice(Some(unit.clone()), Level::Info, message);
                    let id = self.next_id;
                    self.next_id += 1;
                    self.sup.handle(
                        Event::Command {
                            id,
                            command: Command::Start(vec![unit]),
                            wait: false,
                        },
                        now,
                    );
                }
            }
            Input::MainPid { unit, pid } => self.main_pid(unit, pid, now),
            Input::NotifyStatus { unit, pid, text } => {
                self.sup.handle(Event::Status { unit, pid, text }, now);
            }
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
                let plan = kennel_core::start::plan(
                    kennel_core::start::Start::Probe,
                    Default::default(),
                    self.host(),
                );
                let result = spawn::launch_quiet(&spec, &plan.launch).map(|launched| {
                    let (tx, exit) = oneshot::channel();
                    self.probe_pids
                        .insert(launched.pid, (spec.unit.clone(), tx));
                    ProbeProcess {
                        pid: launched.pid,
                        exit,
                    }
                });
                let _ = reply.send(result);
            }
        }
    }

    /// Held sockets follow the unit set (a reload), and a socket-activated unit's are
    /// watched exactly while it is idle (no process, no restart to come, not failed).
    fn watch_sockets(&mut self) {
        let units = self.sup.units();
        self.sockets
            .retain(|name, config| units.get(name).is_some_and(|u| u.sockets == config));
        if self.sup.is_shutting_down() {
            self.sockets.unwatch_all();
            return;
        }
        let activated: Vec<Unit> = units
            .iter()
            .filter(|u| u.service.activate == kennel_units::Activate::Socket)
            .cloned()
            .collect();
        for u in activated {
            let idle = self.socket_idle(&u.name);
            let watched = self.sockets.watched(&u.name);
            if idle && !watched {
                if let Err(e) = self.sockets.watch(&u, &self.tx) {
                    let message = format!("cannot hold its sockets: {e}");
                    self.notice(Some(u.name.clone()), Level::Error, message);
                }
            } else if !idle && watched {
                self.sockets.unwatch(&u.name);
            }
        }
    }

    /// Whether `unit` has no process, no restart to come, and has not failed: a
    /// connection on its socket then starts it.
    fn socket_idle(&self, unit: &str) -> bool {
        let stop = Command::Stop(vec![unit.to_string()]);
        !self.sup.already(&stop).is_empty()
            && self
                .sup
                .unit_status(unit, Instant::now())
                .is_some_and(|s| s.state != kennel_core::State::Failed)
    }

    fn reap(&mut self) {
        let now = Instant::now();
        for (pid, status) in reaper::reap_all() {
            self.runs.session_ended(pid);
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
        let status = self.runs.exited(pid, status);
        self.net.exited(pid);
        if let Some((unit, true)) = self.cgroups.exited(pid) {
            self.sup.handle(Event::OomKilled { unit, pid }, now);
        }
        self.sup.handle(Event::Exited { pid, status }, now);
        self.sweep_overlays();
    }

    /// The overlays of units that no longer exist go with the mounts of ended runs. A
    /// reload removes a stopped unit at once and a running one once it has ended: called
    /// after a command and after an exit, the moments a unit can go.
    pub(super) fn sweep_overlays(&mut self) {
        let units = self.sup.units();
        self.runs.sweep(|u| units.get(u).is_some());
        self.net.sweep(|u| units.get(u).is_some());
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
                    let state = format!("{:?}", s.state).to_lowercase();
                    let pid = s.pid.map_or("-".into(), |p| p.to_string());
                    let sep = if s.detail.is_empty() { "" } else { "; " };
                    info!(
                        unit = %s.name,
                        "{state}, pid {pid}, {} restarts{sep}{}",
                        s.restarts,
                        s.detail
                    );
                }
            }
            other => debug!("{} ignored", kennel_units::signal_name(other)),
        }
    }
}
