//! What the daemon sends the helper: the spawn spec, and what comes back when a step fails.

use std::fmt;
use std::path::PathBuf;

use kennel_core::start::{ContainerPlan, Launch, V1Join};
use serde::{Deserialize, Serialize};

/// What the daemon writes into a helper's channel: which way of the start plan made the
/// helper, and the spec.
#[derive(Serialize)]
pub struct Order<'a> {
    pub launch: Launch,
    pub spec: &'a SpawnSpec,
}

/// An [`Order`], as the helper reads it.
#[derive(Deserialize)]
pub struct Received {
    pub launch: Launch,
    pub spec: SpawnSpec,
}

/// Everything the helper needs to turn itself into the service process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SpawnSpec {
    /// The unit this process belongs to (for messages).
    pub unit: String,
    /// argv; `argv[0]` is a path or a name looked up in the final environment's PATH.
    pub argv: Vec<String>,
    /// Variables set first (PATH, KENNEL_UNIT, NOTIFY_SOCKET ...).
    pub base_env: Vec<(String, String)>,
    /// KEY=VALUE lines read by the helper at each start; they override `base_env` and the
    /// user's HOME/USER/LOGNAME/SHELL.
    pub environment_file: Option<PathBuf>,
    /// The unit's `environment`, applied last.
    pub env: Vec<(String, String)>,
    /// Directory to run in; `/` when unset.
    pub working_dir: Option<PathBuf>,
    /// `user`: name, uid, `uid:gid` or `name:group`; kennel's own user when unset.
    pub user: Option<String>,
    /// Start a new session (and so a new process group whose id is the pid).
    pub new_session: bool,
    /// `cgroup.procs` or `tasks` files the helper writes `0` (itself) into first (before
    /// anything else, so that everything it becomes and forks is accounted and limited).
    #[serde(default)]
    pub cgroup_procs: Vec<PathBuf>,
    /// The unit's unified (or v2) cgroup directory, whose file of `cgroup_procs` a helper
    /// started right inside it (`Launch::born_in_cgroup`) does not write.
    #[serde(default)]
    pub unified: Option<PathBuf>,
    /// When the v1 hierarchies of `cgroup_procs` are joined (the start plan's).
    #[serde(default)]
    pub v1: V1Join,
    /// Run isolated: namespaces and a rootfs.
    #[serde(default)]
    pub container: Option<ContainerSpec>,
    /// Join a running unit's namespaces instead (exec, probes of a container unit).
    #[serde(default)]
    pub join: Option<JoinSpec>,
    /// The daemon passed the process's stdin over the socket (SCM_RIGHTS).
    #[serde(default)]
    pub stdin_passed: bool,
    /// A terminal of this size for the process (`kennel exec -t`): the helper makes it on
    /// the devpts of the mount namespace the process runs in (a container's own), puts it
    /// on 0, 1 and 2 as the controlling terminal, and hands its master to the daemon
    /// (spawn/helper/terminal.rs).
    #[serde(default)]
    pub tty: Option<TtySize>,
    /// Lock the process down before exec (containers, and what is exec'd into them).
    #[serde(default)]
    pub security: Option<SecuritySpec>,
    /// Wait at this gate before the last steps (user, security, exec): `kennel oci
    /// create`'s container, which `start` lets go.
    #[serde(default)]
    pub start_gate: Option<StartGate>,
    /// Exactly these supplementary groups (an OCI bundle's `additionalGids`), instead of
    /// the user's groups from /etc/group.
    #[serde(default)]
    pub groups: Option<Vec<u32>>,
    /// The process's umask (an OCI bundle's `process.user.umask`); inherited when unset.
    #[serde(default)]
    pub umask: Option<u32>,
    /// The names of the listening sockets passed with the spec (the last descriptors of
    /// its first message), for `LISTEN_FDNAMES`: the service gets them on 3, 4 ...
    #[serde(default)]
    pub sockets: Vec<String>,
    /// Those sockets as the helper received them (close-on-exec until the last step).
    #[serde(skip)]
    pub socket_fds: Vec<std::os::fd::RawFd>,
}

/// The start gate of a created OCI container: a FIFO in its state directory. The helper
/// opens it (read side, non-blocking) first of all, while the host's files are reachable;
/// once the container is complete it tells its channel [`StartGate::READY`] and waits
/// until `kennel oci start` writes a byte into the FIFO, then goes on to exec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartGate {
    pub fifo: PathBuf,
}

impl StartGate {
    /// The byte that says "created, waiting" on the helper's channel (no JSON failure
    /// report has it; the other marks are 0 to 3).
    pub const READY: u8 = 6;
}

/// A terminal's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TtySize {
    pub rows: u16,
    pub cols: u16,
}

/// A container's security settings, with a seccomp profile already compiled by the
/// daemon (it reads the profile file on the host).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SecuritySpec {
    pub settings: kennel_units::security::Security,
    #[serde(default)]
    pub profile: Vec<super::seccomp_profile::Program>,
}

/// Namespaces to enter with `setns()`: `/proc/PID/ns/NAME` for each name (`mnt`, `pid` ...).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JoinSpec {
    pub pid: i32,
    pub namespaces: Vec<String>,
}

/// The container part of a spawn, resolved by the daemon (layer names to directories,
/// named volumes to bind mounts, init layer contents generated).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// New namespaces to create.
    pub namespaces: Vec<kennel_units::Namespace>,
    /// Join this network namespace (`/proc/PID/ns/net` of another unit) instead.
    pub join_net: Option<PathBuf>,
    pub hostname: String,
    /// Read-only layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// `STATE/containers/NAME`: holds `upper/`, `work/`, `init/`, `rootfs/`.
    pub dir: PathBuf,
    pub read_only: bool,
    pub persist: bool,
    /// The init layer's files: path inside the container -> content.
    pub init_files: Vec<(PathBuf, String)>,
    /// Mounts on top of the rootfs, in order.
    pub volumes: Vec<MountSpec>,
    /// Host device nodes to create in the container's /dev besides the standard ones.
    #[serde(default)]
    pub devices: Vec<DeviceNode>,
    /// A user namespace with these maps (`namespaces = [..., "user"]`).
    #[serde(default)]
    pub user_ns: Option<super::helper::userns::UserNsSpec>,
    /// The start plan's decisions for this container: PID 1, writable layer, overlay,
    /// the cgroup file system.
    pub plan: ContainerPlan,
    /// The hierarchies of the unit's cgroup, the unified tree first: what is mounted
    /// under `/sys/fs/cgroup` when the plan delegates the subtree as v1 hierarchies
    /// (`CgroupFs::Hierarchies`).
    #[serde(default)]
    pub cgroup_hierarchies: Vec<kennel_cgroups::Hierarchy>,
    /// An OCI bundle's rootfs (`kennel oci`): its directory used as it is, and only the
    /// bundle's own mounts, instead of layers, an overlay and kennel's standard mounts.
    #[serde(default)]
    pub bundle: Option<BundleRootfs>,
    /// Existing namespaces to join (`setns`) by path, before the others are created (an
    /// OCI bundle's `linux.namespaces[].path`): `net`, `ipc`, `uts` or `cgroup`.
    #[serde(default)]
    pub join_paths: Vec<(String, PathBuf)>,
}

/// The rootfs of an OCI bundle: `root.path` bind-mounted on itself, the mounts in order,
/// the standard device nodes and the bundle's devices in `/dev`, `pivot_root`, then the
/// masked and read-only paths, and the root read-only if `ContainerSpec::read_only`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BundleRootfs {
    pub path: PathBuf,
    pub mounts: Vec<FsMount>,
    pub masked: Vec<PathBuf>,
    pub read_only_paths: Vec<PathBuf>,
    /// `linux.devices`, made after the mounts (besides the standard nodes).
    pub devices: Vec<OwnedDevice>,
    /// `linux.sysctl`: written under /proc/sys once the rootfs is entered.
    #[serde(default)]
    pub sysctl: Vec<(String, String)>,
    /// `linux.rootfsPropagation` as `MS_*` flags (0: private, kennel's default).
    #[serde(default)]
    pub propagation: u64,
}

/// One mount of a bundle, its options parsed into mount(2) flags and data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsMount {
    pub target: PathBuf,
    /// `bind` for a bind mount (`MS_BIND` in `flags`), else the file system type.
    pub fstype: String,
    pub source: PathBuf,
    /// `MS_*` flags (`MS_RDONLY`, `MS_NOSUID`, `MS_BIND | MS_REC` ...).
    pub flags: u64,
    /// `MS_PRIVATE`, `MS_SLAVE`, `MS_SHARED` or `MS_UNBINDABLE` (with `MS_REC`), or 0.
    pub propagation: u64,
    /// The file system's own options (`mode=755,size=65536k`).
    pub data: String,
    /// A tmpfs filled with what the directory it covers held (OCI `tmpcopyup`, as podman
    /// `--read-only` asks for `/tmp`, `/var/tmp` and `/run`).
    #[serde(default)]
    pub copy_up: bool,
}

/// A device node an OCI bundle asks for (`linux.devices`), with its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedDevice {
    pub node: DeviceNode,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// A device node: its path (under /dev), 'c' or 'b', numbers and mode bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: char,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
}

/// A `container.devices` entry that is not a host device node.
#[derive(Debug, thiserror::Error)]
pub enum DeviceNodeError {
    #[error("device {}: {source}", path.display())]
    Stat {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("device {}: not a device node", path.display())]
    NotADevice { path: PathBuf },
}

impl DeviceNode {
    /// Look a host device node up.
    pub fn of(path: &std::path::Path) -> Result<DeviceNode, DeviceNodeError> {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let meta = std::fs::metadata(path).map_err(|source| DeviceNodeError::Stat {
            path: path.to_path_buf(),
            source,
        })?;
        let kind = if meta.file_type().is_char_device() {
            'c'
        } else if meta.file_type().is_block_device() {
            'b'
        } else {
            return Err(DeviceNodeError::NotADevice {
                path: path.to_path_buf(),
            });
        };
        let rdev = meta.rdev();
        Ok(DeviceNode {
            path: path.to_path_buf(),
            kind,
            major: nix::sys::stat::major(rdev) as u32,
            minor: nix::sys::stat::minor(rdev) as u32,
            mode: meta.mode() & 0o777,
        })
    }
}

/// One volume, resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MountSpec {
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
        /// Mount it idmapped with the container's user namespace (bind and named volumes
        /// of a unit with one), so that its ids read the same as without.
        #[serde(default)]
        idmap: bool,
    },
    Tmpfs {
        target: PathBuf,
        size: Option<u64>,
    },
}

/// A step of the helper that failed, sent back to the daemon as one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnFailure {
    /// The step, e.g. `exec`, `chdir`, `setuid`, `read environment_file`.
    pub step: String,
    /// The path or name the step was about.
    pub subject: String,
    /// What went wrong.
    pub error: String,
    /// The helper's exit code: 127 not found, 126 not executable, 125 anything else.
    pub exit_code: i32,
}

impl fmt::Display for SpawnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.subject.is_empty() {
            write!(f, "{}: {}", self.step, self.error)
        } else {
            write!(f, "{} {}: {}", self.step, self.subject, self.error)
        }
    }
}
