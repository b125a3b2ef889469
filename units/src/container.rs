//! The typed `[container]` and `[resources]` sections.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[container]`: run the service isolated, on its own rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// `image`: an image of the store (`STATE/images`) whose layers form the bottom of the
    /// rootfs, and whose config gives defaults (command, env, working dir, user).
    #[serde(default)]
    pub image: Option<crate::image::ImageRef>,
    /// `rootfs`: read-only layers, bottom first, on top of the image's. Never empty
    /// without an image.
    pub rootfs: Vec<Layer>,
    /// `namespaces`; default pid, mount, uts, ipc, net, cgroup. `mount` is always present
    /// (a rootfs needs it); `user` is opt-in.
    pub namespaces: BTreeSet<Namespace>,
    /// `uid_map` with the `user` namespace: container ids to host ids. Empty: the
    /// `kennel` entry of `/etc/subuid`, read when the unit starts.
    #[serde(default)]
    pub uid_map: Vec<IdMap>,
    /// `gid_map`, the same for groups (`/etc/subgid`); `uid_map` when only that is set.
    #[serde(default)]
    pub gid_map: Vec<IdMap>,
    /// `hostname`; default: the unit name. Only meaningful with the uts namespace.
    pub hostname: String,
    /// `network`; default none.
    pub network: Network,
    /// `address`: a static address on a bridge network (default: allocated, stable per
    /// unit).
    #[serde(default)]
    pub address: Option<std::net::IpAddr>,
    /// `ports`: host ports published to the container (bridge and CNI networks).
    #[serde(default)]
    pub ports: Vec<crate::network::PortMap>,
    /// `aliases`: extra names of the unit on its bridge network.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `cni_args`: CNI_ARGS of the ADD/CHECK/DEL with `network = "cni:NAME"`, key -> value.
    #[serde(default)]
    pub cni_args: BTreeMap<String, String>,
    /// `init`: kennel's tiny init as PID 1 inside; default true when there is a pid
    /// namespace (and must be false without one).
    pub init: bool,
    /// `read_only`: no writable layer; the rootfs is mounted read-only.
    pub read_only: bool,
    /// `persist`: keep the writable layer across restarts (default: fresh on each start).
    pub persist: bool,
    /// `cgroup`: the cgroup file system the container sees; default none.
    #[serde(default)]
    pub cgroup: CgroupAccess,
    /// `hosts`: extra `/etc/hosts` lines, name -> address.
    pub hosts: BTreeMap<String, String>,
    /// `dns`: nameservers for `/etc/resolv.conf`; `None`: a copy of the host's.
    pub dns: Option<Vec<String>>,
    /// `volumes`, mounted in order.
    pub volumes: Vec<Volume>,
    /// Capabilities, no_new_privileges, seccomp, devices, limits, oom_score_adj.
    #[serde(default)]
    pub security: crate::security::Security,
}

impl Container {
    /// A container on `rootfs` with every other key at its default, as a unit file
    /// `[container]` with only `rootfs` gives for a unit named `hostname`: the default
    /// namespaces, network none, init, a fresh writable layer, no hosts, the host's DNS
    /// servers, no volumes.
    pub fn new(rootfs: Vec<Layer>, hostname: &str) -> Self {
        Container {
            image: None,
            rootfs,
            namespaces: Namespace::defaults(),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            hostname: hostname.to_string(),
            network: Network::None,
            address: None,
            ports: Vec::new(),
            aliases: Vec::new(),
            cni_args: BTreeMap::new(),
            init: true,
            read_only: false,
            persist: false,
            cgroup: CgroupAccess::None,
            hosts: BTreeMap::new(),
            dns: None,
            security: crate::security::Security::default(),
            volumes: Vec::new(),
        }
    }

    /// The unit whose network namespace this container joins (`network = "unit:NAME"`).
    pub fn network_unit(&self) -> Option<&str> {
        match &self.network {
            Network::Unit(name) => Some(name),
            _ => None,
        }
    }
}

/// A string that is not a hostname.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid hostname {0:?}: use labels of 1 to 63 letters, digits and -, separated by \".\", not starting or ending with \"-\", 253 characters at most"
)]
pub struct InvalidHostname(pub String);

/// Checks a hostname: dot-separated labels of 1 to 63 ASCII letters, digits and `-`, a
/// label neither starting nor ending with `-`, at most 253 characters in all.
pub fn check_hostname(name: &str) -> Result<(), InvalidHostname> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(InvalidHostname(name.to_string()))
    }
}

/// A string that is not a cpuset CPU list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuListError {
    /// Not numbers and ranges separated by commas.
    #[error(
        "invalid CPU list {list:?}: expected CPU numbers and ranges such as \"0\", \"0-3\" or \"0,2-3\""
    )]
    Syntax { list: String },
    /// A CPU number beyond `u32`.
    #[error("invalid CPU list {list:?}: {number} is too large")]
    TooLarge { list: String, number: String },
    /// A range `A-B` with `A > B`.
    #[error("invalid CPU list {list:?}: the range {from}-{to} is reversed")]
    Reversed { list: String, from: u32, to: u32 },
}

/// Checks a cpuset CPU list: comma-separated CPU numbers and ranges `A-B` with `A <= B`,
/// no spaces (`"0"`, `"0-3"`, `"0,2-3"`).
pub fn check_cpu_list(list: &str) -> Result<(), CpuListError> {
    let number = |s: &str| -> Result<u32, CpuListError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CpuListError::Syntax {
                list: list.to_string(),
            });
        }
        s.parse().map_err(|_| CpuListError::TooLarge {
            list: list.to_string(),
            number: s.to_string(),
        })
    };
    for item in list.split(',') {
        match item.split_once('-') {
            None => {
                number(item)?;
            }
            Some((a, b)) => {
                let (from, to) = (number(a)?, number(b)?);
                if from > to {
                    return Err(CpuListError::Reversed {
                        list: list.to_string(),
                        from,
                        to,
                    });
                }
            }
        }
    }
    Ok(())
}

/// One range of `uid_map` or `gid_map`: the ids `container .. container + size` inside
/// the container are `host .. host + size` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl IdMap {
    /// The host id of container id `id`, if a range of `map` covers it.
    pub fn to_host(map: &[IdMap], id: u32) -> Option<u32> {
        map.iter().find_map(|m| {
            let off = id.checked_sub(m.container)?;
            (off < m.size).then(|| m.host + off)
        })
    }

    /// The line of `/proc/PID/uid_map` for this range.
    pub fn line(&self) -> String {
        format!("{} {} {}\n", self.container, self.host, self.size)
    }
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
    /// Container ids mapped to an unprivileged host range (`uid_map`, `gid_map`).
    User,
}

impl Namespace {
    /// Every namespace kind: the default set, in order, then `user`.
    pub const ALL: [Namespace; 7] = [
        Namespace::Pid,
        Namespace::Mount,
        Namespace::Uts,
        Namespace::Ipc,
        Namespace::Net,
        Namespace::Cgroup,
        Namespace::User,
    ];

    /// The name used in `/proc/PID/ns/` (`"mnt"` for the mount namespace); unit files
    /// use [`Namespace::keyword`] (`"mount"`).
    pub fn name(self) -> &'static str {
        match self {
            Namespace::Pid => "pid",
            Namespace::Mount => "mnt",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::Cgroup => "cgroup",
            Namespace::User => "user",
        }
    }

    /// The name used in unit files (`container.namespaces`) and by serde: `"mount"` for
    /// the mount namespace, else the same as [`Namespace::name`].
    pub fn keyword(self) -> &'static str {
        match self {
            Namespace::Mount => "mount",
            other => other.name(),
        }
    }

    /// The namespace a unit-file keyword names (`"pid"`, `"mount"`, ...).
    pub fn from_keyword(keyword: &str) -> Option<Namespace> {
        Namespace::ALL.into_iter().find(|n| n.keyword() == keyword)
    }

    /// The default set.
    pub fn defaults() -> BTreeSet<Namespace> {
        use Namespace::*;
        [Pid, Mount, Uts, Ipc, Net, Cgroup].into_iter().collect()
    }
}

/// `cgroup`: what of the cgroup file system a container sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupAccess {
    /// `"none"`: no cgroup file system (`/sys/fs/cgroup` is sysfs's empty directory).
    #[default]
    None,
    /// `"delegate"`: a subtree of its own, writable: the unit's processes live in the
    /// child `payload` of the unit's cgroup, which is the root of the container's cgroup
    /// namespace and mounted at `/sys/fs/cgroup`; the unit's limits stay on the unit's
    /// cgroup, out of the container's sight. For a supervisor inside (kennel, systemd).
    Delegate,
}

impl CgroupAccess {
    /// Every value, as unit files write it.
    pub const KEYWORDS: [&'static str; 2] = ["none", "delegate"];

    /// The value a unit-file keyword names.
    pub fn from_keyword(keyword: &str) -> Option<CgroupAccess> {
        match keyword {
            "none" => Some(CgroupAccess::None),
            "delegate" => Some(CgroupAccess::Delegate),
            _ => None,
        }
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
    /// `bridge` (the network `kennel`) or `bridge:NAME`: a network namespace of its own,
    /// made by the daemon, on the bridge of network NAME (`NETWORKS_DIR/NAME.toml`).
    Bridge(String),
    /// `cni:NAME`: a network namespace of its own, set up by the CNI plugins of
    /// `NAME.conflist`.
    Cni(String),
}

impl Network {
    /// Whether the daemon makes the container's network namespace before its start
    /// (a bridge or CNI network).
    pub fn is_managed(&self) -> bool {
        matches!(self, Network::Bridge(_) | Network::Cni(_))
    }
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
        /// `idmap`: with a user namespace, mount it idmapped (default true).
        #[serde(default = "yes")]
        idmap: bool,
    },
    /// `{ type = "tmpfs", target = "/tmp", size = "64M" }`.
    Tmpfs { target: PathBuf, size: Option<u64> },
    /// `{ type = "volume", name = "data", target = "/data", read_only = false }`: the
    /// kennel-managed directory `STATE/volumes/NAME`, created on first use.
    Named {
        name: String,
        target: PathBuf,
        read_only: bool,
        #[serde(default = "yes")]
        idmap: bool,
    },
}

fn yes() -> bool {
    true
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        let long_label = "a".repeat(63);
        let too_long = ["abcdefghi"; 26].join(".");
        for good in [
            "web",
            "a",
            "web-1",
            "db.internal",
            "A9",
            long_label.as_str(),
        ] {
            assert_eq!(check_hostname(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "a_b",
            "-a",
            "a-",
            "a..b",
            "a.",
            ".a",
            "a b",
            "é",
            &"a".repeat(64),
            too_long.as_str(),
        ] {
            assert!(check_hostname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_lists() {
        for good in ["0", "0-3", "0,2-3", "1-1", "7,0"] {
            assert_eq!(check_cpu_list(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "a",
            "0-",
            "-1",
            "0,,1",
            "0 ,1",
            "1-2-3",
            "0,",
            "99999999999",
        ] {
            assert!(check_cpu_list(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_cpu_list("99999999999").map_err(|e| e.to_string()),
            Err("invalid CPU list \"99999999999\": 99999999999 is too large".to_string())
        );
        assert_eq!(
            check_cpu_list("3-1").map_err(|e| e.to_string()),
            Err("invalid CPU list \"3-1\": the range 3-1 is reversed".to_string())
        );
    }

    #[test]
    fn namespace_keywords() {
        for ns in Namespace::ALL {
            assert_eq!(Namespace::from_keyword(ns.keyword()), Some(ns));
        }
        assert_eq!(Namespace::Mount.keyword(), "mount");
        assert_eq!(Namespace::Mount.name(), "mnt");
        assert_eq!(Namespace::from_keyword("mnt"), None);
        // The defaults are every kind but `user`, which is opt-in.
        let mut all = Namespace::ALL.into_iter().collect::<BTreeSet<_>>();
        all.remove(&Namespace::User);
        assert_eq!(all, Namespace::defaults());
    }
}
