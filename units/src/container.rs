//! The typed `[container]` and `[resources]` sections.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[container]`: run the service isolated, on its own rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// `rootfs`: read-only layers, bottom first. Never empty.
    pub rootfs: Vec<Layer>,
    /// `namespaces`; default pid, mount, uts, ipc, net, cgroup. `mount` is always present
    /// (a rootfs needs it).
    pub namespaces: BTreeSet<Namespace>,
    /// `hostname`; default: the unit name. Only meaningful with the uts namespace.
    pub hostname: String,
    /// `network`; default none.
    pub network: Network,
    /// `init`: kennel's tiny init as PID 1 inside; default true when there is a pid
    /// namespace (and must be false without one).
    pub init: bool,
    /// `read_only`: no writable layer; the rootfs is mounted read-only.
    pub read_only: bool,
    /// `persist`: keep the writable layer across restarts (default: fresh on each start).
    pub persist: bool,
    /// `hosts`: extra `/etc/hosts` lines, name -> address.
    pub hosts: BTreeMap<String, String>,
    /// `dns`: nameservers for `/etc/resolv.conf`; `None`: a copy of the host's.
    pub dns: Option<Vec<String>>,
    /// `volumes`, mounted in order.
    pub volumes: Vec<Volume>,
}

/// One read-only layer of `rootfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// A name in the layer store: `STATE/layers/NAME`.
    Named(String),
    /// An absolute directory.
    Path(PathBuf),
}

/// A namespace kind a container can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Namespace {
    Pid,
    Mount,
    Uts,
    Ipc,
    Net,
    Cgroup,
}

impl Namespace {
    /// The name used in unit files and in `/proc/PID/ns/`.
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Pid => "pid",
            Namespace::Mount => "mnt",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::Cgroup => "cgroup",
        }
    }

    /// The default set.
    pub fn defaults() -> BTreeSet<Namespace> {
        use Namespace::*;
        [Pid, Mount, Uts, Ipc, Net, Cgroup].into_iter().collect()
    }
}

/// `network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// A new network namespace with only `lo`, brought up.
    None,
    /// The host's network namespace (no `net` namespace).
    Host,
    /// `unit:NAME`: join that unit's network namespace (NAME is then required and ordered
    /// before this unit).
    Unit(String),
}

/// One entry of `volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Volume {
    /// `{ source = "/abs", target = "/in/container", read_only = false }` (type "bind", the default).
    Bind {
        source: PathBuf,
        target: PathBuf,
        read_only: bool,
    },
    /// `{ type = "tmpfs", target = "/tmp", size = "64M" }`.
    Tmpfs { target: PathBuf, size: Option<u64> },
    /// `{ type = "volume", name = "data", target = "/data", read_only = false }`: the
    /// kennel-managed directory `STATE/volumes/NAME`, created on first use.
    Named {
        name: String,
        target: PathBuf,
        read_only: bool,
    },
}

impl Volume {
    pub fn target(&self) -> &PathBuf {
        match self {
            Volume::Bind { target, .. }
            | Volume::Tmpfs { target, .. }
            | Volume::Named { target, .. } => target,
        }
    }
}

/// `[resources]`: limits for any unit, container or not. `None` leaves the kernel default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// `memory_max` in bytes.
    pub memory_max: Option<u64>,
    /// `cpu` in thousandths of a core (`cpu = 0.5` -> 500): quota over a 100ms period.
    pub cpu_millis: Option<u32>,
    /// `cpu_weight`, 1..=10000 (v2 `cpu.weight`; on v1 mapped to `cpu.shares`).
    pub cpu_weight: Option<u32>,
    /// `pids_max`.
    pub pids_max: Option<u64>,
    /// `io_weight`, 1..=10000 (v2 `io.weight`; v1 `blkio.weight` 10..=1000, scaled).
    pub io_weight: Option<u32>,
    /// `cpuset`: CPUs, e.g. `"0"`, `"0-2,4"`.
    pub cpuset: Option<String>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }
}
