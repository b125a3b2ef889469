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
}

/// One unit in a status reply: the core's status, and the cgroup's figures while the
/// unit has a process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusRow {
    #[serde(flatten)]
    pub status: UnitStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<kennel_cgroups::Stats>,
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
