//! Tests that watch the host's state and tests that legitimately change it never run at the
//! same time. The escape tests compare the host before and after (files, mounts, the host's
//! /dev/null, whose ctime any `fchown` of it moves); the benchmark runs crun and runc, which
//! `fchown(fd, -1, -1)` their stdio (the host's /dev/null) and so move that ctime. A file
//! lock (flock) on one file of the machine orders them: watchers hold it shared (several at
//! once), touchers exclusive. It is the machine's, not the process's: the suites of several
//! checkouts running on one machine take turns too.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a test waits for its turn before it fails: the benchmark's `--quick` run, the
/// longest toucher, takes a few minutes on a busy machine.
const PATIENCE: Duration = Duration::from_secs(30 * 60);

/// How often a waiting test tries again.
const POLL: Duration = Duration::from_millis(50);

/// The machine's lock file.
fn lock_file() -> PathBuf {
    let dir = Path::new("/run/lock");
    let dir = if dir.is_dir() {
        dir.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join("kennel-tests-host.lock")
}

/// Held while a test watches or touches the host; released when dropped.
#[derive(Debug)]
pub struct HostLock {
    _file: File,
}

/// A turn to watch the host: no toucher runs until this is dropped (other watchers may).
pub fn watch_host() -> HostLock {
    HostLock::take(&lock_file(), libc::LOCK_SH, "watch")
}

/// A turn to change the host: no watcher runs until this is dropped.
pub fn touch_host() -> HostLock {
    HostLock::take(&lock_file(), libc::LOCK_EX, "touch")
}

impl HostLock {
    /// `flock(how)` on `path`, polled (non-blocking) until [`PATIENCE`] is over.
    pub fn take(path: &Path, how: libc::c_int, what: &str) -> HostLock {
        let deadline = Instant::now() + PATIENCE;
        let mut said = false;
        loop {
            if let Some(lock) = HostLock::try_take(path, how) {
                return lock;
            }
            if !said {
                // Past libtest's capture: a test that waits says why.
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "{}: waiting for its turn to {what} the host ({})",
                    std::thread::current().name().unwrap_or("?"),
                    path.display()
                );
                said = true;
            }
            assert!(
                Instant::now() < deadline,
                "no turn to {what} the host within {PATIENCE:?} ({})",
                path.display()
            );
            std::thread::sleep(POLL);
        }
    }

    /// `flock(how | LOCK_NB)` on a new open file description of `path` (two of them
    /// conflict even within one process); `None` if another holds a conflicting lock.
    pub fn try_take(path: &Path, how: libc::c_int) -> Option<HostLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), how | libc::LOCK_NB) } == 0 {
            return Some(HostLock { _file: file });
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(
            e.raw_os_error(),
            Some(libc::EWOULDBLOCK),
            "flock {}: {e}",
            path.display()
        );
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule itself, on a lock file of its own (the machine's may be held by a test
    /// running meanwhile): watchers share, a toucher excludes both kinds, and a turn ends
    /// with its holder.
    #[test]
    fn watchers_share_a_toucher_waits_for_all_of_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("host.lock");
        let watcher = HostLock::try_take(&path, libc::LOCK_SH).expect("a first watcher");
        let second = HostLock::try_take(&path, libc::LOCK_SH).expect("a second watcher");
        assert!(HostLock::try_take(&path, libc::LOCK_EX).is_none());
        drop(watcher);
        assert!(HostLock::try_take(&path, libc::LOCK_EX).is_none());
        drop(second);
        let toucher = HostLock::try_take(&path, libc::LOCK_EX).expect("the toucher");
        assert!(HostLock::try_take(&path, libc::LOCK_SH).is_none());
        assert!(HostLock::try_take(&path, libc::LOCK_EX).is_none());
        drop(toucher);
        HostLock::try_take(&path, libc::LOCK_SH).expect("a watcher after the toucher");
    }
}
