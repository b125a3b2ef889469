//! Hooks run by the runtime, in its own namespaces, with the container's state JSON on
//! stdin: `prestart` and `createRuntime` once the container is created (a failure fails
//! the create), `poststart` after `start`, `poststop` at `delete` (a failure of these two
//! is logged and the rest go on). `createContainer` and `startContainer` (which run
//! inside the container) are refused by config.rs.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A hook as config.json gives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hook {
    pub path: std::path::PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds.
    #[serde(default)]
    pub timeout: Option<i64>,
}

/// The hooks kennel runs, from config.json's `hooks`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hooks {
    #[serde(default)]
    pub prestart: Vec<Hook>,
    #[serde(default)]
    pub create_runtime: Vec<Hook>,
    #[serde(default)]
    pub poststart: Vec<Hook>,
    #[serde(default)]
    pub poststop: Vec<Hook>,
}

impl Hooks {
    pub fn of(spec: &oci_spec::runtime::Spec) -> Hooks {
        let Some(h) = spec.hooks() else {
            return Hooks::default();
        };
        let list = |l: &Option<Vec<oci_spec::runtime::Hook>>| -> Vec<Hook> {
            l.iter()
                .flatten()
                .map(|h| Hook {
                    path: h.path().clone(),
                    args: h.args().clone().unwrap_or_default(),
                    env: h.env().clone().unwrap_or_default(),
                    timeout: h.timeout(),
                })
                .collect()
        };
        Hooks {
            prestart: list(h.prestart()),
            create_runtime: list(h.create_runtime()),
            poststart: list(h.poststart()),
            poststop: list(h.poststop()),
        }
    }
}

/// Runs `hooks` in order, each given `state` on stdin; the first failure is returned.
pub fn run(kind: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<(), String> {
    for h in hooks {
        run_one(h, state).map_err(|e| format!("{kind} hook {}: {e}", h.path.display()))?;
    }
    Ok(())
}

/// Runs each of `hooks`, logging (not returning) failures.
pub fn run_all(kind: &str, hooks: &[Hook], state: &serde_json::Value, log: &super::log::Log) {
    for h in hooks {
        if let Err(e) = run_one(h, state) {
            log.warn(&format!("{kind} hook {}: {e}", h.path.display()));
        }
    }
}

fn run_one(h: &Hook, state: &serde_json::Value) -> Result<(), String> {
    let mut cmd = Command::new(&h.path);
    if let Some((arg0, rest)) = h.args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for kv in &h.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is no failure (EPIPE).
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = h
        .timeout
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(st) if st.success() => return Ok(()),
            Some(st) => return Err(format!("ended with {st}")),
            None => {}
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", h.timeout.unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
