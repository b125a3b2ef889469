//! Running one plugin: its configuration on stdin, the CNI_* variables, its result or
//! error on stdout, killed (with everything in its process group) after a timeout. This runs
//! in `kennel cni`, a process of its own, never in the daemon (which has the one reaper).

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// What one call of a plugin needs besides its configuration.
pub struct Env<'a> {
    /// ADD, CHECK or DEL.
    pub command: &'static str,
    pub container_id: &'a str,
    pub netns: &'a Path,
    pub ifname: &'a str,
    /// CNI_ARGS, already joined (`K=V;K=V`).
    pub args: &'a str,
    /// CNI_PATH, already joined (`DIR:DIR`).
    pub path: &'a str,
    pub timeout: Duration,
}

/// Why a plugin call failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The plugin's own error on stdout (spec: "Error" object).
    #[error("error {code} ({}): {msg}{}", meaning(*.code),
        .details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Reported {
        code: u64,
        msg: String,
        details: Option<String>,
    },
    #[error("exited with {status} and no error on stdout{}", stderr_tail(.stderr))]
    Failed { status: String, stderr: String },
    #[error("still running after {0:?}: killed")]
    Timeout(Duration),
    #[error("exited, but what it started still held its stdout after {0:?}: killed")]
    StdoutHeld(Duration),
    #[error("start {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    #[error("its output is not JSON ({err}): {out:?}")]
    BadOutput { err: String, out: String },
    #[error("{0}")]
    BadResult(String),
    #[error("no result on stdout (a plugin must print one on ADD)")]
    NoResult,
}

/// The spec's well-known error codes.
fn meaning(code: u64) -> &'static str {
    match code {
        1 => "incompatible CNI version",
        2 => "unsupported field in network configuration",
        3 => "container unknown or does not exist",
        4 => "invalid necessary environment variables",
        5 => "I/O failure",
        6 => "failed to decode content",
        7 => "invalid network config",
        11 => "try again later",
        50 => "plugin not available",
        51 => "plugin not available, limited connectivity",
        100.. => "plugin-specific",
        _ => "reserved",
    }
}

fn stderr_tail(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        return String::new();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(400)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("; stderr: {tail}")
}

/// Runs the plugin at `exe` with `conf` on stdin; its stdout parsed as JSON (None when
/// empty), or its error.
pub fn run(exe: &Path, conf: &Value, env: &Env) -> Result<Option<Value>, PluginError> {
    let mut cmd = Command::new(exe);
    cmd.env("CNI_COMMAND", env.command)
        .env("CNI_CONTAINERID", env.container_id)
        .env("CNI_NETNS", env.netns)
        .env("CNI_IFNAME", env.ifname)
        .env("CNI_ARGS", env.args)
        .env("CNI_PATH", env.path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills what it started too.
        .process_group(0);
    let spawn = |source| PluginError::Spawn {
        path: exe.display().to_string(),
        source,
    };
    // ETXTBSY: the file is still open for writing somewhere (a plugin being installed, or a
    // test's script while another thread forks); that passes.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 5 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => break r.map_err(spawn)?,
        }
    };
    let pid = child.id() as i32;
    let input = serde_json::to_vec(conf).unwrap_or_default();
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    // A plugin that does not read its stdin gets EPIPE here, which is its business.
    std::thread::spawn(move || {
        if let Some(mut s) = stdin {
            let _ = s.write_all(&input);
        }
    });
    // Each pipe is read to its end in a thread of its own, which sends what it read.
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send(buf);
        });
        rx
    };
    let out = read(stdout.map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = read(stderr.map(|s| Box::new(s) as Box<dyn Read + Send>));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let deadline = Instant::now() + env.timeout;
    let kill = || {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    let status = match rx.recv_timeout(env.timeout) {
        Ok(s) => s,
        Err(_) => {
            kill();
            let _ = rx.recv();
            return Err(PluginError::Timeout(env.timeout));
        }
    };
    let status = status.map_err(spawn)?;
    // The pipes end with the plugin, unless something it started keeps them open: that is
    // killed with its process group once the time is up.
    let left = || deadline.saturating_duration_since(Instant::now());
    let out = match out.recv_timeout(left()) {
        Ok(out) => out,
        Err(_) => {
            kill();
            return Err(PluginError::StdoutHeld(env.timeout));
        }
    };
    let err = err.recv_timeout(left()).unwrap_or_default();
    let err = String::from_utf8_lossy(&err).into_owned();
    if !err.trim().is_empty() {
        tracing::debug!(plugin = %exe.display(), stderr = %err.trim(), "plugin stderr");
    }
    let text = String::from_utf8_lossy(&out);
    let parsed: Option<Value> = if text.trim().is_empty() {
        None
    } else {
        match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) if status.success() => {
                return Err(PluginError::BadOutput {
                    err: e.to_string(),
                    out: text.chars().take(400).collect(),
                })
            }
            Err(_) => None,
        }
    };
    if status.success() {
        return Ok(parsed);
    }
    if let Some(Value::Object(e)) = &parsed {
        if let Some(code) = e.get("code").and_then(Value::as_u64) {
            return Err(PluginError::Reported {
                code,
                msg: e
                    .get("msg")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                details: e
                    .get("details")
                    .and_then(Value::as_str)
                    .filter(|d| !d.is_empty())
                    .map(str::to_string),
            });
        }
    }
    Err(PluginError::Failed {
        status: status.to_string(),
        stderr: if text.trim().is_empty() {
            err
        } else {
            format!("{err}\nstdout: {text}")
        },
    })
}
