//! Persistent network namespaces: `STATE/netns/UNIT`, an nsfs bind mount that keeps a
//! unit's namespace alive before its processes exist (the daemon configures it, then the
//! container joins it: `ContainerSpec.join_net`) and names it for cleanup and for CNI
//! (`CNI_NETNS`). What `ip netns add` does, without its process.

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Why a namespace could not be made, joined or removed.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("{step} {}: {source}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("new network namespace: {0}")]
    Unshare(nix::Error),
    #[error("the network namespace thread panicked")]
    Thread,
}

fn io_err<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> NetnsError + 'a {
    move |source| NetnsError::Io {
        step,
        path: path.to_path_buf(),
        source,
    }
}

/// `STATE/netns`.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("netns")
}

/// Moves the CALLING THREAD into a new network namespace and pins it at `path` (created;
/// its directory too). Call it on a thread of its own that ends afterwards or goes back
/// (`setns`, as net::bridge::Links does): the daemon's runtime thread must never change
/// namespace. `lo` is not up yet: the caller brings it up with its netlink socket of the
/// new namespace.
pub fn create_here(path: &Path) -> Result<(), NetnsError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    // An empty file to mount on; one left by a crash is reused (its mount, if any, was
    // removed by the leftover sweep; if not, mounting over it still works).
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("create", path))?;
    unshare(CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
    let me = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
    mount(
        Some(me.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| NetnsError::Io {
        step: "bind-mount the network namespace on",
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// Unpins and deletes `path` (nothing when it is not there). The namespace itself goes
/// once no process or descriptor holds it anymore.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => {
            return Err(NetnsError::Io {
                step: "unmount",
                path: path.to_path_buf(),
                source: e.into(),
            })
        }
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

/// The names of the pinned namespaces under `dir` (units), sorted.
pub fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Runs `f` on a new thread and waits for it: for work that changes the thread's network
/// namespace.
pub fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NetnsError> {
    std::thread::Builder::new()
        .name("kennel-netns".into())
        .spawn(f)
        .map_err(io_err(
            "spawn a thread for",
            Path::new("the network namespace"),
        ))?
        .join()
        .map_err(|_| NetnsError::Thread)
}

/// Runs `f` on a new thread and returns at once: for work the caller must not wait for
/// (a teardown), joined later through the handle.
pub fn spawn_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>, NetnsError> {
    std::thread::Builder::new()
        .name("kennel-netns".into())
        .spawn(f)
        .map_err(io_err(
            "spawn a thread for",
            Path::new("the network namespace"),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Root only: makes a namespace pinned in a temporary directory, checks it is another
    /// namespace than the thread's, removes it.
    #[test]
    fn create_pins_and_remove_unpins() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP create_pins_and_remove_unpins: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netns/u");
        let p = path.clone();
        on_thread(move || create_here(&p)).unwrap().unwrap();
        use std::os::unix::fs::MetadataExt;
        let pinned = std::fs::metadata(&path).unwrap().ino();
        let mine = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        assert_ne!(pinned, mine);
        assert_eq!(list(&dir.path().join("netns")), ["u"]);
        remove(&path).unwrap();
        assert!(!path.exists());
        remove(&path).unwrap();
    }
}
