//! The control protocol: newline-delimited JSON requests and replies, shared by the daemon
//! and the client. This is a public interface, documented in `docs/control.md`.

use kennel_core::{CommandError, UnitStatus};
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
    /// Stop everything in order; the daemon exits after replying.
    Shutdown,
    /// Where a unit's log is, for `kennel logs` (the client reads the files itself).
    LogPath { unit: String },
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
}

/// What `kennel poweroff|reboot|halt` asks of a machine's init.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    Poweroff,
    Reboot,
    Halt,
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
    /// The request was carried out (or, without `wait`, accepted).
    Done,
    /// The reload's plan.
    Reloaded {
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
    },
    /// The current log file of a unit.
    LogPath { path: String },
    /// The exec'd process runs; its stdio came with this message.
    ExecStarted { pid: i32 },
    /// The exec'd process ended: `code` is its exit code (128+N for signal N), or the
    /// code of kennel's failure to run it (125 cannot join, 126 not executable, 127 not
    /// found) with `error` saying why.
    ExecExited { code: i32, error: Option<String> },
}

/// One unit in a status reply: the core's status, and the cgroup's figures while the
/// unit has a process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusRow {
    #[serde(flatten)]
    pub status: UnitStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<kennel_cgroups::Stats>,
    /// Pids of the `kennel exec` sessions running in the unit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub execs: Vec<i32>,
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

    #[test]
    fn reply_wire_format() {
        let ok = serde_json::to_string(&Reply::Ok(ReplyBody::Done)).unwrap();
        assert_eq!(ok, r#"{"ok":{"type":"done"}}"#);
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
