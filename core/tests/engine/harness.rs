//! The test driver: a fake clock, a fake shell that answers `Spawn` with pids 100, 101, ...,
//! and compact one-line renderings of actions so that tests read like transcripts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kennel_core::{
    Action, Command, CommandError, Ending, Event, ExitStatus, Level, Pid, RequestId, State,
    Supervisor, UnitStatus,
};
use kennel_units::{Health, Ready, ReadyProbe, RestartPolicy, ServiceType, Signal, Unit, UnitSet};

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub const OK: ExitStatus = ExitStatus::Code(0);

pub fn code(c: i32) -> ExitStatus {
    ExitStatus::Code(c)
}

pub fn sig(s: i32) -> ExitStatus {
    ExitStatus::Signal(s)
}

/// A simple unit running `/bin/NAME`, defaults elsewhere.
pub fn unit(name: &str) -> Unit {
    Unit::new(name, vec![format!("/bin/{name}")])
}

/// A oneshot unit.
pub fn oneshot(name: &str) -> Unit {
    unit(name).kind(ServiceType::Oneshot)
}

/// Builder shorthands for test units.
pub trait UnitExt: Sized {
    fn kind(self, kind: ServiceType) -> Self;
    fn requires(self, deps: &[&str]) -> Self;
    fn after(self, deps: &[&str]) -> Self;
    fn policy(self, policy: RestartPolicy) -> Self;
    fn delays(self, delay: Duration, max: Duration) -> Self;
    fn burst(self, burst: u32, interval: Duration) -> Self;
    fn reset_after(self, d: Duration) -> Self;
    fn ready_tcp(self, timeout: Duration) -> Self;
    fn health(self, retries: u32) -> Self;
    fn stop(self, signal: i32, timeout: Duration) -> Self;
    fn env(self, key: &str, value: &str) -> Self;
    /// Add a command to the list `key` (`start_pre` ...); a leading `-` ignores its failure.
    fn around(self, key: &str, cmd: &str) -> Self;
}

impl UnitExt for Unit {
    fn kind(mut self, kind: ServiceType) -> Self {
        self.service.kind = kind;
        self
    }
    fn requires(mut self, deps: &[&str]) -> Self {
        for d in deps {
            self.service.requires.push(d.to_string());
            self.service.after.push(d.to_string());
        }
        self
    }
    fn after(mut self, deps: &[&str]) -> Self {
        self.service
            .after
            .extend(deps.iter().map(|d| d.to_string()));
        self
    }
    fn policy(mut self, policy: RestartPolicy) -> Self {
        self.restart.policy = policy;
        self
    }
    fn delays(mut self, delay: Duration, max: Duration) -> Self {
        self.restart.delay = delay;
        self.restart.max_delay = max;
        self
    }
    fn burst(mut self, burst: u32, interval: Duration) -> Self {
        self.restart.burst = burst;
        self.restart.interval = interval;
        self
    }
    fn reset_after(mut self, d: Duration) -> Self {
        self.restart.reset_after = d;
        self
    }
    fn ready_tcp(mut self, timeout: Duration) -> Self {
        self.ready = Some(Ready {
            probe: ReadyProbe::Tcp("127.0.0.1:80".into()),
            timeout,
        });
        self
    }
    fn health(mut self, retries: u32) -> Self {
        self.health = Some(Health {
            command: vec!["/bin/check".into()],
            interval: secs(10),
            timeout: secs(2),
            retries,
        });
        self
    }
    fn stop(mut self, signal: i32, timeout: Duration) -> Self {
        self.service.stop_signal = Signal { number: signal };
        self.service.stop_timeout = timeout;
        self
    }
    fn env(mut self, key: &str, value: &str) -> Self {
        self.service.environment.insert(key.into(), value.into());
        self
    }
    fn around(mut self, key: &str, cmd: &str) -> Self {
        let (ignore_failure, cmd) = match cmd.strip_prefix('-') {
            Some(c) => (true, c),
            None => (false, cmd),
        };
        let c = kennel_units::ExecCommand {
            argv: cmd.split(' ').map(String::from).collect(),
            ignore_failure,
        };
        let s = &mut self.service;
        match key {
            "start_pre" => s.start_pre.push(c),
            "start_post" => s.start_post.push(c),
            "reload" => s.reload.push(c),
            "stop" => s.stop.push(c),
            "stop_post" => s.stop_post.push(c),
            other => panic!("no command list {other}"),
        }
        self
    }
}

pub fn set(units: Vec<Unit>) -> UnitSet {
    match UnitSet::from_units(units) {
        Ok(set) => set,
        Err(errors) => panic!("bad test unit set: {errors:?}"),
    }
}

/// One line per action: `spawn web`, `signal 100 TERM`, `watch-ready web 100`,
/// `watch-health web 100`, `unwatch web`, `reply 1 ok`, `reply 1 failed web: exited 3`,
/// `notice web warn: ...`, `exit 0`.
pub fn render(action: &Action) -> String {
    match action {
        Action::Spawn { unit } => format!("spawn {}", unit.name),
        Action::RunControl {
            unit,
            argv,
            main_pid,
        } => {
            let main = main_pid.map_or(String::new(), |p| format!(" (main {p})"));
            format!("run {unit} {}{main}", argv.join(" "))
        }
        Action::Signal { pid, signal, group } => {
            let scope = if *group { "" } else { " (pid only)" };
            format!("signal {pid} {}{scope}", signal_name(*signal))
        }
        Action::CheckConditions { unit, .. } => format!("check {unit}"),
        Action::FindMainPid {
            unit,
            parent,
            pid_file,
        } => {
            let file = pid_file
                .as_ref()
                .map_or(String::new(), |f| format!(" {}", f.display()));
            format!("find-main {unit} {parent}{file}")
        }
        Action::SignalAll { pid, signal } => format!("signal-all {pid} {}", signal_name(*signal)),
        Action::WatchReady { unit, pid, .. } => format!("watch-ready {unit} {pid}"),
        Action::WatchHealth { unit, pid, .. } => format!("watch-health {unit} {pid}"),
        Action::Unwatch { unit } => format!("unwatch {unit}"),
        Action::Reply { id, result: Ok(()) } => format!("reply {id} ok"),
        Action::Reply { id, result: Err(e) } => match e {
            CommandError::UnknownUnit { unit } => format!("reply {id} unknown {unit}"),
            CommandError::UnitFailed { unit, reason } => {
                format!("reply {id} failed {unit}: {reason}")
            }
            CommandError::ShuttingDown => format!("reply {id} shutting down"),
        },
        Action::Notice {
            unit,
            level,
            message,
        } => {
            let level = match level {
                Level::Info => "info",
                Level::Warn => "warn",
                Level::Error => "error",
            };
            format!(
                "notice {} {level}: {message}",
                unit.as_deref().unwrap_or("-")
            )
        }
        Action::Exit { code } => format!("exit {code}"),
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        9 => "KILL".to_string(),
        15 => "TERM".to_string(),
        18 => "CONT".to_string(),
        2 => "INT".to_string(),
        n => n.to_string(),
    }
}

/// The supervisor plus a fake clock and a fake shell.
pub struct Harness {
    pub sup: Supervisor,
    pub now: Instant,
    /// Answer every `Spawn` with `Spawned` and the next pid.
    pub auto_spawn: bool,
    next_pid: Pid,
    next_id: RequestId,
    /// Current pid per unit, as handed out by the fake shell.
    pids: BTreeMap<String, Pid>,
    /// The last control process per unit, as handed out by the fake shell.
    controls: BTreeMap<String, Pid>,
    /// Every action since the last `take`.
    log: Vec<Action>,
    /// The code of the `Exit` action, once emitted.
    exit: Option<i32>,
}

impl Harness {
    pub fn new(units: Vec<Unit>) -> Self {
        let start = Instant::now();
        Harness {
            sup: Supervisor::new(set(units)),
            now: start,
            auto_spawn: true,
            next_pid: 100,
            next_id: 1,
            pids: BTreeMap::new(),
            controls: BTreeMap::new(),
            log: Vec::new(),
            exit: None,
        }
    }

    /// Like [`Harness::up`], with kennel ending as `ending` says.
    pub fn with_ending(units: Vec<Unit>, ending: Ending) -> Self {
        let mut h = Harness::new(units);
        h.sup = Supervisor::new(set(h.sup.units().iter().cloned().collect())).with_ending(ending);
        h.command(Command::Up, false);
        h
    }

    /// The code of the `Exit` action, if it was emitted (whether taken or not).
    pub fn exit_code(&self) -> Option<i32> {
        self.exit
    }

    /// Started with `Up` (wait = false) and every notice/reply of that dropped.
    pub fn up(units: Vec<Unit>) -> Self {
        let mut h = Harness::new(units);
        h.command(Command::Up, false);
        h
    }

    /// Feed one event, then drain the actions (answering spawns when `auto_spawn`).
    pub fn handle(&mut self, event: Event) {
        self.sup.handle(event, self.now);
        self.drain();
    }

    fn drain(&mut self) {
        let mut spawned = Vec::new();
        let mut controls = Vec::new();
        while let Some(action) = self.sup.poll_action() {
            if let (true, Action::Spawn { unit }) = (self.auto_spawn, &action) {
                spawned.push(unit.name.clone());
            }
            if let (true, Action::RunControl { unit, .. }) = (self.auto_spawn, &action) {
                controls.push(unit.clone());
            }
            if let Action::Exit { code } = action {
                self.exit = Some(code);
            }
            self.log.push(action);
        }
        for unit in spawned {
            self.spawned(&unit);
        }
        for unit in controls {
            let pid = self.next_pid();
            self.controls.insert(unit.clone(), pid);
            self.handle(Event::ControlSpawned { unit, pid });
        }
    }

    /// The last control process the fake shell started for `unit`.
    pub fn control(&self, unit: &str) -> Pid {
        match self.controls.get(unit) {
            Some(pid) => *pid,
            None => panic!("{unit} never ran a control process"),
        }
    }

    /// The reaper reports `unit`'s last control process.
    pub fn control_exit(&mut self, unit: &str, status: ExitStatus) {
        let pid = self.control(unit);
        self.handle(Event::Exited { pid, status });
    }

    /// Answer a spawn of `unit` with the next pid; returns it.
    pub fn spawned(&mut self, unit: &str) -> Pid {
        let pid = self.next_pid();
        self.pids.insert(unit.to_string(), pid);
        self.handle(Event::Spawned {
            unit: unit.into(),
            pid,
        });
        pid
    }

    /// Hand out the next pid without telling the supervisor.
    pub fn next_pid(&mut self) -> Pid {
        let pid = self.next_pid;
        self.next_pid += 1;
        pid
    }

    /// Send a command; returns its request id.
    pub fn command(&mut self, command: Command, wait: bool) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.handle(Event::Command { id, command, wait });
        id
    }

    pub fn start(&mut self, names: &[&str], wait: bool) -> RequestId {
        self.command(
            Command::Start(names.iter().map(|s| s.to_string()).collect()),
            wait,
        )
    }

    pub fn stop(&mut self, names: &[&str], wait: bool) -> RequestId {
        self.command(
            Command::Stop(names.iter().map(|s| s.to_string()).collect()),
            wait,
        )
    }

    pub fn restart(&mut self, names: &[&str], wait: bool) -> RequestId {
        self.command(
            Command::Restart(names.iter().map(|s| s.to_string()).collect()),
            wait,
        )
    }

    /// The current pid the fake shell gave `unit`.
    pub fn pid(&self, unit: &str) -> Pid {
        match self.pids.get(unit) {
            Some(pid) => *pid,
            None => panic!("{unit} was never spawned"),
        }
    }

    /// The reaper reports `unit`'s current process.
    pub fn exit(&mut self, unit: &str, status: ExitStatus) {
        let pid = self.pid(unit);
        self.handle(Event::Exited { pid, status });
    }

    pub fn ready(&mut self, unit: &str) {
        let pid = self.pid(unit);
        self.handle(Event::Ready {
            unit: unit.into(),
            pid,
        });
    }

    pub fn health(&mut self, unit: &str, ok: bool, detail: &str) {
        let pid = self.pid(unit);
        self.handle(Event::Health {
            unit: unit.into(),
            pid,
            ok,
            detail: detail.into(),
        });
    }

    /// Move the clock forward by `d`, firing every deadline on the way at its own instant.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(t) = self.sup.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.sup.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    /// Jump to the next deadline and fire it; returns how far the clock moved.
    pub fn fire(&mut self) -> Duration {
        let Some(t) = self.sup.poll_timeout() else {
            panic!("no timeout armed")
        };
        let before = self.now;
        self.now = self.now.max(t);
        self.sup.handle_timeout(self.now);
        self.drain();
        self.now - before
    }

    /// Time until the next deadline, if any.
    pub fn next_timeout(&self) -> Option<Duration> {
        self.sup
            .poll_timeout()
            .map(|t| t.saturating_duration_since(self.now))
    }

    /// Every action since the last call, rendered.
    pub fn take(&mut self) -> Vec<String> {
        self.log.drain(..).map(|a| render(&a)).collect()
    }

    /// Like [`Harness::take`] without notices.
    pub fn take_plain(&mut self) -> Vec<String> {
        self.take()
            .into_iter()
            .filter(|a| !a.starts_with("notice"))
            .collect()
    }

    /// Only the notices since the last call (the log is emptied).
    pub fn take_notices(&mut self) -> Vec<String> {
        self.take()
            .into_iter()
            .filter(|a| a.starts_with("notice"))
            .collect()
    }

    /// The raw actions since the last call.
    pub fn take_raw(&mut self) -> Vec<Action> {
        self.log.drain(..).collect()
    }

    pub fn status(&self, unit: &str) -> UnitStatus {
        match self.sup.unit_status(unit, self.now) {
            Some(s) => s,
            None => panic!("no unit {unit}"),
        }
    }

    pub fn state(&self, unit: &str) -> State {
        self.status(unit).state
    }

    pub fn detail(&self, unit: &str) -> String {
        self.status(unit).detail
    }
}
