//! Small cgroupfs file helpers: read/write a control file, create a directory chain,
//! list processes (recursively), each error naming the path.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::CgroupError;

/// Reads a control file, trimmed.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .map_err(|source| CgroupError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// Reads a control file, `None` when it is missing or unreadable (best-effort readers).
pub(crate) fn read_opt(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Reads a control file holding one number, `None` when missing or not a number.
pub(crate) fn read_u64_opt(path: &Path) -> Option<u64> {
    read_opt(path)?.parse().ok()
}

/// Writes each of `values` to a control file in one `write(2)` each (the kernel parses
/// per write), through one open file.
pub(crate) fn write_each<'a>(
    path: &Path,
    values: impl IntoIterator<Item = &'a str>,
) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    for v in values {
        file.write_all(v.as_bytes()).map_err(err)?;
    }
    Ok(())
}

/// Writes `value` to a control file in one `write(2)` (the kernel parses per write). The
/// file must exist: cgroupfs files cannot be created, so a missing one is an error here too.
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    write_each(path, [value])
}

/// Creates `dir` and any missing ancestors below `stop` (which must exist); returns the
/// directories it created, outermost first.
pub(crate) fn mkdir_chain(stop: &Path, dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    // The common case in one call: the parent exists (a unit's cgroup under its prepared
    // parent). Every path walk in cgroupfs costs; a start makes ten of these.
    match fs::create_dir(dir) {
        Ok(()) => return Ok(vec![dir.to_path_buf()]),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(Vec::new()),
        Err(_) => {}
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while cur != stop && !cur.is_dir() {
        missing.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    missing.reverse();
    let mut created = Vec::new();
    for d in missing {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(CgroupError::Mkdir { path: d, source }),
        }
    }
    Ok(created)
}

/// The sub-cgroups (child directories) of `dir`, sorted by name; empty if `dir` is missing.
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CgroupError::Read {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The pids in `dir/cgroup.procs` and in every sub-cgroup's, appended to `out`. A missing
/// directory (already removed, or never created in that hierarchy) contributes nothing.
pub(crate) fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let path = dir.join("cgroup.procs");
    match fs::read_to_string(&path) {
        Ok(text) => out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        // Gone between the check and the read: it had no processes.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CgroupError::Read { path, source }),
    }
    for sub in subdirs(dir)? {
        procs_recursive(&dir.join(sub), out)?;
    }
    Ok(())
}

/// Removes `dir` after its sub-cgroups (deepest first); a missing directory is fine. The
/// kernel may keep a just-emptied cgroup busy for a moment, so EBUSY is retried for at
/// most `patience` per directory (zero: not at all).
pub(crate) fn rmdir_tree_within(dir: &Path, patience: Duration) -> Result<(), CgroupError> {
    for sub in subdirs(dir)? {
        rmdir_tree_within(&dir.join(sub), patience)?;
    }
    let deadline = Instant::now() + patience;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        }
    }
}

/// Polls `done` with a growing pause (1 ms .. 20 ms) until it holds or `limit` passes;
/// returns whether it held.
pub(crate) fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Writes `value` to `dir/file`; with no value, puts the kernel default back, but only
/// if the file exists (so a limit dropped from a unit file is lifted on re-apply, and a
/// missing controller is not an error when the unit asks nothing of it), and not in a
/// `fresh` cgroup, which has the defaults.
pub(crate) fn set_or_reset(
    dir: &Path,
    file: &str,
    value: Option<String>,
    default: &str,
    fresh: bool,
) -> Result<(), CgroupError> {
    let path = dir.join(file);
    match value {
        Some(v) => write(&path, &v),
        None if fresh => Ok(()),
        None if path.exists() => write(&path, default),
        None => Ok(()),
    }
}
