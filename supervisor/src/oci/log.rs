//! The runtime's log: `--log FILE` (else stderr), `--log-format text|json`. conmon and
//! containerd's shim read the last error from a json log (`{"level","msg","time"}`), as
//! runc writes it. Errors always go to stderr too.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the log cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("--log-format {0:?}: use text or json")]
    Format(String),
    #[error("--log {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub struct Log {
    file: Option<std::fs::File>,
    json: bool,
    debug: bool,
}

impl Log {
    pub fn open(path: Option<&Path>, format: &str, debug: bool) -> Result<Log, LogError> {
        let json = match format {
            "text" => false,
            "json" => true,
            other => return Err(LogError::Format(other.to_string())),
        };
        let file = path
            .map(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|source| LogError::Open {
                        path: p.to_path_buf(),
                        source,
                    })
            })
            .transpose()?;
        Ok(Log { file, json, debug })
    }

    fn line(&self, level: &str, msg: &str) -> String {
        let time = kennel_logs::format_rfc3339_millis(std::time::SystemTime::now());
        if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("{time} {level}: {msg}")
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let line = self.line(level, msg);
        match &self.file {
            Some(f) => {
                let _ = writeln!(&*f, "{line}");
            }
            None => eprintln!("{line}"),
        }
    }

    /// An error: to the log, and (as text) to stderr when the log is a file.
    pub fn error(&self, msg: &str) {
        self.write("error", msg);
        if self.file.is_some() {
            eprintln!("kennel oci: {msg}");
        }
    }

    /// A warning (a poststart or poststop hook that failed).
    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
    }

    /// A debug message (with `--debug` only).
    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
        }
    }
}
