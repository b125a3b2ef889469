//! The typed unit model: what a validated unit file means, with every default applied.
//!
//! These types are produced by the parser (`crate::parse`) and consumed by the supervision
//! core and the daemon. They are plain data: cloning is cheap enough, comparing two units
//! tells `kennel reload` whether a unit changed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::container::{
    CgroupAccess, Container, IdMap, Layer, Namespace, Network, Resources, Volume,
};
pub use crate::socket::{Listen, Socket, UnixKind};

/// One unit: `DIR/NAME.toml`, NAME being the file stem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// The file stem of the unit file; unique within a unit set.
    pub name: String,
    /// The file the unit was read from (for messages).
    pub path: PathBuf,
    /// `description`, free text.
    pub description: Option<String>,
    /// `[service]`: what to run and how.
    pub service: Service,
    /// `[restart]`: when and how fast to restart.
    pub restart: Restart,
    /// `[ready]`: when the unit counts as up for its dependents. `None`: up once spawned
    /// (simple) or once exited successfully (oneshot). A `type = "notify"` service always
    /// has `Some(Ready { probe: ReadyProbe::Notify, .. })`.
    pub ready: Option<Ready>,
    /// `[health]`: checks run once the unit is up.
    pub health: Option<Health>,
    /// `[logs]`: rotation of `LOG_DIR/NAME.log`.
    pub logs: Logs,
    /// `[container]`: run isolated on its own rootfs; `None` for a plain service.
    pub container: Option<Container>,
    /// `[resources]`: cgroup limits (every unit gets its own cgroup either way).
    pub resources: Resources,
    /// `[[socket]]`: sockets kennel binds and holds, passed to the service as `LISTEN_FDS`.
    #[serde(default)]
    pub sockets: Vec<Socket>,
}

/// `[service]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// argv; never empty; `command[0]` is a path or a name looked up in PATH.
    pub command: Vec<String>,
    /// `environment`, applied after `environment_file` (so it wins).
    pub environment: BTreeMap<String, String>,
    /// `environment_file`: KEY=VALUE lines, read at each start.
    pub environment_file: Option<PathBuf>,
    /// `working_dir`; default: `/`.
    pub working_dir: Option<PathBuf>,
    /// `user`: name, uid, or uid:gid (also `name:group`); default: kennel's own user.
    pub user: Option<String>,
    /// `type`; default simple.
    pub kind: ServiceType,
    /// `after` plus every `requires` entry (requires implies after), deduplicated, in file order.
    pub after: Vec<String>,
    /// `requires`.
    pub requires: Vec<String>,
    /// `success_exit_codes`; default `[0]`.
    pub success_exit_codes: Vec<i32>,
    /// `stop_signal`; default SIGTERM.
    pub stop_signal: Signal,
    /// `stop_timeout`; default 10s ([`INFINITY`] for `"infinity"`: never SIGKILL).
    pub stop_timeout: Duration,
    /// `activate`: when the service starts; default at `kennel up`.
    #[serde(default)]
    pub activate: Activate,
    /// `start_pre`: run in order before the main command; a failure fails the start.
    pub start_pre: Vec<ExecCommand>,
    /// `start_post`: run in order once the main command is up (ready); the unit is up when
    /// they are done, a failure stops it as a failed start.
    pub start_post: Vec<ExecCommand>,
    /// `reload`: run in order by `kennel reload UNIT` while the unit is up.
    pub reload: Vec<ExecCommand>,
    /// `reload_signal`: sent to the main process by `kennel reload UNIT` when `reload` is empty.
    pub reload_signal: Option<Signal>,
    /// `stop`: run in order at a stop, before the stop signal.
    pub stop: Vec<ExecCommand>,
    /// `stop_post`: run in order after the main process ended (whatever the reason).
    pub stop_post: Vec<ExecCommand>,
    /// `kill_mode`; default control-group (ignored for a `[container]` unit: the signal
    /// goes to its init, which forwards it).
    pub kill_mode: KillMode,
    /// `send_sigkill`: SIGKILL after `stop_timeout`; default true. False: the stop waits.
    pub send_sigkill: bool,
    /// `remain_after_exit`: a oneshot that exited successfully stays up (`kennel start`
    /// does not run it again; `kennel stop` makes it inactive).
    pub remain_after_exit: bool,
    /// `runtime_directory`, `state_directory`, `cache_directory`, `logs_directory`,
    /// `configuration_directory` (each with its `..._mode`): made before the start.
    pub directories: Vec<Directory>,
    /// `condition_path_exists` and `assert_path_exists`, checked before each start.
    pub conditions: Vec<PathCondition>,
    /// `pid_file`: where a `type = "forking"` daemon writes its pid (read once its first
    /// process exited 0).
    pub pid_file: Option<PathBuf>,
    /// `start_timeout`: the time each `start_pre`, `start_post` and `reload` command has
    /// before it is killed and counts as failed; default 90s ([`INFINITY`]: no limit).
    pub start_timeout: Duration,
}

/// The duration that means `"infinity"` (no timeout): `Duration::MAX`.
pub const INFINITY: Duration = Duration::MAX;

/// One command of `start_pre`, `start_post`, `reload`, `stop` or `stop_post`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecCommand {
    /// argv; never empty.
    pub argv: Vec<String>,
    /// A leading `"-"` element: a failure (exit code not 0, killed) is ignored.
    pub ignore_failure: bool,
}

/// `service.activate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activate {
    /// Started by `kennel up` (and `kennel start`).
    #[default]
    Up,
    /// Started on the first connection or datagram on one of its `[[socket]]`s (and by
    /// `kennel start`, or as another unit's requirement).
    Socket,
}

/// `service.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ServiceType {
    /// Up as soon as it is spawned (or when its `[ready]` probe passes).
    #[default]
    Simple,
    /// Up when it sends `READY=1` on `$NOTIFY_SOCKET`.
    Notify,
    /// Runs to completion; up (done) when it exits with a success code.
    Oneshot,
    /// A daemon that forks: its first process exits 0 once the daemon runs; the daemon,
    /// from `pid_file` or the only process left in the cgroup, is then the main process.
    Forking,
}

/// A signal named in a unit file, e.g. `"SIGTERM"`, `"TERM"` or `15`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// The signal number (Linux x86_64/aarch64 numbering).
    pub number: i32,
}

impl Signal {
    /// SIGTERM.
    pub const TERM: Signal = Signal { number: 15 };
    /// SIGKILL.
    pub const KILL: Signal = Signal { number: 9 };
    /// SIGHUP.
    pub const HUP: Signal = Signal { number: 1 };
    /// SIGINT.
    pub const INT: Signal = Signal { number: 2 };
    /// SIGCONT.
    pub const CONT: Signal = Signal { number: 18 };
}

/// `[restart]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restart {
    /// `policy`; default on-failure.
    pub policy: RestartPolicy,
    /// `delay`: the first restart delay; default 100ms. Doubles on each consecutive restart.
    pub delay: Duration,
    /// `max_delay`: the cap of the doubling; default 30s.
    pub max_delay: Duration,
    /// `reset_after`: a run that stayed up this long resets the backoff; default 60s.
    pub reset_after: Duration,
    /// `burst`: at most this many starts within `interval`, then failed instead of one more;
    /// default 5.
    pub burst: u32,
    /// `interval`: the start-limit window; default 10s.
    pub interval: Duration,
}

/// `restart.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Never restart.
    No,
    /// Restart when the exit is not a success (code not in `success_exit_codes`, a signal,
    /// a failed readiness or health check).
    #[default]
    OnFailure,
    /// Restart whenever the process ends (unless the user stopped it).
    Always,
    /// Restart only after a success (an exit code of `success_exit_codes`).
    OnSuccess,
    /// Restart after a death by an unclean signal (not SIGHUP, SIGINT, SIGTERM, SIGPIPE),
    /// a timeout (not ready in time, a command around the main one that timed out) or a
    /// failed health check.
    OnAbnormal,
    /// Restart after a death by an unclean signal only.
    OnAbort,
    /// Restart after failed health checks only (the unit stopped as unhealthy).
    OnWatchdog,
}

impl RestartPolicy {
    /// Every policy with its unit-file name, as systemd spells them.
    pub const NAMES: [(&'static str, RestartPolicy); 7] = [
        ("no", RestartPolicy::No),
        ("on-success", RestartPolicy::OnSuccess),
        ("on-failure", RestartPolicy::OnFailure),
        ("on-abnormal", RestartPolicy::OnAbnormal),
        ("on-abort", RestartPolicy::OnAbort),
        ("on-watchdog", RestartPolicy::OnWatchdog),
        ("always", RestartPolicy::Always),
    ];

    /// The unit-file name of the policy.
    pub fn name(self) -> &'static str {
        name_of(&Self::NAMES, self)
    }

    /// The policy of that name.
    pub fn from_name(name: &str) -> Option<RestartPolicy> {
        named(&Self::NAMES, name)
    }
}

/// `service.kill_mode`: which processes a stop signals (systemd's `KillMode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum KillMode {
    /// The stop signal and the final SIGKILL to every process of the unit's cgroup.
    #[default]
    ControlGroup,
    /// The stop signal to the main process; the final SIGKILL to the whole cgroup.
    Mixed,
    /// The stop signal and the final SIGKILL to the main process only.
    Process,
    /// No stop signal; the final SIGKILL to the main process only.
    None,
}

impl KillMode {
    /// Every mode with its unit-file name, as systemd spells them.
    pub const NAMES: [(&'static str, KillMode); 4] = [
        ("control-group", KillMode::ControlGroup),
        ("mixed", KillMode::Mixed),
        ("process", KillMode::Process),
        ("none", KillMode::None),
    ];

    /// The unit-file name of the mode.
    pub fn name(self) -> &'static str {
        name_of(&Self::NAMES, self)
    }

    /// The mode of that name.
    pub fn from_name(name: &str) -> Option<KillMode> {
        named(&Self::NAMES, name)
    }
}

/// A directory kennel makes for a service before it starts (systemd's
/// `RuntimeDirectory=` ...): `BASE/path`, owned by the service's user, with `mode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    pub kind: DirectoryKind,
    /// Relative to the kind's base (`redis`, `postgresql/15`).
    pub path: String,
    /// Permission bits; default 0755.
    pub mode: u32,
}

impl Directory {
    /// `BASE/path`.
    pub fn full_path(&self) -> PathBuf {
        PathBuf::from(self.kind.base()).join(&self.path)
    }
}

/// One entry of `condition_path_exists` or `assert_path_exists`: the path must exist (or,
/// `negate`, must not); else the start is skipped (a condition) or fails (an assertion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathCondition {
    /// An assertion (`assert_path_exists`): failing it fails the start.
    pub assert: bool,
    pub path: PathBuf,
    /// Written `"!/path"`: the path must not exist.
    pub negate: bool,
}

impl PathCondition {
    /// How a unit file writes it: `condition_path_exists !/etc/x`.
    pub fn describe(&self) -> String {
        let key = if self.assert {
            "assert_path_exists"
        } else {
            "condition_path_exists"
        };
        let bang = if self.negate { "!" } else { "" };
        format!("{key} {bang}{}", self.path.display())
    }
}

/// Which of the five directories: where it goes and whether it is removed after a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryKind {
    /// Below /run; removed once the unit stopped.
    Runtime,
    /// Below /var/lib.
    State,
    /// Below /var/cache.
    Cache,
    /// Below /var/log.
    Logs,
    /// Below /etc.
    Configuration,
}

impl DirectoryKind {
    pub const ALL: [DirectoryKind; 5] = [
        DirectoryKind::Runtime,
        DirectoryKind::State,
        DirectoryKind::Cache,
        DirectoryKind::Logs,
        DirectoryKind::Configuration,
    ];

    /// The unit-file key: `runtime_directory` (its mode: `runtime_directory_mode`).
    pub fn key(self) -> &'static str {
        match self {
            DirectoryKind::Runtime => "runtime_directory",
            DirectoryKind::State => "state_directory",
            DirectoryKind::Cache => "cache_directory",
            DirectoryKind::Logs => "logs_directory",
            DirectoryKind::Configuration => "configuration_directory",
        }
    }

    /// The systemd directive: `RuntimeDirectory` (its mode: `RuntimeDirectoryMode`).
    pub fn systemd_key(self) -> &'static str {
        match self {
            DirectoryKind::Runtime => "RuntimeDirectory",
            DirectoryKind::State => "StateDirectory",
            DirectoryKind::Cache => "CacheDirectory",
            DirectoryKind::Logs => "LogsDirectory",
            DirectoryKind::Configuration => "ConfigurationDirectory",
        }
    }

    /// Where its directories go.
    pub fn base(self) -> &'static str {
        match self {
            DirectoryKind::Runtime => "/run",
            DirectoryKind::State => "/var/lib",
            DirectoryKind::Cache => "/var/cache",
            DirectoryKind::Logs => "/var/log",
            DirectoryKind::Configuration => "/etc",
        }
    }

    /// The variable that gives the service its paths (`:`-separated), as systemd sets it.
    pub fn env(self) -> &'static str {
        match self {
            DirectoryKind::Runtime => "RUNTIME_DIRECTORY",
            DirectoryKind::State => "STATE_DIRECTORY",
            DirectoryKind::Cache => "CACHE_DIRECTORY",
            DirectoryKind::Logs => "LOGS_DIRECTORY",
            DirectoryKind::Configuration => "CONFIGURATION_DIRECTORY",
        }
    }
}

/// The name of `value` in a table of names (every value is in it).
fn name_of<T: PartialEq>(names: &[(&'static str, T)], value: T) -> &'static str {
    names
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("", |(n, _)| n)
}

/// The value named `name` in a table of names.
fn named<T: Copy>(names: &[(&str, T)], name: &str) -> Option<T> {
    names.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// `[ready]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// How readiness is detected.
    pub probe: ReadyProbe,
    /// `timeout`: not ready within this => the start failed; default 30s.
    pub timeout: Duration,
}

/// How `[ready]` detects readiness (exactly one of `notify`, `tcp`, `command`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadyProbe {
    /// `notify = true`: `READY=1` on `$NOTIFY_SOCKET`.
    Notify,
    /// `tcp = "HOST:PORT"`: a connection is accepted.
    Tcp(String),
    /// `command = [...]`: the command exits 0 (retried every 100ms... until the timeout).
    Command(Vec<String>),
}

/// `[health]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `command`: healthy when it exits 0 within `timeout`.
    pub command: Vec<String>,
    /// `interval` between checks; default 10s.
    pub interval: Duration,
    /// `timeout` of one check; default 2s.
    pub timeout: Duration,
    /// `retries`: this many consecutive failures => unhealthy; default 3.
    pub retries: u32,
}

/// `[logs]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logs {
    /// `max_size` in bytes; rotate when the log would grow past it; default 10M.
    pub max_size: u64,
    /// `keep`: rotated files kept (`NAME.log.1` .. `NAME.log.KEEP`); default 3.
    pub keep: u32,
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            policy: RestartPolicy::OnFailure,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
            burst: 5,
            interval: Duration::from_secs(10),
        }
    }
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            max_size: 10 * 1024 * 1024,
            keep: 3,
        }
    }
}

impl Service {
    /// A simple service running `command`, every other key at its default.
    pub fn new(command: Vec<String>) -> Self {
        Service {
            command,
            environment: BTreeMap::new(),
            environment_file: None,
            working_dir: None,
            user: None,
            kind: ServiceType::Simple,
            after: Vec::new(),
            requires: Vec::new(),
            success_exit_codes: vec![0],
            stop_signal: Signal::TERM,
            stop_timeout: Duration::from_secs(10),
            activate: Activate::Up,
            start_pre: Vec::new(),
            start_post: Vec::new(),
            reload: Vec::new(),
            reload_signal: None,
            stop: Vec::new(),
            stop_post: Vec::new(),
            start_timeout: Duration::from_secs(90),
            kill_mode: KillMode::ControlGroup,
            send_sigkill: true,
            pid_file: None,
            remain_after_exit: false,
            directories: Vec::new(),
            conditions: Vec::new(),
        }
    }
}

impl Unit {
    /// A unit named `name` running `command`, every other key at its default; the path is
    /// `NAME.toml`. Handy for tests and for units built by code.
    pub fn new(name: &str, command: Vec<String>) -> Self {
        Unit {
            name: name.to_string(),
            path: PathBuf::from(format!("{name}.toml")),
            description: None,
            service: Service::new(command),
            restart: Restart::default(),
            ready: None,
            health: None,
            logs: Logs::default(),
            container: None,
            resources: Resources::default(),
            sockets: Vec::new(),
        }
    }
}
