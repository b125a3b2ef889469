//! Emptying containers' trash (`STATE/containers/NAME/.trash`, where a start moves the
//! previous run's writable and init layers when it cannot keep them, and overlayfs's
//! scratch directory of a writable layer it keeps: spawn/helper/layers.rs `discard`) off the
//! event loop, on the runtime's blocking pool, which daemon::up caps at
//! two threads (a burst of starts queues work there instead of starting a thread each) and
//! does not wait for at shutdown: what is not deleted yet goes at the next start. The trash
//! of a unit that no longer exists is swept once when the daemon starts.
//!
//! (Not a thread of kennel's own waiting on a channel for work: one such thread kept the
//! machine's init from reaching emergency mode after a panic in the VM test; the blocking
//! pool does not.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub struct Trash {
    state_dir: PathBuf,
}

impl Trash {
    /// Sweeps every container's trash in the background. Must run inside the runtime.
    pub fn start(state_dir: &Path) -> Trash {
        let dir = state_dir.to_path_buf();
        tokio::task::spawn_blocking(move || sweep(&dir));
        Trash {
            state_dir: state_dir.to_path_buf(),
        }
    }

    /// Empty container `name`'s trash in the background.
    pub fn empty(&self, name: &str) {
        let (dir, name) = (self.state_dir.clone(), name.to_string());
        tokio::task::spawn_blocking(move || super::container::empty_trash(&dir, &name));
    }
}

/// Every container's trash, those of units kennel no longer has included.
fn sweep(state_dir: &Path) {
    for name in containers(state_dir) {
        super::container::empty_trash(state_dir, &name);
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
        .filter(|e| e.path().join(crate::spawn::helper::layers::TRASH).is_dir())
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
    fn the_sweep_empties_every_trash_and_nothing_else() {
        let state = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let c = state.path().join("containers");
        let trash = |n: &str| c.join(n).join(crate::spawn::helper::layers::TRASH);
        layer(&trash("gone"), "w-1");
        layer(&trash("web"), "w-2");
        layer(&trash("web"), "i-3");
        let keep = c.join("web/upper");
        if let Err(e) = std::fs::create_dir_all(&keep) {
            panic!("mkdir {}: {e}", keep.display());
        }
        sweep(state.path());
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
