//! `kennel up`: the tokio shell around the pure core. One task (the [`owner`]) owns all
//! state; signals, the control server, probes and spawn watchers send it [`Input`]s.

mod cgroup;
mod cni;
mod container;
mod exec;
mod leftovers;
pub mod network;
mod notify;
mod owner;
mod probes;
mod runs;
mod signals;
mod sockets;
mod trash;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use kennel_core::Pid;
use tokio::sync::oneshot;

use crate::spawn::{SpawnFailure, SpawnSpec};

pub use owner::DaemonError;

/// Where `kennel up` reads and writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The unit directory (`--units`).
    pub units: PathBuf,
    /// The network directory (`--networks`).
    pub networks: PathBuf,
    /// `--cni-conf-dir`: the CNI network configurations (`cni:NAME`).
    pub cni_conf_dir: PathBuf,
    /// `--cni-path`: where CNI plugins are looked up, in order.
    pub cni_path: Vec<PathBuf>,
    /// Directories of units made for this run (a machine's getty units, see
    /// `boot::getty`): each file is loaded unless the unit directory has one of that name.
    pub generated_units: Vec<PathBuf>,
    /// State: `--state-dir` (layers and containers live here once containers land).
    pub state_dir: PathBuf,
    /// `--log-dir`: `NAME.log` and its rotations.
    pub log_dir: PathBuf,
    /// `--socket`: the control socket.
    pub socket: PathBuf,
    /// `--socket-group`: this group (gid) may use the control socket too.
    pub socket_group: Option<u32>,
    /// `--cgroup-parent`: where unit cgroups go (default: kennel's own cgroup).
    pub cgroup_parent: Option<String>,
    /// kennel is a machine's init (`kennel boot`): power signals and requests, no exit.
    pub boot: bool,
    /// Panic once all units are up (the `test-panic` feature's emergency-mode test).
    pub test_panic: bool,
    /// Echo each service line to kennel's stdout as `NAME | line`.
    pub echo: bool,
    /// `--stop-budget` and `--main`: how kennel itself ends.
    pub ending: kennel_core::Ending,
}

impl Options {
    /// Reads the networks, then the units checked against them; every problem of both.
    pub fn load(
        &self,
    ) -> Result<(kennel_units::UnitSet, kennel_units::Networks), Vec<kennel_units::Diagnostic>>
    {
        let networks = kennel_units::Networks::load(&self.networks)?;
        let units = kennel_units::load_paths_with(&self.unit_paths(), &networks)?;
        Ok((units, networks))
    }

    /// What units are loaded from: the unit directory, and each generated unit the
    /// directory does not have a file of its own for (looked at on each load, so that a
    /// user's copy takes over at the next reload).
    pub fn unit_paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.units.clone()];
        for dir in &self.generated_units {
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .filter(|p| p.file_name().is_some_and(|n| !self.units.join(n).exists()))
                .collect();
            files.sort();
            paths.extend(files);
        }
        paths
    }
}

/// What the tasks around the owner tell it.
pub enum Input {
    /// A signal arrived (SIGCHLD included: the owner then reaps).
    Signal(i32),
    /// The helper for a unit's `pid` reached exec (`failure` is None) or reported the
    /// step that failed.
    Launched {
        unit: String,
        pid: Pid,
        failure: Option<SpawnFailure>,
        /// The overlay the container's init handed back, with the key of what it is made
        /// of (`spawn::helper::rootfs::overlay_key`).
        overlay: Option<(String, OwnedFd)>,
        /// The start plan's: hold the run's mount namespace until it ends.
        hold_mount_ns: bool,
        /// The container init's note of how its service ended (`spawn::init::exit_note`).
        exit_note: Option<OwnedFd>,
    },
    /// A forking unit's daemon was found (or why not).
    MainPid {
        unit: String,
        pid: Result<Pid, String>,
    },
    /// A `STATUS=` line on a unit's notify socket.
    NotifyStatus {
        unit: String,
        pid: Pid,
        text: String,
    },
    /// A readiness probe passed.
    Ready { unit: String, pid: Pid },
    /// A health check finished.
    Health {
        unit: String,
        pid: Pid,
        ok: bool,
        detail: String,
    },
    /// A connection or datagram arrived on a socket-activated unit's socket while it had
    /// no process.
    SocketActivity { unit: String },
    /// A probe task asks the owner to start a probe process and route its exit back.
    RunProbe {
        spec: Box<SpawnSpec>,
        reply: oneshot::Sender<Result<probes::ProbeProcess, crate::spawn::launch::LaunchError>>,
    },
}

/// How the daemon ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// The exit code for `kennel up`.
    pub code: i32,
    /// For a machine's init: what to do now that every unit is stopped.
    pub power: Option<crate::control::protocol::PowerAction>,
}

/// Run the daemon until it shuts down.
pub fn up(opts: Options) -> Result<Outcome, DaemonError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // The blocking pool empties containers' trash (daemon/trash.rs), lets go of ended
        // runs' mount namespaces (owner.rs `tear_down_released`) and, on kernels without
        // SO_PEERGROUPS, looks up a socket peer's groups (control/server.rs): two threads,
        // so that a burst queues work rather than starting a thread each.
        .max_blocking_threads(2)
        .build()
        .map_err(DaemonError::Runtime)?;
    let outcome = rt.block_on(owner::run(opts));
    // Dropping the runtime would wait for every blocking task still running, however
    // long; the daemon is done, what is left is dropped with the process.
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    outcome
}
