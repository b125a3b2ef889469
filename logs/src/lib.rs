//! kennel's log capture: services' stdout and stderr into rotated files, and reading them back.
//!
//! The daemon starts a [`LogHub`] once ([`LogHub::start`]) and, for every service it
//! starts, hands it the read ends of the service's stdout and stderr pipes
//! ([`LogHub::attach`]). Each pipe gets a tokio reader task that splits the bytes into
//! lines and sends them over a bounded channel to one dedicated writer thread, which does
//! all file I/O. A service that writes faster than the disk fills the channel; its reader
//! then waits, the pipe fills, and the service blocks in `write(2)`: the event loop never
//! does. The daemon adds its own records with [`LogHub::system`].
//!
//! ```no_run
//! # async fn demo(stdout: std::os::fd::OwnedFd, stderr: std::os::fd::OwnedFd)
//! # -> Result<(), kennel_logs::LogError> {
//! use kennel_logs::LogHub;
//!
//! let hub = LogHub::start("/var/log/kennel".as_ref(), true)?;
//! let cfg = kennel_units::Logs::default(); // the unit's `[logs]`
//! hub.system("web", &cfg, "started pid 42");
//! let capture = hub.attach("web", &cfg, stdout, stderr);
//! // ... the service exits; its last lines may still be in the pipe:
//! capture.wait().await;
//! hub.system("web", &cfg, "exited with code 0");
//! hub.close().await; // everything written, files flushed, thread joined
//! # Ok(()) }
//! ```
//!
//! # The log format
//!
//! `LOG_DIR/NAME.log` ([`log_path`]) holds one record per line:
//!
//! ```text
//! 2026-11-28T01:02:03.456Z stdout listening on :8080
//! 2026-11-28T01:02:03.457Z stderr warning: no config, using defaults
//! 2026-11-28T01:02:09.001Z kennel exited with code 3
//! ```
//!
//! The timestamp is RFC 3339 UTC with milliseconds, taken when the line was read; the
//! stream is `stdout`, `stderr` or `kennel` (system records); the line is the service's
//! bytes as they are (not necessarily UTF-8; a `\r` before the `\n` is kept). A line longer
//! than 64 KiB ([`MAX_LINE`]) is written as several records of 64 KiB; a last line without
//! `\n` is written at EOF.
//!
//! # Rotation
//!
//! Before a record would make `NAME.log` exceed `max_size`, the files shift:
//! `NAME.log` -> `NAME.log.1` -> ... -> `NAME.log.KEEP`, the oldest is deleted (`keep = 0`:
//! `NAME.log` is deleted and started over). A record longer than `max_size` goes alone into
//! a fresh file. An existing `NAME.log` is appended to, its size counting.
//!
//! # Reading back
//!
//! [`read_last_lines`] (`kennel logs -n N`) and [`follow`] (`kennel logs -f`) read the
//! files directly; they need no running hub.

mod error;
mod follow;
mod hub;
mod reader;
mod rotate;
mod split;
mod tail;
mod time;
mod writer;

use std::path::{Path, PathBuf};

pub use error::LogError;
pub use follow::follow;
pub use hub::{Capture, LogHub};
pub use split::MAX_LINE;
pub use tail::read_last_lines;
pub use time::format_rfc3339_millis;

/// `DIR/NAME.log`: the current log of unit `unit`.
pub fn log_path(dir: &Path, unit: &str) -> PathBuf {
    dir.join(format!("{unit}.log"))
}
