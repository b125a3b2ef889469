//! The state-owning task: feeds every input to the core, carries out the core's actions,
//! and answers the control socket. Nothing else touches supervision state.

use std::collections::{BTreeSet, HashMap};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use kennel_core::{Action, Command, Event, ExitStatus, Level, Pid, RequestId, Supervisor};
use kennel_logs::LogHub;
use kennel_units::{ReadyProbe, Unit, UnitSet};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::{debug, error, info, warn};

use super::cgroup::UnitCgroups;
use super::notify::{self, NotifySocket};
use super::probes::{self, ProbeProcess};
use super::{container, exec, signals, Input, Options};
use crate::control::protocol::{
    ErrorKind, ExecRequest, PowerAction, ProtoError, Reply, ReplyBody, RequestBody, StatusRow,
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
    /// `kennel exec` sessions: helper pid -> unit (their exits go through `probe_pids`).
    sessions: HashMap<Pid, String>,
    /// The notify socket of each unit's current start.
    notify: HashMap<String, Arc<NotifySocket>>,
    /// Every unit's cgroup.
    cgroups: UnitCgroups,
    /// What to do once stopped, as a machine's init.
    power: Option<PowerAction>,
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
        launching: HashMap::new(),
        cgroups,
        pending: HashMap::new(),
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
    }

    // Let connection tasks write the last replies (the shutdown's), then finish.
    server_task.abort();
    drop(ctl_rx);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), alive_rx.recv()).await;
    let _ = std::fs::remove_file(&owner.opts.socket);
    owner.cgroups.remove_all();
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
                let Some(spec) = self.unit_spec(&unit, health.command.clone(), pid) else {
                    return;
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

    fn spawn(&mut self, unit: Unit) {
        let now = Instant::now();
        let name = unit.name.clone();
        let spec = match self.prepare_spawn(&unit) {
            Ok(spec) => spec,
            Err(reason) => {
                self.sup.handle(
                    Event::SpawnFailed {
                        unit: name,
                        pid: None,
                        reason,
                    },
                    now,
                );
                return;
            }
        };
        let pipes = match (pipe(), pipe()) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(err), _) | (_, Err(err)) => {
                let reason = format!("create output pipes: {err}");
                self.sup.handle(
                    Event::SpawnFailed {
                        unit: name,
                        pid: None,
                        reason,
                    },
                    now,
                );
                return;
            }
        };
        let ((out_r, out_w), (err_r, err_w)) = pipes;
        match spawn::launch(&spec, None, Stdio::from(out_w), Stdio::from(err_w)) {
            Ok(launched) => {
                let pid = launched.pid;
                let _capture = self.logs.attach(&name, &unit.logs, out_r, err_r);
                let tx = self.tx.clone();
                let unit_name = name.clone();
                self.launching.insert(pid, None);
                tokio::spawn(async move {
                    let failure = launched.outcome().await.err();
                    let _ = tx.send(Input::Launched {
                        unit: unit_name,
                        pid,
                        failure,
                    });
                });
                // The core hears `Spawned` once the helper reached exec (Input::Launched):
                // a command that cannot be started is then a failed start, not a unit
                // that was up for a millisecond, and a stop signal finds the process
                // group the helper creates with setsid.
                debug!(unit = %name, pid, "helper started");
                self.cgroups.spawned(&name, pid);
            }
            Err(e) => {
                self.sup.handle(
                    Event::SpawnFailed {
                        unit: name,
                        pid: None,
                        reason: e.to_string(),
                    },
                    now,
                );
            }
        }
    }

    /// Everything the helper needs to start `unit`: notify socket, container, cgroup.
    fn prepare_spawn(&mut self, unit: &Unit) -> Result<SpawnSpec, String> {
        let name = &unit.name;
        self.notify.remove(name);
        let mut notify_path = None;
        if matches!(
            unit.ready,
            Some(kennel_units::Ready {
                probe: ReadyProbe::Notify,
                ..
            })
        ) {
            let dir = self.notify_dir();
            let sock = NotifySocket::bind(&dir, name, resolve_uid(unit.service.user.as_deref()))
                .map_err(|e| format!("bind notify socket {}: {e}", dir.join(name).display()))?;
            notify_path = Some(sock.path.clone());
            self.notify.insert(name.clone(), Arc::new(sock));
        }
        let mut spec = self.base_spec(unit, unit.service.command.clone());
        match &unit.container {
            Some(c) => {
                let net_pid = match &c.network {
                    kennel_units::Network::Unit(other) => self
                        .sup
                        .unit_status(other, Instant::now())
                        .and_then(|s| s.pid),
                    _ => None,
                };
                spec.container = Some(container::spec(
                    name,
                    c,
                    &self.opts.state_dir,
                    net_pid,
                    notify_path.as_deref(),
                )?);
                spec.base_env = container::base_env(name, c, notify_path.is_some());
                container::apply_image(&mut spec, name, c, &self.opts.state_dir)?;
                spec.security = Some(container::security(c)?);
            }
            None => {
                if let Some(p) = &notify_path {
                    spec.base_env
                        .push(("NOTIFY_SOCKET".into(), p.display().to_string()));
                }
            }
        }
        spec.cgroup_procs = self.cgroups.join_files(unit)?;
        Ok(spec)
    }

    /// The spec for running `argv` as part of `unit` (the service itself, or a probe).
    fn base_spec(&self, unit: &Unit, argv: Vec<String>) -> SpawnSpec {
        let mut base_env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| k != "NOTIFY_SOCKET" && k != "KENNEL_SOCKET")
            .collect();
        if !base_env.iter().any(|(k, _)| k == "PATH") {
            base_env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        base_env.push(("KENNEL_UNIT".into(), unit.name.clone()));
        SpawnSpec {
            unit: unit.name.clone(),
            argv,
            base_env,
            environment_file: unit.service.environment_file.clone(),
            env: unit
                .service
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            working_dir: unit.service.working_dir.clone(),
            user: unit.service.user.clone(),
            new_session: true,
            cgroup_procs: Vec::new(),
            container: None,
            join: None,
            stdin_passed: false,
            tty: false,
            security: None,
        }
    }

    /// The spec for running `argv` inside running unit `unit` (main pid `pid`): a probe or
    /// an exec. It joins the unit's cgroup and, for a container, its namespaces.
    fn unit_spec(&self, unit: &str, argv: Vec<String>, pid: Pid) -> Option<SpawnSpec> {
        let u = self.sup.units().get(unit)?;
        let mut spec = self.base_spec(u, argv);
        spec.cgroup_procs = self.cgroups.procs_of(unit);
        if let Some(c) = &u.container {
            spec.base_env = container::base_env(unit, c, false);
            // Best effort: probes and execs run even if the record is gone.
            let _ = container::apply_image(&mut spec, unit, c, &self.opts.state_dir);
            spec.join = Some(exec::join_spec(pid, c));
            spec.security = container::security(c).ok();
        }
        Some(spec)
    }

    fn notify_dir(&self) -> PathBuf {
        match self.opts.socket.parent() {
            Some(dir) => dir.join("notify"),
            None => self.opts.state_dir.join("notify"),
        }
    }

    fn watch_ready(&mut self, unit: String, pid: Pid, probe: ReadyProbe) {
        let tx = self.tx.clone();
        let task = match probe {
            ReadyProbe::Notify => {
                let Some(sock) = self.notify.get(&unit).cloned() else {
                    warn!(unit = %unit, "notify readiness asked but the unit has no notify socket");
                    return;
                };
                tokio::spawn(probes::ready_notify(tx, unit.clone(), pid, sock))
            }
            ReadyProbe::Tcp(addr) => tokio::spawn(probes::ready_tcp(tx, unit.clone(), pid, addr)),
            ReadyProbe::Command(argv) => {
                let Some(spec) = self.unit_spec(&unit, argv, pid) else {
                    return;
                };
                tokio::spawn(probes::ready_command(tx, unit.clone(), pid, spec))
            }
        };
        self.watchers
            .entry(unit)
            .or_default()
            .push(task.abort_handle());
    }

    fn unwatch(&mut self, unit: &str) {
        for task in self.watchers.remove(unit).unwrap_or_default() {
            task.abort();
        }
        for (pid, (owner, _)) in &self.probe_pids {
            if owner == unit {
                // SAFETY: kill(2) on the probe's own process group.
                unsafe {
                    libc::kill(-*pid, libc::SIGKILL);
                }
            }
        }
    }

    fn input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Signal(sig) => self.signal(sig),
            Input::Launched { unit, pid, failure } => {
                let held = self.launching.remove(&pid).flatten();
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
                let result = spawn::launch(&spec, None, Stdio::null(), Stdio::null())
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
        if let Some((unit, true)) = self.cgroups.exited(pid) {
            self.sup.handle(Event::OomKilled { unit, pid }, now);
        }
        self.sup.handle(Event::Exited { pid, status }, now)
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

    /// As a machine's init: stop everything in order, then `action` (a second request
    /// while stopping kills what remains).
    fn power_down(&mut self, action: PowerAction, why: String) {
        let force = self.sup.is_shutting_down();
        info!(
            "{why}: {action:?}: stopping every unit{}",
            if force { " at once" } else { "" }
        );
        self.power = Some(action);
        self.sup.handle(Event::Shutdown { force }, Instant::now());
    }

    fn control(&mut self, req: ControlRequest) {
        let now = Instant::now();
        let (command, wait, plan) = match req.body {
            RequestBody::Status { unit } => {
                let reply = match unit {
                    None => {
                        let units = self
                            .sup
                            .status(now)
                            .into_iter()
                            .map(|s| self.row(s))
                            .collect();
                        Reply::Ok(ReplyBody::Status { units })
                    }
                    Some(name) => match self.sup.unit_status(&name, now) {
                        Some(s) => Reply::Ok(ReplyBody::Status {
                            units: vec![self.row(s)],
                        }),
                        None => Reply::Error(unknown(&name)),
                    },
                };
                let _ = req.reply.send(reply.into());
                return;
            }
            RequestBody::LogPath { unit } => {
                let path = kennel_logs::log_path(&self.opts.log_dir, &unit);
                let reply = if self.sup.units().get(&unit).is_some() || path.exists() {
                    Reply::Ok(ReplyBody::LogPath {
                        path: path.display().to_string(),
                    })
                } else {
                    Reply::Error(unknown(&unit))
                };
                let _ = req.reply.send(reply.into());
                return;
            }
            RequestBody::Power { action } => {
                if !self.opts.boot {
                    let msg = "power requests are for kennel as a machine's init (kennel boot); \
                               use `kennel shutdown` to stop this kennel";
                    let _ = req
                        .reply
                        .send(Reply::Error(ProtoError::new(ErrorKind::BadRequest, msg)).into());
                    return;
                }
                self.power = Some(action);
                (Command::Shutdown, true, None)
            }
            RequestBody::Freeze {
                unit,
                thaw_after_ms,
            } => {
                let reply = self.freeze(&unit, Some(thaw_after_ms.unwrap_or(60_000)));
                let _ = req.reply.send(reply.into());
                return;
            }
            RequestBody::Thaw { unit } => {
                let reply = self.freeze(&unit, None);
                let _ = req.reply.send(reply.into());
                return;
            }
            RequestBody::Exec(x) => {
                self.exec(x, req.reply);
                return;
            }
            RequestBody::Start { units, wait } => (Command::Start(units), wait, None),
            RequestBody::Stop { units, wait } => (Command::Stop(units), wait, None),
            RequestBody::Restart { units, wait } => (Command::Restart(units), wait, None),
            RequestBody::Shutdown => (Command::Shutdown, true, None),
            RequestBody::Reload { wait } => {
                match kennel_units::load_paths(std::slice::from_ref(&self.opts.units)) {
                    Ok(set) => {
                        let plan = reload_plan(self.sup.units(), &set);
                        (Command::Reload(set), wait, Some(plan))
                    }
                    Err(diags) => {
                        let msg = format!(
                            "units in {} are invalid; nothing was changed:\n{}",
                            self.opts.units.display(),
                            render(&diags)
                        );
                        warn!("reload refused: {msg}");
                        let _ = req.reply.send(
                            Reply::Error(ProtoError::new(ErrorKind::InvalidUnits, msg)).into(),
                        );
                        return;
                    }
                }
            }
        };
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            id,
            Pending {
                reply: req.reply,
                plan,
            },
        );
        self.sup.handle(Event::Command { id, command, wait }, now);
    }

    fn row(&self, status: kennel_core::UnitStatus) -> StatusRow {
        let resources = if status.pid.is_some() {
            self.cgroups.stats(&status.name)
        } else {
            None
        };
        let mut execs: Vec<Pid> = self
            .sessions
            .iter()
            .filter(|(_, u)| **u == status.name)
            .map(|(p, _)| *p)
            .collect();
        execs.sort_unstable();
        StatusRow {
            status,
            resources,
            execs,
        }
    }

    /// `freeze` (`Some(delay of the automatic thaw)`) or `thaw` (`None`) the cgroup of a
    /// running unit, for `kennel commit`.
    fn freeze(&self, unit: &str, thaw_after: Option<u64>) -> Reply {
        if self.sup.units().get(unit).is_none() {
            return Reply::Error(unknown(unit));
        }
        if self
            .sup
            .unit_status(unit, Instant::now())
            .and_then(|s| s.pid)
            .is_none()
        {
            let msg = format!("unit {unit} is not running");
            return Reply::Error(ProtoError::new(ErrorKind::NotRunning, msg));
        }
        match container::freeze(self.opts.cgroup_parent.as_deref(), unit, thaw_after) {
            Ok(()) => Reply::Ok(ReplyBody::Done),
            Err(e) => Reply::Error(ProtoError::new(ErrorKind::UnitFailed, e)),
        }
    }

    /// `kennel exec`: start the command through the one spawn path, inside the unit, and
    /// hand its stdio to the client.
    fn exec(&mut self, x: ExecRequest, reply: oneshot::Sender<Answer>) {
        let fail = |kind, msg: String| Answer::Reply(Reply::Error(ProtoError::new(kind, msg)));
        let now = Instant::now();
        if self.sup.units().get(&x.unit).is_none() {
            let _ = reply.send(Reply::Error(unknown(&x.unit)).into());
            return;
        }
        let Some(pid) = self.sup.unit_status(&x.unit, now).and_then(|s| s.pid) else {
            let _ = reply.send(fail(
                ErrorKind::NotRunning,
                format!("unit {} is not running", x.unit),
            ));
            return;
        };
        let Some(mut spec) = self.unit_spec(&x.unit, x.argv.clone(), pid) else {
            return;
        };
        if let Some(u) = &x.user {
            spec.user = Some(u.clone());
        }
        spec.env.extend(x.env.iter().cloned());
        if let Some(w) = &x.workdir {
            spec.working_dir = Some(PathBuf::from(w));
        }
        let stdio = match exec::Stdio::new(&x) {
            Ok(s) => s,
            Err(e) => {
                let _ = reply.send(fail(
                    ErrorKind::NotRunning,
                    format!("exec in {}: {e}", x.unit),
                ));
                return;
            }
        };
        spec.tty = x.tty;
        spec.stdin_passed = stdio.stdin.is_some();
        let launched = match spawn::launch(&spec, stdio.stdin, stdio.stdout, stdio.stderr) {
            Ok(l) => l,
            Err(e) => {
                let body = ReplyBody::ExecExited {
                    code: 125,
                    error: Some(e.to_string()),
                };
                let _ = reply.send(Reply::Ok(body).into());
                return;
            }
        };
        let epid = launched.pid;
        let (exit_tx, exit_rx) = oneshot::channel();
        self.probe_pids.insert(epid, (x.unit.clone(), exit_tx));
        self.sessions.insert(epid, x.unit.clone());
        info!(unit = %x.unit, pid = epid, "exec {:?}", x.argv);
        let (done_tx, done_rx) = oneshot::channel();
        tokio::spawn(async move {
            let failure = launched.outcome().await.err();
            let status = exit_rx.await;
            let body = match failure {
                Some(f) => ReplyBody::ExecExited {
                    code: f.exit_code,
                    error: Some(f.to_string()),
                },
                None => ReplyBody::ExecExited {
                    code: status.map_or(125, ExitStatus::as_code),
                    error: None,
                },
            };
            let _ = done_tx.send(body);
        });
        let session = ExecSession {
            pid: epid,
            fds: stdio.client,
            done: done_rx,
        };
        let _ = reply.send(Answer::Exec(session));
    }

    fn reply(&mut self, id: RequestId, result: Result<(), kennel_core::CommandError>) {
        if id == UP_ID {
            match &result {
                Ok(()) => {
                    info!("all units up (uptime {})", uptime());
                    notify::notify_parent_ready();
                    if self.opts.test_panic && cfg!(feature = "test-panic") {
                        panic!("kennel.test_panic=1: a panic on purpose, to test emergency mode");
                    }
                }
                Err(e) => warn!("not all units came up: {}", ProtoError::from(e.clone())),
            }
            return;
        }
        let Some(p) = self.pending.remove(&id) else {
            return;
        };
        let reply = match result {
            Ok(()) => Reply::Ok(p.plan.unwrap_or(ReplyBody::Done)),
            Err(e) => Reply::Error(e.into()),
        };
        let _ = p.reply.send(reply.into());
    }
}

/// The machine's uptime as `/proc/uptime` has it (`12.34s`).
fn uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(|u| format!("{u}s")))
        .unwrap_or_else(|| "?".into())
}

fn unknown(name: &str) -> ProtoError {
    ProtoError::new(ErrorKind::UnknownUnit, format!("unknown unit {name:?}"))
}

fn reload_plan(old: &UnitSet, new: &UnitSet) -> ReplyBody {
    let old_names: BTreeSet<&str> = old.names().collect();
    let new_names: BTreeSet<&str> = new.names().collect();
    let added = new_names
        .difference(&old_names)
        .map(|s| s.to_string())
        .collect();
    let removed = old_names
        .difference(&new_names)
        .map(|s| s.to_string())
        .collect();
    let changed = new_names
        .intersection(&old_names)
        .filter(|n| old.get(n) != new.get(n))
        .map(|s| s.to_string())
        .collect();
    ReplyBody::Reloaded {
        added,
        removed,
        changed,
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// The uid a unit runs as, for the ownership of its notify socket.
fn resolve_uid(user: Option<&str>) -> Option<u32> {
    let name = user?.split(':').next()?;
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}
