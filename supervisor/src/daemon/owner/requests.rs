//! Answering the control socket: status rows, commands handed to the core, exec
//! sessions, freeze/thaw for commit, power requests, and the core's replies.

use super::*;
use kennel_core::start;

/// How old the cgroup figures in a listing of every unit may be (a status of one unit
/// reads them fresh). Reading them costs kernel time per unit (see `UnitCgroups::stats`):
/// with this bound, a client polling the listing pays it at most once a second. Documented
/// in docs/control.md.
const LISTING_STATS_MAX_AGE: Duration = Duration::from_secs(1);

impl Owner {
    /// As a machine's init: stop everything in order, then `action` (a second request
    /// while stopping kills what remains).
    pub(super) fn power_down(&mut self, action: PowerAction, why: String) {
        let force = self.sup.is_shutting_down();
        info!(
            "{why}: {}: stopping every unit{}",
            action.name(),
            if force { " at once" } else { "" }
        );
        self.power = Some(action);
        self.sup.handle(Event::Shutdown { force }, Instant::now());
    }

    pub(super) fn control(&mut self, req: ControlRequest) {
        let now = Instant::now();
        let (command, wait, plan) = match req.body {
            RequestBody::Status { unit } => {
                let reply = match unit {
                    None => {
                        let all = self.sup.statuses(now);
                        let mut enc = StatusEncoder::new(all.len());
                        for s in all {
                            let r = row(
                                &mut self.cgroups,
                                self.runs.sessions(),
                                &self.net,
                                s,
                                now,
                                LISTING_STATS_MAX_AGE,
                            );
                            enc.push(&r);
                        }
                        Answer::Encoded(enc.finish())
                    }
                    Some(name) => match self.sup.unit_status(&name, now) {
                        Some(s) => Reply::Ok(ReplyBody::Status {
                            units: vec![row(
                                &mut self.cgroups,
                                self.runs.sessions(),
                                &self.net,
                                s,
                                now,
                                Duration::ZERO,
                            )],
                        })
                        .into(),
                        None => Reply::Error(unknown(&name)).into(),
                    },
                };
                let _ = req.reply.send(reply);
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
            RequestBody::Networks { name } => {
                let infos = match &name {
                    None => self.net.infos(),
                    Some(n) => self.net.info(n).into_iter().collect(),
                };
                let reply = match (name, infos.is_empty()) {
                    (Some(n), true) => Reply::Error(ProtoError::new(
                        ErrorKind::UnknownNetwork,
                        format!("unknown network {n:?}"),
                    )),
                    _ => Reply::Ok(ReplyBody::Networks {
                        networks: infos.into_iter().map(network_row).collect(),
                    }),
                };
                let _ = req.reply.send(reply.into());
                return;
            }
            RequestBody::NetCheck { units } => {
                let mut names: Vec<String> = if units.is_empty() {
                    self.sup.units().iter().map(|u| u.name.clone()).collect()
                } else {
                    units
                };
                names.sort();
                let mut checks = Vec::new();
                for name in names {
                    if self.sup.units().get(&name).is_none() {
                        let _ = req.reply.send(Reply::Error(unknown(&name)).into());
                        return;
                    }
                    let Some(a) = self.net.cni.of(&name) else {
                        continue;
                    };
                    let network = format!("cni:{}", a.network);
                    if let Some(result) = self.net.cni.check(&name) {
                        checks.push(crate::control::protocol::NetCheck {
                            unit: name,
                            network,
                            error: result.err(),
                        });
                    }
                }
                let _ = req
                    .reply
                    .send(Reply::Ok(ReplyBody::NetChecks { checks }).into());
                return;
            }
            RequestBody::Paths => {
                let o = &self.opts;
                let reply = Reply::Ok(ReplyBody::Paths {
                    state_dir: o.state_dir.display().to_string(),
                    units: o.units.display().to_string(),
                    log_dir: o.log_dir.display().to_string(),
                });
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
            RequestBody::ReloadUnits { units, wait } => (Command::ReloadUnits(units), wait, None),
            RequestBody::Kill { unit, signal, main } => {
                let reply = self.kill(&unit, signal, main);
                let _ = req.reply.send(reply.into());
                return;
            }
            RequestBody::Shutdown => (Command::Shutdown, true, None),
            RequestBody::Reload { wait } => match self.opts.load() {
                Ok((set, networks)) => {
                    self.net.set_networks(networks);
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
                    let _ = req
                        .reply
                        .send(Reply::Error(ProtoError::new(ErrorKind::InvalidUnits, msg)).into());
                    return;
                }
            },
        };
        let plan = plan.or_else(|| {
            let already = self.sup.already(&command);
            (!already.is_empty()).then_some(ReplyBody::Done { already })
        });
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
        self.sweep_overlays();
    }

    /// `kennel kill`: `signal` to the main process of a running unit (`main`), or to every
    /// process of its cgroup.
    pub(super) fn kill(&self, unit: &str, signal: i32, main: bool) -> Reply {
        if self.sup.units().get(unit).is_none() {
            return Reply::Error(unknown(unit));
        }
        let Some(pid) = self
            .sup
            .unit_status(unit, Instant::now())
            .and_then(|s| s.pid)
        else {
            let msg = format!("unit {unit} is not running");
            return Reply::Error(ProtoError::new(ErrorKind::NotRunning, msg));
        };
        let mut pids = if main {
            Vec::new()
        } else {
            self.cgroups.pids_of(unit)
        };
        if !pids.contains(&pid) {
            pids.push(pid);
        }
        for p in pids {
            // SAFETY: kill(2) with integers; ESRCH (already gone) is fine.
            unsafe {
                libc::kill(p, signal);
            }
        }
        info!(
            unit,
            "{} sent by kennel kill",
            kennel_units::signal_name(signal)
        );
        Reply::Ok(ReplyBody::done())
    }

    /// `freeze` (`Some(delay of the automatic thaw)`) or `thaw` (`None`) the cgroup of a
    /// running unit, for `kennel commit`.
    pub(super) fn freeze(&self, unit: &str, thaw_after: Option<u64>) -> Reply {
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
            Ok(()) => Reply::Ok(ReplyBody::done()),
            Err(e) => Reply::Error(ProtoError::new(ErrorKind::UnitFailed, e.to_string())),
        }
    }

    /// `kennel exec`: start the command through the one spawn path, inside the unit, and
    /// hand its stdio to the client.
    pub(super) fn exec(&mut self, x: ExecRequest, reply: oneshot::Sender<Answer>) {
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
        let mut spec = match self.unit_spec(&x.unit, x.argv.clone(), pid) {
            Ok(spec) => spec,
            Err(e) => {
                let body = ReplyBody::ExecExited {
                    code: 125,
                    error: Some(e.to_string()),
                };
                let _ = reply.send(Reply::Ok(body).into());
                return;
            }
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
        spec.tty = x.tty.then_some(spawn::spec::TtySize {
            rows: x.rows,
            cols: x.cols,
        });
        spec.stdin_passed = stdio.stdin.is_some();
        // Forked right into the unit's unified cgroup by the zygote where there is one
        // (its `cgroup.procs` write would wait for an RCU grace period); never cloned in
        // by the daemon itself (the start plan's `Start::Exec`): a frozen or throttled unit
        // would hold the daemon's thread until the child execs.
        let plan = start::plan(start::Start::Exec, Default::default(), self.host());
        spec.v1 = plan.v1;
        let target = self.cgroups.unified_of(&x.unit);
        spec.unified = target.as_ref().map(|(_, path)| path.clone());
        let launched = spawn::launch(
            &spec,
            &plan.launch,
            stdio.stdin,
            &[],
            stdio.stdout,
            stdio.stderr,
            target.as_ref().map(|(dir, _)| dir),
        );
        let launched = match launched {
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
        self.runs.exec_started(epid, &x.unit);
        info!(unit = %x.unit, "exec session started, pid {epid}");
        let (done_tx, done_rx) = oneshot::channel();
        let session = ExecSession {
            pid: epid,
            fds: stdio.client,
            done: done_rx,
        };
        // With a terminal, the client's end is the master the helper made in the unit's
        // namespaces: the answer waits for it.
        let waiting = if x.tty {
            Some((reply, session))
        } else {
            let _ = reply.send(Answer::Exec(session));
            None
        };
        tokio::spawn(async move {
            let outcome = launched.outcome().await;
            let failure = outcome.failure;
            let mut exit_rx = exit_rx;
            if let Some((reply, mut session)) = waiting {
                let terminal = match (&failure, outcome.terminal) {
                    (None, Some(master)) => Ok(master),
                    (Some(f), _) => Err((f.exit_code, f.to_string())),
                    (None, None) => {
                        // Running, but without the terminal the client would drive: ended.
                        // Not yet reaped (its exit would be in `exit_rx`), so still ours.
                        if exit_rx.try_recv().is_err() {
                            // SAFETY: kill(2) of our own unreaped child and its group.
                            unsafe {
                                libc::kill(-epid, libc::SIGKILL);
                                libc::kill(epid, libc::SIGKILL);
                            }
                        }
                        Err((125, "the helper did not hand its terminal back".into()))
                    }
                };
                match terminal {
                    Ok(master) => {
                        session.fds = vec![master];
                        let _ = reply.send(Answer::Exec(session));
                    }
                    Err((code, error)) => {
                        let body = ReplyBody::ExecExited {
                            code,
                            error: Some(error),
                        };
                        let _ = reply.send(Reply::Ok(body).into());
                        return;
                    }
                }
            }
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
    }

    pub(super) fn reply(&mut self, id: RequestId, result: Result<(), kennel_core::CommandError>) {
        if id == UP_ID {
            match &result {
                Ok(()) => {
                    let took = format!("{:.2}s", self.started.elapsed().as_secs_f64());
                    if self.opts.boot {
                        info!("all units up in {took} (machine up {})", machine_uptime());
                    } else {
                        info!("all units up in {took}");
                    }
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
            Ok(()) => Reply::Ok(p.plan.unwrap_or_else(ReplyBody::done)),
            Err(e) => Reply::Error(e.into()),
        };
        let _ = p.reply.send(reply.into());
    }
}

/// A network as the `networks` reply has it.
fn network_row(i: super::super::network::NetworkInfo) -> crate::control::protocol::NetworkRow {
    let d = i.def;
    let text = |a: &dyn std::fmt::Display| a.to_string();
    crate::control::protocol::NetworkRow {
        name: d.name,
        file: d.path.map(|p| p.display().to_string()),
        subnet: text(&d.subnet),
        subnet6: d.subnet6.as_ref().map(|s| text(s)),
        gateway: text(&d.gateway),
        gateway6: d.gateway6.as_ref().map(|s| text(s)),
        bridge: d.bridge,
        internal: d.internal,
        mtu: d.mtu,
        dns: d.dns.map(|v| v.iter().map(ToString::to_string).collect()),
        leases: i
            .leases
            .into_iter()
            .map(
                |(unit, (addrs, running))| crate::control::protocol::LeaseRow {
                    unit,
                    addresses: addrs.iter().map(ToString::to_string).collect(),
                    running,
                },
            )
            .collect(),
    }
}

/// A unit's status row; its cgroup's figures are at most `max_age` old.
fn row(
    cgroups: &mut UnitCgroups,
    sessions: &HashMap<Pid, String>,
    net: &super::super::network::Networking,
    status: kennel_core::UnitStatus,
    now: Instant,
    max_age: Duration,
) -> StatusRow {
    let resources = status
        .pid
        .and_then(|pid| cgroups.stats(&status.name, pid, now, max_age));
    let mut execs: Vec<Pid> = sessions
        .iter()
        .filter(|(_, u)| **u == status.name)
        .map(|(p, _)| *p)
        .collect();
    execs.sort_unstable();
    let network = net
        .of(&status.name)
        .map(|a| NetStatus {
            name: a.network.clone(),
            addresses: a.lease.addrs().iter().map(ToString::to_string).collect(),
            ports: a.ports.iter().map(ToString::to_string).collect(),
        })
        .or_else(|| {
            net.cni.of(&status.name).map(|a| NetStatus {
                name: format!("cni:{}", a.network),
                addresses: a.addrs.iter().map(ToString::to_string).collect(),
                ports: a.ports.iter().map(ToString::to_string).collect(),
            })
        });
    StatusRow {
        status,
        resources,
        execs,
        network,
    }
}

/// The machine's uptime as `/proc/uptime` has it (`12.34s`): for kennel as a machine's
/// init, how long the boot took before kennel's own start.
fn machine_uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(|u| format!("{u}s")))
        .unwrap_or_else(|| "?".into())
}

pub(super) fn unknown(name: &str) -> ProtoError {
    ProtoError::new(ErrorKind::UnknownUnit, format!("unknown unit {name:?}"))
}

pub(super) fn reload_plan(old: &UnitSet, new: &UnitSet) -> ReplyBody {
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
