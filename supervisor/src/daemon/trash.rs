//! Emptying containers' trash (`STATE/containers/NAME/.trash`, where a start moves the
//! previous run's writable and init layers: spawn/rootfs.rs `discard`) off the event loop,
//! on one thread of its own: a burst of starts queues work for that thread instead of
//! starting a blocking thread each, and the trash of a unit that no longer exists is
//! swept once at the daemon's start. The thread is not waited for at shutdown: what it
//! has not deleted goes at the next start.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tracing::warn;

/// What the thread is asked to empty.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    /// Every container's trash.
    All,
    /// One container's.
    Unit(String),
}

pub struct Trash {
    /// None when the thread could not be started (trash then waits for a later daemon).
    tx: Option<mpsc::Sender<Job>>,
}

impl Trash {
    /// Starts the thread, its first job a sweep of every container's trash.
    pub fn start(state_dir: &Path) -> Trash {
        let (tx, rx) = mpsc::channel();
        let state_dir = state_dir.to_path_buf();
        let started = std::thread::Builder::new()
            .name("kennel-trash".into())
            .spawn(move || run(&state_dir, &rx));
        match started {
            Ok(_) => {
                let _ = tx.send(Job::All);
                Trash { tx: Some(tx) }
            }
            Err(e) => {
                warn!("cannot start the thread that empties container trash: {e}");
                Trash { tx: None }
            }
        }
    }

    /// Queue container `name`'s trash for deletion.
    pub fn empty(&self, name: &str) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Job::Unit(name.to_string()));
        }
    }
}

/// The thread: take every queued job (each unit once), do them, wait for more; ends when
/// the daemon drops its [`Trash`].
fn run(state_dir: &Path, rx: &mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let jobs: BTreeSet<Job> = std::iter::once(first).chain(rx.try_iter()).collect();
        let names: BTreeSet<String> = if jobs.contains(&Job::All) {
            containers(state_dir)
        } else {
            jobs.into_iter()
                .filter_map(|j| match j {
                    Job::Unit(n) => Some(n),
                    Job::All => None,
                })
                .collect()
        };
        for name in names {
            super::container::empty_trash(state_dir, &name);
        }
    }
}

/// The names under `STATE/containers` that have a trash directory.
fn containers(state_dir: &Path) -> BTreeSet<String> {
    let dir: PathBuf = state_dir.join("containers");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().join(crate::spawn::rootfs::TRASH).is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(trash: &Path, name: &str) {
        let d = trash.join(name).join("upper/etc");
        if let Err(e) = std::fs::create_dir_all(&d) {
            panic!("mkdir {}: {e}", d.display());
        }
        if let Err(e) = std::fs::write(d.join("hosts"), "x") {
            panic!("write in {}: {e}", d.display());
        }
    }

    /// Every container's trash is emptied, those of names kennel no longer has a unit
    /// for included; the trash directories themselves and everything else stay.
    #[test]
    fn the_thread_sweeps_every_trash_then_queued_units() {
        let state = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let c = state.path().join("containers");
        let trash = |n: &str| c.join(n).join(crate::spawn::rootfs::TRASH);
        layer(&trash("gone"), "w-1");
        layer(&trash("web"), "w-2");
        layer(&trash("web"), "i-3");
        let keep = c.join("web/upper");
        if let Err(e) = std::fs::create_dir_all(&keep) {
            panic!("mkdir {}: {e}", keep.display());
        }
        let (tx, rx) = mpsc::channel();
        for job in [Job::Unit("web".into()), Job::All, Job::Unit("web".into())] {
            let _ = tx.send(job);
        }
        drop(tx);
        run(state.path(), &rx);
        for n in ["gone", "web"] {
            let left: Vec<_> = match std::fs::read_dir(trash(n)) {
                Ok(d) => d.flatten().map(|e| e.path()).collect(),
                Err(e) => panic!("{n}'s trash directory went: {e}"),
            };
            assert!(left.is_empty(), "left in {n}'s trash: {left:?}");
        }
        assert!(keep.is_dir(), "deleted outside the trash");
    }
}
