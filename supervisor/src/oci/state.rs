//! Container state under `--root`: `ROOT/ID/state.json`, the start gate `ROOT/ID/exec.fifo`
//! while the container is created and not started, and a lock (flock on `ROOT/ID`) that
//! serialises the commands on one container.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '-', '.' and '+'")]
    BadId(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What kennel keeps of a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    /// The container process on the host.
    pub pid: i32,
    /// Its start time (field 22 of /proc/PID/stat): a pid reused later is not it.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    /// The cgroup: the `--cgroup-parent`-like parent and the name under it.
    pub cgroup_parent: String,
    pub cgroup_name: String,
    /// The hooks to run at start and delete.
    #[serde(default)]
    pub hooks: super::hooks::Hooks,
}

impl Saved {
    /// The state JSON of the runtime spec (what `state` prints and hooks read).
    pub fn spec_state(&self, status: &str) -> serde_json::Value {
        serde_json::json!({
            "ociVersion": super::OCI_VERSION,
            "id": self.id,
            "status": status,
            "pid": if status == "stopped" { 0 } else { self.pid },
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
            "annotations": self.annotations,
        })
    }
}

/// A container's directory, locked for the life of this value.
pub struct Locked {
    pub dir: PathBuf,
    _lock: std::fs::File,
}

fn check_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId(id.to_string()))
    }
}

fn lock(dir: &Path) -> Result<std::fs::File, StateError> {
    let f = std::fs::File::open(dir).map_err(io(dir))?;
    // SAFETY: flock on a descriptor this function owns; released when it is closed.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io(dir)(std::io::Error::last_os_error()));
    }
    Ok(f)
}

impl Locked {
    /// Makes `ROOT/ID` (refused if it exists) and locks it.
    pub fn create(root: &Path, id: &str) -> Result<Locked, StateError> {
        check_id(id)?;
        std::fs::create_dir_all(root).map_err(io(root))?;
        let dir = root.join(id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_string()))
            }
            Err(e) => return Err(io(&dir)(e)),
        }
        let lock = lock(&dir)?;
        Ok(Locked { dir, _lock: lock })
    }

    /// Locks the existing `ROOT/ID`.
    pub fn open(root: &Path, id: &str) -> Result<Locked, StateError> {
        check_id(id)?;
        let dir = root.join(id);
        let lock = match lock(&dir) {
            Ok(l) => l,
            Err(StateError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(id.to_string()))
            }
            Err(e) => return Err(e),
        };
        if !dir.join("state.json").exists() {
            return Err(StateError::NotFound(id.to_string()));
        }
        Ok(Locked { dir, _lock: lock })
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    pub fn save(&self, s: &Saved) -> Result<(), StateError> {
        let path = self.dir.join("state.json");
        let tmp = self.dir.join("state.json.tmp");
        let text = serde_json::to_vec_pretty(s).map_err(|source| StateError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    pub fn load(&self) -> Result<Saved, StateError> {
        let path = self.dir.join("state.json");
        let text = std::fs::read(&path).map_err(io(&path))?;
        serde_json::from_slice(&text).map_err(|source| StateError::Json { path, source })
    }

    /// Removes the directory (the lock goes with this value).
    pub fn remove(self) -> Result<(), StateError> {
        std::fs::remove_dir_all(&self.dir).map_err(io(&self.dir))
    }
}

/// The state (field 3) and start time (field 22) of `/proc/PID/stat`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command is in parentheses and may hold spaces: fields after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// created, running, paused (its cgroup frozen) or stopped.
pub fn status(dir: &Path, s: &Saved) -> &'static str {
    match proc_stat(s.pid) {
        Some((st, start)) if st != 'Z' && st != 'X' && start == s.start_time => {
            if dir.join("exec.fifo").exists() {
                "created"
            } else if super::cgroup::existing(&s.cgroup_parent, &s.cgroup_name)
                .is_some_and(|u| u.frozen())
            {
                "paused"
            } else {
                "running"
            }
        }
        _ => "stopped",
    }
}

/// The ids under `root`.
pub fn ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .filter_map(|e| e.file_name().to_str().map(String::from))
        .collect();
    ids.sort();
    ids
}
