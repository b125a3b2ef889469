//! Starting processes for units: the spawn spec (environment, notify socket, container,
//! cgroup), the log pipes, readiness and health watchers.

use super::*;

impl Owner {
    pub(super) fn spawn(&mut self, unit: Unit) {
        let now = Instant::now();
        let name = unit.name.clone();
        self.release_mounts(&name);
        let mut spec = match self.prepare_spawn(&unit) {
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
        let (held, key) = self.pass_overlay(&name, &mut spec);
        // The unit's own start: its cgroup was just made (prepare_spawn), so the helper can
        // be started right inside it.
        let launched = match self.cgroups.start_target(&name) {
            Some((dir, cgroup)) => {
                spawn::launch::launch_in(&spec, held, out_w, err_w, (&dir, &cgroup), true)
            }
            None => spawn::launch(&spec, held, out_w, err_w),
        };
        if let Ok(l) = &launched {
            if spec.cgroup_later {
                // The v1 hierarchies while the helper makes the namespaces; then EOF on
                // its channel (or why not) lets it join them.
                match self.cgroups.finish(&unit) {
                    Ok(()) => l.go(),
                    // Reported as a start that made it all first reports it ("STEP: ERROR").
                    Err(e) => {
                        let (step, error) = e.split_once(": ").unwrap_or(("create cgroup", &e));
                        l.refuse(&spawn::helper::fail(step, "", error));
                    }
                }
            }
        }
        match launched {
            Ok(launched) => {
                let pid = launched.pid;
                let _capture = self.logs.attach(&name, &unit.logs, out_r, err_r);
                let tx = self.tx.clone();
                let unit_name = name.clone();
                self.launching.insert(pid, None);
                tokio::spawn(async move {
                    let outcome = launched.outcome().await;
                    let _ = tx.send(Input::Launched {
                        unit: unit_name,
                        pid,
                        failure: outcome.failure,
                        overlay: key.zip(outcome.overlay),
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

    /// The overlay the previous run of `unit` handed back, to pass to this start's helper
    /// (setting `overlay_passed`) when it is made of what this start's would be (its key)
    /// and that run's processes are known to be gone. Otherwise it is let go, and then the
    /// writable layer it holds is not kept either (`previous_run_gone` false): overlayfs
    /// marks it in use. Returns it, and the key of this start's overlay if the helper will
    /// hand one back (`offer_overlay`).
    fn pass_overlay(
        &mut self,
        unit: &str,
        spec: &mut SpawnSpec,
    ) -> (Option<OwnedFd>, Option<String>) {
        let held = self.overlays.remove(unit);
        let Some(c) = spec.container.as_mut() else {
            if let Some((_, fd)) = held {
                self.released.push((unit.to_string(), fd));
            }
            return (None, None);
        };
        let key = c.offer_overlay.then(|| spawn::rootfs::overlay_key(c));
        // The previous run's processes are all gone (its cgroup is): a mount namespace of it
        // still being torn down does not matter here, as the kept overlay outlives it.
        let gone = self.cgroups.previous_run_gone(unit);
        match held {
            Some((k, fd)) if gone && key.as_deref() == Some(k.as_str()) => {
                c.previous_run_gone = true;
                c.overlay_passed = true;
                (Some(fd), key)
            }
            Some((_, fd)) => {
                self.released.push((unit.to_string(), fd));
                c.previous_run_gone = false;
                (None, key)
            }
            None => (None, key),
        }
    }

    /// Everything the helper needs to start `unit`: notify socket, container, cgroup.
    pub(super) fn prepare_spawn(&mut self, unit: &Unit) -> Result<SpawnSpec, String> {
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
            let sock = NotifySocket::bind(&dir, name, owner)
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
                let security = container::security(c)?;
                // Kept for exec and probes: they run under the settings the unit started with,
                // even if a profile file changes or goes away meanwhile.
                self.security.insert(name.clone(), security.clone());
                spec.security = Some(security);
            }
            None => {
                if let Some(p) = &notify_path {
                    spec.base_env
                        .push(("NOTIFY_SOCKET".into(), p.display().to_string()));
                }
            }
        }
        spec.cgroup_procs = self.cgroups.begin(unit)?;
        // A container's helper has namespaces to make before it needs the v1 hierarchies:
        // the daemon makes those meanwhile (spawn, UnitCgroups::finish).
        spec.cgroup_later = spec.container.is_some() && self.cgroups.has_rest();
        if !spec.cgroup_later {
            self.cgroups.finish(unit)?;
        }
        if let Some(c) = spec.container.as_mut() {
            // Only now known: begin removed the previous run's cgroup if it was left.
            // And its mount namespace: one still being torn down keeps the old overlay.
            c.previous_run_gone =
                self.cgroups.previous_run_gone(name) && !self.teardown_pending(name);
        }
        Ok(spec)
    }

    /// The spec for running `argv` as part of `unit` (the service itself, or a probe).
    pub(super) fn base_spec(&self, unit: &Unit, argv: Vec<String>) -> SpawnSpec {
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
            born_into: None,
            cgroup_later: false,
            container: None,
            join: None,
            stdin_passed: false,
            tty: None,
            security: None,
        }
    }

    /// The spec for running `argv` inside running unit `unit` (main pid `pid`): a probe or
    /// an exec. It joins the unit's cgroup and, for a container, its namespaces.
    pub(super) fn unit_spec(
        &self,
        unit: &str,
        argv: Vec<String>,
        pid: Pid,
    ) -> Result<SpawnSpec, String> {
        let u = self
            .sup
            .units()
            .get(unit)
            .ok_or_else(|| format!("unknown unit {unit:?}"))?;
        let mut spec = self.base_spec(u, argv);
        spec.cgroup_procs = self.cgroups.procs_of(unit);
        if let Some(c) = &u.container {
            spec.base_env = container::base_env(unit, c, false);
            // Best effort: probes and execs run even if the record is gone.
            let _ = container::apply_image(&mut spec, unit, c, &self.opts.state_dir);
            spec.join = Some(exec::join_spec(pid, c));
            // Never unconfined: the security the unit's process started with, or nothing runs.
            let security = self.security.get(unit).cloned().ok_or_else(|| {
                format!("unit {unit} has no security settings recorded; restart it")
            })?;
            spec.security = Some(security);
        }
        Ok(spec)
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
