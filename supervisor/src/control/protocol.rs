//! The control protocol: newline-delimited JSON requests and replies, shared by the daemon
//! and the client. This is a public interface, documented in `docs/control.md`.

use std::time::Duration;

use kennel_core::{CommandError, ExitStatus, HealthState, Pid, State, UnitStatus};
use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change; a request with another version is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest request line the daemon reads; longer ones get [`ErrorKind::TooLarge`].
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// One request line: `{"version":1,"cmd":"status","unit":null}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    #[serde(flatten)]
    pub body: RequestBody,
}

/// What the client asks for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum RequestBody {
    /// Every unit, or one.
    Status { unit: Option<String> },
    /// Start units; with `wait`, reply once they are up (a oneshot: exited successfully).
    Start { units: Vec<String>, wait: bool },
    /// Stop units (and what requires them); with `wait`, reply once they are stopped.
    Stop { units: Vec<String>, wait: bool },
    /// Stop then start.
    Restart { units: Vec<String>, wait: bool },
    /// Re-read the unit directory and apply the difference.
    Reload { wait: bool },
    /// Run units' `reload` commands (or send their `reload_signal`); with `wait`, reply
    /// once they finished.
    ReloadUnits { units: Vec<String>, wait: bool },
    /// Send `signal` to a running unit's main process (`main`) or to every process of its
    /// cgroup.
    Kill {
        unit: String,
        signal: i32,
        main: bool,
    },
    /// Stop everything in order; the daemon exits after replying.
    Shutdown,
    /// Where a unit's log is, for `kennel logs` (the client reads the files itself).
    LogPath { unit: String },
    /// The daemon's directories (state, units, logs), for the commands that work on them
    /// directly (`kennel image|layer|commit`).
    Paths,
    /// As a machine's init: stop everything in order, then power off, reboot or halt.
    Power { action: PowerAction },
    /// Run a command in a running unit (its namespaces, cgroup, user, environment). The
    /// reply `exec_started` carries the client's ends of the process's stdio as
    /// SCM_RIGHTS: with `tty`, one PTY master; else stdin's write end (with
    /// `interactive`), stdout's and stderr's read ends. A second reply, `exec_exited`,
    /// follows when the process ends. Closing the connection sends SIGHUP to the session.
    Exec(ExecRequest),
    /// Freeze a running unit's cgroup (every process stops until `thaw`), for a
    /// consistent `kennel commit`. The daemon thaws it by itself after `thaw_after_ms`
    /// (default 60 s) should the client never ask.
    Freeze {
        unit: String,
        #[serde(default)]
        thaw_after_ms: Option<u64>,
    },
    /// Thaw a unit frozen by `freeze`.
    Thaw { unit: String },
    /// The bridge networks with their leases and members (`kennel network ls|inspect`):
    /// every one, or the one named.
    Networks {
        #[serde(default)]
        name: Option<String>,
    },
    /// CNI's CHECK of each running unit on a CNI network, or of those named
    /// (`kennel status --check`).
    NetCheck {
        #[serde(default)]
        units: Vec<String>,
    },
}

/// What an operator reads in kennel's log: the request's kind and its units (`start web db`,
/// `exec in web: sh -c 'ls /'`), not its fields.
impl std::fmt::Display for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let no_wait = |wait: &bool| if *wait { "" } else { " (no wait)" };
        match self {
            RequestBody::Status { unit: None } => write!(f, "status"),
            RequestBody::Status { unit: Some(u) } => write!(f, "status {u}"),
            RequestBody::Start { units, wait } => {
                write!(f, "start {}{}", units.join(" "), no_wait(wait))
            }
            RequestBody::Stop { units, wait } => {
                write!(f, "stop {}{}", units.join(" "), no_wait(wait))
            }
            RequestBody::Restart { units, wait } => {
                write!(f, "restart {}{}", units.join(" "), no_wait(wait))
            }
            RequestBody::Reload { wait } => write!(f, "reload{}", no_wait(wait)),
            RequestBody::ReloadUnits { units, wait } => {
                write!(f, "reload {}{}", units.join(" "), no_wait(wait))
            }
            RequestBody::Kill { unit, signal, main } => {
                let who = if *main { "main" } else { "all" };
                write!(f, "kill {unit} -s {signal} --{who}")
            }
            RequestBody::Shutdown => write!(f, "shutdown"),
            RequestBody::LogPath { unit } => write!(f, "logs {unit}"),
            RequestBody::Paths => write!(f, "paths"),
            RequestBody::NetCheck { units } if units.is_empty() => write!(f, "status --check"),
            RequestBody::NetCheck { units } => write!(f, "status --check {}", units.join(" ")),
            RequestBody::Networks { name: None } => write!(f, "networks"),
            RequestBody::Networks { name: Some(n) } => write!(f, "network {n}"),
            RequestBody::Power { action } => write!(f, "{}", action.name()),
            RequestBody::Exec(x) => {
                write!(f, "exec in {}", x.unit)?;
                if x.tty {
                    write!(f, " (terminal)")?;
                }
                if let Some(u) = &x.user {
                    write!(f, " as {u}")?;
                }
                write!(f, ":")?;
                for a in &x.argv {
                    write!(f, " {}", shell_word(a))?;
                }
                Ok(())
            }
            RequestBody::Freeze { unit, .. } => write!(f, "freeze {unit}"),
            RequestBody::Thaw { unit } => write!(f, "thaw {unit}"),
        }
    }
}

/// `a` as a shell would need it: as it is when plain, else in single quotes.
fn shell_word(a: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !a.is_empty() && a.chars().all(plain) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// What `kennel poweroff|reboot|halt` asks of a machine's init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    Poweroff,
    Reboot,
    Halt,
}

impl PowerAction {
    /// `poweroff`, `reboot`, `halt`: the command's name.
    pub fn name(self) -> &'static str {
        match self {
            PowerAction::Poweroff => "poweroff",
            PowerAction::Reboot => "reboot",
            PowerAction::Halt => "halt",
        }
    }
}

/// `kennel exec` options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExecRequest {
    pub unit: String,
    pub argv: Vec<String>,
    /// A PTY instead of pipes.
    #[serde(default)]
    pub tty: bool,
    /// Keep stdin open (else the process reads /dev/null).
    #[serde(default)]
    pub interactive: bool,
    /// Instead of the unit's user.
    #[serde(default)]
    pub user: Option<String>,
    /// Added to (and overriding) the unit's environment.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Instead of the unit's working directory.
    #[serde(default)]
    pub workdir: Option<String>,
    /// The terminal's size at start, with `tty`.
    #[serde(default)]
    pub rows: u16,
    #[serde(default)]
    pub cols: u16,
}

/// One reply line: `{"ok":{...}}` or `{"error":{"kind":"unknown_unit","message":"..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok(ReplyBody),
    Error(ProtoError),
}

/// The successful answer to each request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReplyBody {
    /// Status rows, name order.
    Status { units: Vec<StatusRow> },
    /// The request was carried out (or, without `wait`, accepted). `already`: the units of
    /// a `start` that were up already, or of a `stop` that had no process already, which it
    /// left as they were (omitted when none).
    Done {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        already: Vec<String>,
    },
    /// The reload's plan.
    Reloaded {
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
    },
    /// The current log file of a unit.
    LogPath { path: String },
    /// The daemon's `--state-dir`, `--units` and `--log-dir`, absolute.
    Paths {
        state_dir: String,
        units: String,
        log_dir: String,
    },
    /// Bridge networks, name order.
    Networks { networks: Vec<NetworkRow> },
    /// CNI CHECKs, unit name order.
    NetChecks { checks: Vec<NetCheck> },
    /// The exec'd process runs; its stdio came with this message.
    ExecStarted { pid: i32 },
    /// The exec'd process ended: `code` is its exit code (128+N for signal N), or the
    /// code of kennel's failure to run it (125 cannot join, 126 not executable, 127 not
    /// found) with `error` saying why.
    ExecExited { code: i32, error: Option<String> },
}

impl ReplyBody {
    /// `Done` with nothing left as it was.
    pub fn done() -> ReplyBody {
        ReplyBody::Done {
            already: Vec::new(),
        }
    }
}

/// One unit in a status reply: the core's status, and the cgroup's figures while the
/// unit has a process.
///
/// On the wire a row is one flat object: the status's fields, then `resources` and `execs`
/// when there are any. It is (de)serialized through [`FlatRow`] rather than with
/// `#[serde(flatten)]`, which makes serde buffer every row into an intermediate tree: at
/// 1,000 units that buffering was most of the client's time.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "FlatRow")]
pub struct StatusRow {
    pub status: UnitStatus,
    pub resources: Option<kennel_cgroups::Stats>,
    /// Pids of the `kennel exec` sessions running in the unit.
    pub execs: Vec<i32>,
    /// A container on a bridge network, while it runs: the network, its addresses, its
    /// published ports.
    pub network: Option<NetStatus>,
}

/// One bridge network in a `networks` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRow {
    pub name: String,
    /// Its file; `None` for the built-in `kennel` network.
    pub file: Option<String>,
    pub subnet: String,
    pub subnet6: Option<String>,
    pub gateway: String,
    pub gateway6: Option<String>,
    pub bridge: String,
    pub internal: bool,
    pub mtu: Option<u32>,
    /// Upstream name servers (`dns`); `None`: the host's.
    pub dns: Option<Vec<String>>,
    /// Every unit with a lease, name order: the members are those `running`.
    pub leases: Vec<LeaseRow>,
}

/// A unit's lease on a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRow {
    pub unit: String,
    pub addresses: Vec<String>,
    /// It is attached now (its container runs on the network).
    pub running: bool,
}

/// One unit's CNI CHECK (`kennel status --check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetCheck {
    pub unit: String,
    /// `cni:NAME`.
    pub network: String,
    /// What failed (the plugin's message); `None`: the CHECK passed.
    pub error: Option<String>,
}

/// A running container's place on its network, in a status row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetStatus {
    /// The network's name (`kennel`, `backend`).
    pub name: String,
    /// Its addresses, IPv4 first.
    pub addresses: Vec<String>,
    /// Its published ports, as written in `ports` (`8080:80/tcp`).
    pub ports: Vec<String>,
}

/// A [`StatusRow`] as it is on the wire. Same fields, same order as [`UnitStatus`]
/// (`status_row_is_the_status_flattened` checks it).
#[derive(Deserialize)]
struct FlatRow {
    name: String,
    state: State,
    pid: Option<Pid>,
    uptime: Option<Duration>,
    restarts: u32,
    last_exit: Option<ExitStatus>,
    ready: bool,
    health: Option<HealthState>,
    detail: String,
    #[serde(default)]
    resources: Option<kennel_cgroups::Stats>,
    #[serde(default)]
    execs: Vec<i32>,
    #[serde(default)]
    network: Option<NetStatus>,
}

impl From<FlatRow> for StatusRow {
    fn from(f: FlatRow) -> Self {
        StatusRow {
            status: UnitStatus {
                name: f.name,
                state: f.state,
                pid: f.pid,
                uptime: f.uptime,
                restarts: f.restarts,
                last_exit: f.last_exit,
                ready: f.ready,
                health: f.health,
                detail: f.detail,
            },
            resources: f.resources,
            execs: f.execs,
            network: f.network,
        }
    }
}

/// The borrowed twin of [`FlatRow`], for serializing without copies.
#[derive(Serialize)]
struct FlatRowRef<'a> {
    name: &'a str,
    state: State,
    pid: Option<Pid>,
    uptime: Option<Duration>,
    restarts: u32,
    last_exit: Option<ExitStatus>,
    ready: bool,
    health: Option<HealthState>,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: &'a Option<kennel_cgroups::Stats>,
    #[serde(skip_serializing_if = "<[i32]>::is_empty")]
    execs: &'a [i32],
    #[serde(skip_serializing_if = "Option::is_none")]
    network: &'a Option<NetStatus>,
}

impl Serialize for StatusRow {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let s = &self.status;
        FlatRowRef {
            name: &s.name,
            state: s.state,
            pid: s.pid,
            uptime: s.uptime,
            restarts: s.restarts,
            last_exit: s.last_exit,
            ready: s.ready,
            health: s.health,
            detail: &s.detail,
            resources: &self.resources,
            execs: &self.execs,
            network: &self.network,
        }
        .serialize(ser)
    }
}

/// Writes the reply to a status request (`{"ok":{"type":"status","units":[...]}}` and its
/// newline) row by row, as the rows are made: no list of rows in between, and each row's
/// strings are freed (and reused) right after it is written. The bytes are those of
/// `Reply::Ok(ReplyBody::Status { units })`.
pub struct StatusEncoder {
    buf: Vec<u8>,
    rows: usize,
}

/// How a status reply line starts, up to its array of rows: the daemon writes exactly
/// these bytes (through [`StatusEncoder`], or serde for `Reply::Ok(ReplyBody::Status)`),
/// which lets the client stream the rows out as they come.
pub const STATUS_HEAD: &[u8] = br#"{"ok":{"type":"status","units":"#;
/// How it ends, after the array.
pub const STATUS_TAIL: &[u8] = b"}}\n";

impl StatusEncoder {
    /// For about `rows` rows (the buffer is sized for them; more only cost a reallocation).
    pub fn new(rows: usize) -> StatusEncoder {
        let mut buf = Vec::with_capacity(STATUS_HEAD.len() + STATUS_TAIL.len() + 320 * rows);
        buf.extend_from_slice(STATUS_HEAD);
        buf.push(b'[');
        StatusEncoder { buf, rows: 0 }
    }

    /// Appends one row: the same bytes as serde's encoding of [`StatusRow`] (tested), with
    /// the keys written as they are rather than escaped one by one (a third of the encoding
    /// time at 1,000 rows).
    pub fn push(&mut self, row: &StatusRow) {
        if self.rows > 0 {
            self.buf.push(b',');
        }
        self.rows += 1;
        let start = self.buf.len();
        if let Err(e) = self.row(row) {
            // Writing into a Vec fails only if a Serialize impl fails, and these cannot.
            tracing::error!(unit = %row.status.name, "encoding a status row: {e}");
            self.buf.truncate(start);
            self.buf.extend_from_slice(b"null");
        }
    }

    fn row(&mut self, row: &StatusRow) -> Result<(), serde_json::Error> {
        let s = &row.status;
        let b = &mut self.buf;
        b.extend_from_slice(br#"{"name":"#);
        serde_json::to_writer(&mut *b, &s.name)?;
        b.extend_from_slice(br#","state":"#);
        serde_json::to_writer(&mut *b, &s.state)?;
        b.extend_from_slice(br#","pid":"#);
        serde_json::to_writer(&mut *b, &s.pid)?;
        b.extend_from_slice(br#","uptime":"#);
        match s.uptime {
            Some(d) => {
                b.extend_from_slice(br#"{"secs":"#);
                serde_json::to_writer(&mut *b, &d.as_secs())?;
                b.extend_from_slice(br#","nanos":"#);
                serde_json::to_writer(&mut *b, &d.subsec_nanos())?;
                b.push(b'}');
            }
            None => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(br#","restarts":"#);
        serde_json::to_writer(&mut *b, &s.restarts)?;
        b.extend_from_slice(br#","last_exit":"#);
        serde_json::to_writer(&mut *b, &s.last_exit)?;
        b.extend_from_slice(if s.ready {
            br#","ready":true,"health":"#
        } else {
            br#","ready":false,"health":"#
        });
        serde_json::to_writer(&mut *b, &s.health)?;
        b.extend_from_slice(br#","detail":"#);
        serde_json::to_writer(&mut *b, &s.detail)?;
        if let Some(r) = &row.resources {
            b.extend_from_slice(br#","resources":{"memory_current":"#);
            serde_json::to_writer(&mut *b, &r.memory_current)?;
            b.extend_from_slice(br#","memory_peak":"#);
            serde_json::to_writer(&mut *b, &r.memory_peak)?;
            b.extend_from_slice(br#","cpu_usage_ns":"#);
            serde_json::to_writer(&mut *b, &r.cpu_usage_ns)?;
            b.extend_from_slice(br#","tasks":"#);
            serde_json::to_writer(&mut *b, &r.tasks)?;
            b.push(b'}');
        }
        if !row.execs.is_empty() {
            b.extend_from_slice(br#","execs":"#);
            serde_json::to_writer(&mut *b, &row.execs)?;
        }
        if let Some(n) = &row.network {
            b.extend_from_slice(br#","network":"#);
            serde_json::to_writer(&mut *b, n)?;
        }
        b.push(b'}');
        Ok(())
    }

    /// The reply line.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(b']');
        self.buf.extend_from_slice(STATUS_TAIL);
        self.buf
    }
}

/// The reply to a status request, read without going through [`Reply`]: `ReplyBody` is an
/// internally tagged enum, for which serde buffers the whole body (every row) before
/// reading it. The client tries this first and falls back to [`Reply`] (an error, or a
/// reply it did not expect).
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReply {
    Ok(StatusUnits),
}

/// `{"type":"status","units":[...]}`.
#[derive(Deserialize)]
pub struct StatusUnits {
    #[serde(rename = "type")]
    _type: StatusTag,
    pub units: Vec<StatusRow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum StatusTag {
    Status,
}

/// A typed error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ProtoError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The kinds of error a reply can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Not valid JSON, or not a known request.
    BadRequest,
    /// The request line is longer than [`MAX_REQUEST_BYTES`].
    TooLarge,
    /// The request's protocol version is not [`PROTOCOL_VERSION`].
    Version,
    /// The peer is not root.
    PermissionDenied,
    /// No such unit.
    UnknownUnit,
    /// The unit has no running process (for `exec`).
    NotRunning,
    /// A unit failed instead of reaching the asked state.
    UnitFailed,
    /// The daemon is shutting down.
    ShuttingDown,
    /// `reload` found invalid unit files; the message lists every problem.
    InvalidUnits,
    /// No network of that name.
    UnknownNetwork,
}

impl ProtoError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProtoError {
            kind,
            message: message.into(),
        }
    }
}

impl From<CommandError> for ProtoError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::UnknownUnit { unit } => {
                ProtoError::new(ErrorKind::UnknownUnit, format!("unknown unit {unit:?}"))
            }
            CommandError::UnitFailed { unit, reason } => ProtoError::new(
                ErrorKind::UnitFailed,
                format!("unit {unit} failed: {reason}"),
            ),
            CommandError::ShuttingDown => {
                ProtoError::new(ErrorKind::ShuttingDown, "kennel is shutting down")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_format() {
        let r = Request {
            version: 1,
            body: RequestBody::Start {
                units: vec!["web".into()],
                wait: true,
            },
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"version":1,"cmd":"start","units":["web"],"wait":true}"#
        );
        let back: Request = serde_json::from_str(&s).unwrap();
        assert!(matches!(back.body, RequestBody::Start { wait: true, .. }));
    }

    fn row(resources: Option<kennel_cgroups::Stats>, execs: Vec<i32>) -> StatusRow {
        StatusRow {
            status: UnitStatus {
                name: "web".into(),
                state: State::Up,
                pid: Some(42),
                uptime: Some(Duration::from_millis(1500)),
                restarts: 2,
                last_exit: Some(ExitStatus::Signal(9)),
                ready: true,
                health: Some(HealthState::Healthy),
                detail: "a \"detail\"".into(),
            },
            resources,
            execs,
            network: None,
        }
    }

    #[test]
    fn status_row_is_the_status_flattened() {
        let stats = kennel_cgroups::Stats {
            memory_current: Some(1),
            memory_peak: None,
            cpu_usage_ns: Some(3),
            tasks: Some(4),
        };
        let mut on_net = row(None, vec![]);
        on_net.network = Some(NetStatus {
            name: "kennel".into(),
            addresses: vec!["10.89.0.2".into()],
            ports: vec!["8080:80/tcp".into()],
        });
        for r in [row(None, vec![]), row(Some(stats), vec![7, 8]), on_net] {
            let mut want = serde_json::to_value(&r.status).unwrap();
            let obj = want.as_object_mut().unwrap();
            if let Some(s) = &r.resources {
                obj.insert("resources".into(), serde_json::to_value(s).unwrap());
            }
            if !r.execs.is_empty() {
                obj.insert("execs".into(), serde_json::to_value(&r.execs).unwrap());
            }
            if let Some(n) = &r.network {
                obj.insert("network".into(), serde_json::to_value(n).unwrap());
            }
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&text).unwrap(),
                want
            );
            let back: StatusRow = serde_json::from_str(&text).unwrap();
            assert_eq!(back.status, r.status);
            assert_eq!(back.resources, r.resources);
            assert_eq!(back.execs, r.execs);
            assert_eq!(back.network, r.network);
        }
    }

    #[test]
    fn status_reply_reads_the_generic_reply() {
        let reply = Reply::Ok(ReplyBody::Status {
            units: vec![row(None, vec![1])],
        });
        let text = serde_json::to_string(&reply).unwrap();
        let StatusReply::Ok(s) = serde_json::from_str(&text).unwrap();
        assert_eq!(s.units.len(), 1);
        assert_eq!(s.units[0].execs, vec![1]);
        let units = serde_json::to_string(&[row(None, vec![1])]).unwrap();
        assert_eq!(
            text,
            format!("{}{units}}}}}", String::from_utf8_lossy(STATUS_HEAD))
        );
        let done = serde_json::to_string(&Reply::Ok(ReplyBody::done())).unwrap();
        assert!(serde_json::from_str::<StatusReply>(&done).is_err());
    }

    #[test]
    fn status_encoder_writes_the_reply() {
        let stats = kennel_cgroups::Stats {
            memory_current: Some(u64::MAX),
            memory_peak: None,
            cpu_usage_ns: Some(3),
            tasks: Some(0),
        };
        let mut stopped = row(None, vec![]);
        stopped.status.pid = None;
        stopped.status.uptime = None;
        stopped.status.last_exit = Some(ExitStatus::Code(3));
        stopped.status.ready = false;
        stopped.status.state = State::Failed;
        stopped.status.health = None;
        stopped.status.detail = "ünïcode \u{1} \\ \"x\"".into();
        let mut plain = row(Some(stats), vec![]);
        plain.status.last_exit = None;
        plain.status.health = Some(HealthState::Unknown);
        let mut on_net = row(None, vec![]);
        on_net.network = Some(NetStatus {
            name: "kennel".into(),
            addresses: vec!["10.89.0.2".into(), "fd00::2".into()],
            ports: vec![],
        });
        let samples = [row(None, vec![1, 2]), stopped, plain, on_net];
        for n in 0..=samples.len() {
            let units: Vec<StatusRow> = samples[..n].to_vec();
            let mut enc = StatusEncoder::new(1);
            for r in &units {
                enc.push(r);
            }
            let mut want = serde_json::to_vec(&Reply::Ok(ReplyBody::Status { units })).unwrap();
            want.push(b'\n');
            assert_eq!(
                String::from_utf8(enc.finish()).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }

    #[test]
    fn requests_read_as_an_operator_would_type_them() {
        let exec = RequestBody::Exec(ExecRequest {
            unit: "web".into(),
            argv: vec!["sh".into(), "-c".into(), "echo it's $HOME".into()],
            tty: true,
            rows: 24,
            cols: 80,
            ..ExecRequest::default()
        });
        assert_eq!(
            exec.to_string(),
            r#"exec in web (terminal): sh -c 'echo it'\''s $HOME'"#
        );
        let start = RequestBody::Start {
            units: vec!["web".into(), "db".into()],
            wait: true,
        };
        assert_eq!(start.to_string(), "start web db");
        let stop = RequestBody::Stop {
            units: vec!["web".into()],
            wait: false,
        };
        assert_eq!(stop.to_string(), "stop web (no wait)");
        let power = RequestBody::Power {
            action: PowerAction::Reboot,
        };
        assert_eq!(power.to_string(), "reboot");
        let freeze = RequestBody::Freeze {
            unit: "web".into(),
            thaw_after_ms: Some(5),
        };
        assert_eq!(freeze.to_string(), "freeze web");
    }

    #[test]
    fn reply_wire_format() {
        let ok = serde_json::to_string(&Reply::Ok(ReplyBody::done())).unwrap();
        assert_eq!(ok, r#"{"ok":{"type":"done"}}"#);
        let already = Reply::Ok(ReplyBody::Done {
            already: vec!["web".into()],
        });
        let text = serde_json::to_string(&already).unwrap();
        assert_eq!(text, r#"{"ok":{"type":"done","already":["web"]}}"#);
        let back: Reply = serde_json::from_str(r#"{"ok":{"type":"done"}}"#).unwrap();
        assert!(matches!(back, Reply::Ok(ReplyBody::Done { already }) if already.is_empty()));
        let err = Reply::Error(ProtoError::new(
            ErrorKind::UnknownUnit,
            "unknown unit \"x\"",
        ));
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"error":{"kind":"unknown_unit","message":"unknown unit \"x\""}}"#
        );
    }
}
