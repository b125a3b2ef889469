//! Starting processes for units: the spawn spec (environment, notify socket, container,
//! cgroup), the log pipes, readiness and health watchers.

use super::*;
use kennel_core::start::{self, PreviousRun, Start, V1Join};

/// Why a unit's start could not be prepared ([`Owner::prepare_spawn`]); the core hears it
/// as the reason of a failed start.
#[derive(Debug, thiserror::Error)]
pub(super) enum PrepareError {
    #[error(transparent)]
    UserMaps(#[from] container::UserMapsError),
    #[error("bind notify socket {}: {source}", path.display())]
    NotifySocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Container(#[from] container::ContainerError),
    #[error(transparent)]
    Cgroup(#[from] super::super::cgroup::BeginError),
    #[error(transparent)]
    Network(#[from] super::super::network::NetError),
}

/// Why a probe or an exec cannot run inside a unit ([`Owner::unit_spec`]).
#[derive(Debug, thiserror::Error)]
pub(super) enum UnitSpecError {
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    /// Never unconfined: without the settings its process started with, nothing runs.
    #[error("unit {0} has no security settings recorded; restart it")]
    NoSecurity(String),
}

impl Owner {
    pub(super) fn spawn(&mut self, unit: Unit) {
        let now = Instant::now();
        let name = unit.name.clone();
        if let Err(reason) = self.make_directories(&unit) {
            self.spawn_failed(name, reason, now);
            return;
        }
        self.runs.before_start(&name);
        let mut spec = match self.prepare_spawn(&unit) {
            Ok(spec) => spec,
            Err(reason) => {
                self.spawn_failed(name, reason.to_string(), now);
                return;
            }
        };
        let pipes = match (pipe(), pipe()) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(err), _) | (_, Err(err)) => {
                let reason = format!("create output pipes: {err}");
                self.spawn_failed(name, reason, now);
                return;
            }
        };
        let ((out_r, out_w), (err_r, err_w)) = pipes;
        // The unit's own start: its cgroup was just made (prepare_spawn), so the helper can
        // be started right inside it while it is idle.
        let target = self.cgroups.start_target(&name);
        // What this start's overlay would be made of, on the store's layers only.
        let key = spec
            .container
            .as_ref()
            .filter(|c| container::content_addressed(&self.opts.state_dir, &c.layers))
            .map(spawn::helper::rootfs::overlay_key);
        let previous = PreviousRun {
            processes_gone: self.cgroups.previous_run_gone(&name),
            teardown_pending: self.runs.teardown_pending(&name),
            held_overlay: self.runs.held_key(&name),
        };
        let start = Start::Unit {
            container: unit.container.as_ref(),
            overlay_key: key.as_deref(),
            cgroup_idle: target.is_some(),
        };
        let plan = start::plan(start, previous, self.host());
        debug!(unit = %name, ?plan, "start plan");
        spec.v1 = plan.v1;
        spec.unified = target.as_ref().map(|(_, path)| path.clone());
        if let (Some(c), Some(p)) = (spec.container.as_mut(), plan.container) {
            c.plan = p;
            if p.cgroup_fs != start::CgroupFs::None {
                c.cgroup_hierarchies = self.cgroups.hierarchies_of(&name);
            }
        }
        if plan.v1 == V1Join::First {
            if let Err(e) = self.cgroups.finish(&unit) {
                self.spawn_failed(name, e.to_string(), now);
                return;
            }
        }
        let held = self.runs.held_overlay(&name, plan.held_overlay);
        let offered = key.filter(|_| plan.container.is_some_and(|c| c.offer_overlay));
        self.sockets.unwatch(&name);
        let sockets = match self.sockets.of(&unit) {
            Ok(fds) => fds,
            Err(e) => {
                self.spawn_failed(name, e.to_string(), now);
                return;
            }
        };
        spec.sockets = unit.sockets.iter().map(|s| s.name.clone()).collect();
        let launched = spawn::launch(
            &spec,
            &plan.launch,
            held,
            sockets,
            out_w,
            err_w,
            target.as_ref().map(|(dir, _)| dir),
        );
        if let (Ok(l), V1Join::AfterUnshare) = (&launched, plan.v1) {
            // The v1 hierarchies while the helper makes the namespaces; then EOF on its
            // channel (or why not) lets it join them.
            match self.cgroups.finish(&unit) {
                Ok(()) => l.go(),
                Err(e) => l.refuse(&spawn::helper::fail(e.step, "", &e.cause)),
            }
        }
        match launched {
            Ok(launched) => {
                let pid = launched.pid;
                self.net.launched(&name, pid);
                let _capture = self.logs.attach(&name, &unit.logs, out_r, err_r);
                let tx = self.tx.clone();
                let unit_name = name.clone();
                self.launching.insert(pid, None);
                let hold_mount_ns = plan.hold_mount_ns;
                tokio::spawn(async move {
                    let outcome = launched.outcome().await;
                    let _ = tx.send(Input::Launched {
                        unit: unit_name,
                        pid,
                        failure: outcome.failure,
                        overlay: offered.zip(outcome.overlay),
                        hold_mount_ns,
                        exit_note: outcome.exit_note,
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
                self.spawn_failed(name, e.to_string(), now);
            }
        }
    }

    /// Run a command around `unit`'s main one (`start_pre`, `stop` ...): the unit's user,
    /// environment and working directory, in its cgroup while it has one (`start_pre` and
    /// `stop_post` run in kennel's own: the unit's is made with the main process and
    /// removed after it), `MAINPID` set while there is a main process, its output in the
    /// unit's log.
    pub(super) fn run_control(&mut self, unit: String, argv: Vec<String>, main_pid: Option<Pid>) {
        let now = Instant::now();
        let Some(u) = self.sup.units().get(&unit).cloned() else {
            return;
        };
        if let Err(reason) = self.make_directories(&u) {
            return self
                .sup
                .handle(Event::ControlSpawnFailed { unit, reason }, now);
        }
        let mut spec = self.base_spec(&u, argv);
        spec.cgroup_procs = self.cgroups.procs_of(&unit);
        if let Some(pid) = main_pid {
            spec.base_env.push(("MAINPID".into(), pid.to_string()));
        }
        let plan = start::plan(Start::Probe, Default::default(), self.host());
        let launched = pipe()
            .and_then(|o| Ok((o, pipe()?)))
            .map_err(|e| format!("create output pipes: {e}"));
        let launched = launched.and_then(|((out_r, out_w), (err_r, err_w))| {
            let l = spawn::launch(&spec, &plan.launch, None, &[], out_w, err_w, None)
                .map_err(|e| e.to_string())?;
            let _capture = self.logs.attach(&unit, &u.logs, out_r, err_r);
            Ok(l)
        });
        match launched {
            Ok(l) => {
                let pid = l.pid;
                let name = unit.clone();
                tokio::spawn(async move {
                    if let Some(f) = l.outcome().await.failure {
                        warn!(unit = %name, pid, "command around the main one: {f}");
                    }
                });
                self.sup.handle(Event::ControlSpawned { unit, pid }, now);
            }
            Err(reason) => self
                .sup
                .handle(Event::ControlSpawnFailed { unit, reason }, now),
        }
    }

    /// The unit's `runtime_directory` ... directories, made (if missing) with their mode
    /// and owned by its user; the unit is remembered for the removal of its runtime ones.
    pub(super) fn make_directories(&mut self, unit: &Unit) -> Result<(), String> {
        let (uid, gid) = resolve_ids(unit.service.user.as_deref());
        for d in &unit.service.directories {
            let path = d.full_path();
            let made = std::fs::create_dir_all(&path)
                .and_then(|()| {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(d.mode))
                })
                .and_then(|()| std::os::unix::fs::chown(&path, uid, gid));
            made.map_err(|e| format!("{} {}: {e}", d.kind.key(), path.display()))?;
            if d.kind == kennel_units::DirectoryKind::Runtime {
                self.runtime_dirs.insert(unit.name.clone());
            }
        }
        Ok(())
    }

    /// Removes the runtime directories of the units that stopped (no process, none to
    /// come: not starting, up or stopping).
    pub(super) fn remove_runtime_dirs(&mut self) {
        let now = Instant::now();
        let stopped: Vec<String> = self
            .runtime_dirs
            .iter()
            .filter(|u| {
                self.sup.unit_status(u, now).is_none_or(|s| {
                    !matches!(
                        s.state,
                        kennel_core::State::Starting
                            | kennel_core::State::Up
                            | kennel_core::State::Stopping
                    )
                })
            })
            .cloned()
            .collect();
        for name in stopped {
            self.runtime_dirs.remove(&name);
            let Some(u) = self.sup.units().get(&name) else {
                continue;
            };
            for d in &u.service.directories {
                if d.kind != kennel_units::DirectoryKind::Runtime {
                    continue;
                }
                let path = d.full_path();
                match std::fs::remove_dir_all(&path) {
                    Ok(()) => debug!(unit = %name, "removed {}", path.display()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => warn!(unit = %name, "remove {}: {e}", path.display()),
                }
            }
        }
    }

    /// A forking unit's first process exited 0: find the daemon, from `pid_file` (polled
    /// until it holds a live pid, for at most the unit's start timeout: the core gives up
    /// then) or as the only process left in the unit's cgroup.
    pub(super) fn find_main_pid(&mut self, unit: String, pid_file: Option<PathBuf>) {
        let Some(file) = pid_file else {
            let pid = match self.cgroups.pids_of(&unit).as_slice() {
                [pid] => Ok(*pid),
                [] => Err("no process left in the unit's cgroup after its first one exited (set pid_file?)".to_string()),
                more => Err(format!(
                    "{} processes left in the unit's cgroup: which is the daemon? set pid_file",
                    more.len()
                )),
            };
            return self.main_pid(unit, pid, Instant::now());
        };
        let limit = self
            .sup
            .units()
            .get(&unit)
            .map_or(Duration::ZERO, |u| u.service.start_timeout)
            .min(Duration::from_secs(3600));
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + limit;
            while tokio::time::Instant::now() < until && !tx.is_closed() {
                if let Some(pid) = read_pid_file(&file) {
                    let _ = tx.send(Input::MainPid { unit, pid: Ok(pid) });
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    /// The daemon of a forking unit, found: its cgroup's main process from now on.
    pub(super) fn main_pid(&mut self, unit: String, pid: Result<Pid, String>, now: Instant) {
        if let Ok(p) = pid {
            self.cgroups.spawned(&unit, p);
        }
        self.sup.handle(Event::MainPid { unit, pid }, now);
    }

    /// A start of `unit` that failed before a helper existed.
    fn spawn_failed(&mut self, unit: String, reason: String, now: Instant) {
        // What was set up for the start goes (the lease stays).
        self.net.detach(&unit);
        self.sup.handle(
            Event::SpawnFailed {
                unit,
                pid: None,
                reason,
            },
            now,
        );
    }

    /// Everything the helper needs to start `unit`: notify socket, container, cgroup.
    pub(super) fn prepare_spawn(&mut self, unit: &Unit) -> Result<SpawnSpec, PrepareError> {
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
            let mut owner = resolve_uid(unit.service.user.as_deref());
            if let Some(c) = unit
                .container
                .as_ref()
                .filter(|c| c.namespaces.contains(&kennel_units::Namespace::User))
            {
                // Inside a user namespace the unit's uid is a mapped host id.
                let maps = container::user_maps(
                    c,
                    std::path::Path::new("/etc/subuid"),
                    std::path::Path::new("/etc/subgid"),
                )?;
                owner = kennel_units::IdMap::to_host(&maps.uid_map, owner.unwrap_or(0));
            }
            let sock = NotifySocket::bind(&dir, name, owner).map_err(|source| {
                PrepareError::NotifySocket {
                    path: dir.join(name),
                    source,
                }
            })?;
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
                if let Some(a) = self.net.attach_cni(unit)? {
                    if let Some(cs) = spec.container.as_mut() {
                        cs.join_net = Some(a.netns.clone());
                        super::super::cni::network_files(&mut cs.init_files, c, a);
                    }
                } else if let Some(a) = self.net.attach(unit, self.sup.units())? {
                    if let Some(cs) = spec.container.as_mut() {
                        cs.join_net = Some(a.netns.clone());
                        container::network_files(
                            &mut cs.init_files,
                            c,
                            &a.lease.addrs(),
                            a.gateway,
                        );
                    }
                }
                let security = container::security(c)?;
                // Kept for exec and probes: they run under the settings the unit started with,
                // even if a profile file changes or goes away meanwhile.
                self.runs.record_security(name, security.clone());
                spec.security = Some(security);
            }
            None => {
                if let Some(p) = &notify_path {
                    spec.base_env
                        .push(("NOTIFY_SOCKET".into(), p.display().to_string()));
                }
            }
        }
        // The unified (or v2) part; the v1 hierarchies when the start plan says
        // (`V1Join`). It removes the previous run's cgroup if it was left, which the plan
        // then knows.
        spec.cgroup_procs = self.cgroups.begin(unit)?;
        Ok(spec)
    }

    /// The spec for running `argv` as part of `unit` (the service itself, or a probe).
    pub(super) fn base_spec(&self, unit: &Unit, argv: Vec<String>) -> SpawnSpec {
        let mut base_env: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "NOTIFY_SOCKET"
                        | "KENNEL_SOCKET"
                        | "LISTEN_FDS"
                        | "LISTEN_PID"
                        | "LISTEN_FDNAMES"
                )
            })
            .collect();
        if !base_env.iter().any(|(k, _)| k == "PATH") {
            base_env.push(("PATH".into(), DEFAULT_PATH.into()));
        }
        base_env.push(("KENNEL_UNIT".into(), unit.name.clone()));
        for kind in kennel_units::DirectoryKind::ALL {
            let paths: Vec<String> = unit
                .service
                .directories
                .iter()
                .filter(|d| d.kind == kind)
                .map(|d| d.full_path().display().to_string())
                .collect();
            if !paths.is_empty() {
                base_env.push((kind.env().into(), paths.join(":")));
            }
        }
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
            unified: None,
            v1: V1Join::None,
            container: None,
            join: None,
            stdin_passed: false,
            tty: None,
            security: None,
            start_gate: None,
            groups: None,
            umask: None,
            sockets: Vec::new(),
            socket_fds: Vec::new(),
        }
    }

    /// The spec for running `argv` inside running unit `unit` (main pid `pid`): a probe or
    /// an exec. It joins the unit's cgroup and, for a container, its namespaces.
    pub(super) fn unit_spec(
        &self,
        unit: &str,
        argv: Vec<String>,
        pid: Pid,
    ) -> Result<SpawnSpec, UnitSpecError> {
        let u = self
            .sup
            .units()
            .get(unit)
            .ok_or_else(|| UnitSpecError::UnknownUnit(unit.to_string()))?;
        let mut spec = self.base_spec(u, argv);
        spec.cgroup_procs = self.cgroups.procs_of(unit);
        if let Some(c) = &u.container {
            spec.base_env = container::base_env(unit, c, false);
            // Best effort: probes and execs run even if the record is gone.
            let _ = container::apply_image(&mut spec, unit, c, &self.opts.state_dir);
            spec.join = Some(exec::join_spec(pid, c));
            // Never unconfined: the security the unit's process started with, or nothing runs.
            let security = self
                .runs
                .security(unit)
                .cloned()
                .ok_or_else(|| UnitSpecError::NoSecurity(unit.to_string()))?;
            spec.security = Some(security);
        }
        Ok(spec)
    }

    /// What the machine offers the start plan now.
    pub(super) fn host(&self) -> start::Host {
        start::Host {
            cgroups: self.cgroups.layout(),
            zygote: spawn::launch::zygote::running(),
            clone_into_cgroup: !spawn::launch::into_cgroup_refused(),
        }
    }

    pub(super) fn notify_dir(&self) -> PathBuf {
        match self.opts.socket.parent() {
            Some(dir) => dir.join("notify"),
            None => self.opts.state_dir.join("notify"),
        }
    }

    pub(super) fn watch_ready(&mut self, unit: String, pid: Pid, probe: ReadyProbe) {
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
                let spec = match self.unit_spec(&unit, argv, pid) {
                    Ok(spec) => spec,
                    Err(e) => {
                        warn!(unit = %unit, "cannot run the readiness command: {e}");
                        return;
                    }
                };
                tokio::spawn(probes::ready_command(tx, unit.clone(), pid, spec))
            }
        };
        self.watchers
            .entry(unit)
            .or_default()
            .push(task.abort_handle());
    }

    pub(super) fn unwatch(&mut self, unit: &str) {
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
}

/// The uid and gid a unit's directories belong to: its `user` (`name`, `uid`, `uid:gid`,
/// `name:group`; the user's own group without one), or kennel's (unchanged) without it.
fn resolve_ids(user: Option<&str>) -> (Option<u32>, Option<u32>) {
    let Some(user) = user else {
        return (None, None);
    };
    let uid = resolve_uid(Some(user));
    let gid = match user.split_once(':') {
        Some((_, g)) => g.parse::<u32>().ok().or_else(|| {
            nix::unistd::Group::from_name(g)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw())
        }),
        None => uid.and_then(|u| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(u))
                .ok()
                .flatten()
                .map(|u| u.gid.as_raw())
        }),
    };
    (uid, gid)
}

/// The live pid written in a pid file, if there is one yet.
fn read_pid_file(file: &std::path::Path) -> Option<Pid> {
    let text = std::fs::read_to_string(file).ok()?;
    let pid: Pid = text.trim().parse().ok().filter(|p| *p > 0)?;
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

pub(super) fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// The uid a unit runs as, for the ownership of its notify socket.
pub(super) fn resolve_uid(user: Option<&str>) -> Option<u32> {
    let name = user?.split(':').next()?;
    if let Ok(n) = name.parse::<u32>() {
        return Some(n);
    }
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}
