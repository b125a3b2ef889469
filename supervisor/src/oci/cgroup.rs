//! A container's cgroup: `linux.cgroupsPath` (`/a/b/NAME` from each hierarchy's root,
//! or relative to this process's cgroup) made with kennel's cgroups crate, as a unit's.

use kennel_cgroups::{Cgroups, UnitCgroup};

/// The parent and name of the container's cgroup: from cgroupsPath, else `kennel-runc/ID`
/// under the hierarchies' roots.
pub fn split(path: Option<&std::path::Path>, id: &str) -> (String, String) {
    let Some(p) = path.map(|p| p.to_string_lossy().into_owned()) else {
        return ("/kennel-runc".into(), id.to_string());
    };
    let trimmed = p.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((parent, name)) => (
            if parent.is_empty() {
                "/".into()
            } else {
                parent.to_string()
            },
            name.to_string(),
        ),
        None => ("/".into(), trimmed.to_string()),
    }
}

pub fn layout(parent: &str) -> Result<Cgroups, kennel_cgroups::CgroupError> {
    Cgroups::detect(Some(parent))
}

pub fn existing(parent: &str, name: &str) -> Option<UnitCgroup> {
    layout(parent).ok().map(|c| c.unit(name))
}

/// What of `linux.resources` kennel's unit `[resources]` have no key for, written into
/// the container's cgroup after it is made (before the process joins it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    pub cpu_shares: Option<u64>,
    /// (quota, period) when the period is not kennel's 100 ms.
    pub cpu_max: Option<(i64, u64)>,
    pub cpus: Option<String>,
    pub mems: Option<String>,
    pub rt_runtime: Option<i64>,
    pub rt_period: Option<u64>,
    pub memory_reservation: Option<i64>,
    /// memory + swap, as OCI gives it.
    pub memory_swap: Option<i64>,
    pub swappiness: Option<u64>,
    pub disable_oom_killer: Option<bool>,
    /// v1's kernel memory limits (deprecated by the kernel; refused on v2).
    pub kernel_memory: Option<i64>,
    pub kernel_tcp_memory: Option<i64>,
    /// `memory.limit` and `pids.limit` for `update` (at create, the unit's `[resources]`
    /// write them): -1 (pids: 0 too) is no limit.
    pub memory_limit: Option<i64>,
    pub pids_limit: Option<i64>,
}

impl Extra {
    /// Everything of `linux.resources` that `update` changes (devices excepted: refused
    /// by the caller).
    pub fn of(r: &oci_spec::runtime::LinuxResources) -> Extra {
        let mut e = Extra::default();
        if let Some(m) = r.memory() {
            e.memory_limit = m.limit();
            e.memory_reservation = m.reservation();
            e.memory_swap = m.swap();
            e.swappiness = m.swappiness();
            e.disable_oom_killer = m.disable_oom_killer();
            e.kernel_memory = m.kernel();
            e.kernel_tcp_memory = m.kernel_tcp();
        }
        if let Some(p) = r.pids() {
            e.pids_limit = Some(p.limit());
        }
        if let Some(c) = r.cpu() {
            if c.quota().is_some() || c.period().is_some() {
                e.cpu_max = Some((c.quota().unwrap_or(-1), c.period().unwrap_or(100_000)));
            }
            e.cpu_shares = c.shares();
            e.rt_runtime = c.realtime_runtime();
            e.rt_period = c.realtime_period();
            e.cpus = c.cpus().clone().filter(|s| !s.is_empty());
            e.mems = c.mems().clone().filter(|s| !s.is_empty());
        }
        e
    }
}

/// Why an extra setting could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExtraError {
    #[error("linux.resources: {what} has no file on this host's cgroups ({why})")]
    Unsupported {
        what: &'static str,
        why: &'static str,
    },
    #[error("write {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl Extra {
    /// Writes each setting into the right directory of `unit` (v1: the hierarchy with the
    /// controller; v2: the one directory).
    pub fn apply(&self, unit: &UnitCgroup) -> Result<(), ExtraError> {
        let v2 = unit.version() == kennel_cgroups::Version::V2;
        let write = |controller: &str, file: &str, value: String| -> Result<(), ExtraError> {
            let dir = unit.dirs().iter().find(|d| match &d.hierarchy {
                kennel_cgroups::Hierarchy::Unified => v2,
                kennel_cgroups::Hierarchy::V1 { controllers } => {
                    !v2 && controllers.iter().any(|c| c == controller)
                }
            });
            let Some(dir) = dir else {
                return Err(ExtraError::Unsupported {
                    what: "a cgroup controller",
                    why: "the controller is not mounted",
                });
            };
            let path = dir.path.join(file);
            std::fs::write(&path, value).map_err(|source| ExtraError::Write { path, source })
        };
        let v2_refuses = |what: &'static str| ExtraError::Unsupported {
            what,
            why: "cgroup v2 has no such setting",
        };
        if let Some(l) = self.memory_limit {
            let (file, v) = match (v2, l) {
                (true, l) if l < 0 => ("memory.max", "max".to_string()),
                (true, l) => ("memory.max", l.to_string()),
                (false, l) => ("memory.limit_in_bytes", l.max(-1).to_string()),
            };
            write("memory", file, v)?;
        }
        if let Some(l) = self.pids_limit {
            let v = if l > 0 { l.to_string() } else { "max".into() };
            write("pids", "pids.max", v)?;
        }
        if let Some(cpus) = &self.cpus {
            write("cpuset", "cpuset.cpus", cpus.clone())?;
        }
        if let Some(mems) = &self.mems {
            write("cpuset", "cpuset.mems", mems.clone())?;
        }
        if let Some(shares) = self.cpu_shares {
            if v2 {
                // runc's conversion of shares (2..262144) to a weight (1..10000).
                let weight = 1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142;
                write("cpu", "cpu.weight", weight.to_string())?;
            } else {
                write("cpu", "cpu.shares", shares.to_string())?;
            }
        }
        if let Some((quota, period)) = self.cpu_max {
            if v2 {
                let q = if quota > 0 {
                    quota.to_string()
                } else {
                    "max".into()
                };
                write("cpu", "cpu.max", format!("{q} {period}"))?;
            } else {
                write("cpu", "cpu.cfs_period_us", period.to_string())?;
                write("cpu", "cpu.cfs_quota_us", quota.to_string())?;
            }
        }
        if let Some(p) = self.rt_period {
            if v2 {
                return Err(v2_refuses("cpu.realtimePeriod"));
            }
            write("cpu", "cpu.rt_period_us", p.to_string())?;
        }
        if let Some(r) = self.rt_runtime {
            if v2 {
                return Err(v2_refuses("cpu.realtimeRuntime"));
            }
            write("cpu", "cpu.rt_runtime_us", r.to_string())?;
        }
        if let Some(r) = self.memory_reservation {
            let (file, v) = if v2 {
                ("memory.low", r)
            } else {
                ("memory.soft_limit_in_bytes", r)
            };
            write("memory", file, v.to_string())?;
        }
        if let Some(s) = self.memory_swap {
            if v2 {
                return Err(v2_refuses("memory.swap (memory + swap)"));
            }
            write("memory", "memory.memsw.limit_in_bytes", s.to_string())?;
        }
        if let Some(s) = self.swappiness {
            if v2 {
                return Err(v2_refuses("memory.swappiness"));
            }
            write("memory", "memory.swappiness", s.to_string())?;
        }
        for (v, file, what) in [
            (
                self.kernel_memory,
                "memory.kmem.limit_in_bytes",
                "memory.kernel",
            ),
            (
                self.kernel_tcp_memory,
                "memory.kmem.tcp.limit_in_bytes",
                "memory.kernelTCP",
            ),
        ] {
            if let Some(v) = v {
                if v2 {
                    return Err(v2_refuses(what));
                }
                write("memory", file, v.to_string())?;
            }
        }
        if let Some(d) = self.disable_oom_killer {
            if v2 {
                return Err(v2_refuses("memory.disableOOMKiller"));
            }
            write("memory", "memory.oom_control", u8::from(d).to_string())?;
        }
        Ok(())
    }
}

/// The CFS quota the unit has now (v1 `cpu.cfs_quota_us`, v2 `cpu.max`'s first field;
/// -1 for none): what `update --cpu-period` alone keeps.
pub fn current_quota(unit: &UnitCgroup) -> Option<i64> {
    let v2 = unit.version() == kennel_cgroups::Version::V2;
    let dir = unit.dirs().iter().find(|d| match &d.hierarchy {
        kennel_cgroups::Hierarchy::Unified => v2,
        kennel_cgroups::Hierarchy::V1 { controllers } => {
            !v2 && controllers.iter().any(|c| c == "cpu")
        }
    })?;
    if v2 {
        let text = std::fs::read_to_string(dir.path.join("cpu.max")).ok()?;
        match text.split_whitespace().next()? {
            "max" => Some(-1),
            q => q.parse().ok(),
        }
    } else {
        std::fs::read_to_string(dir.path.join("cpu.cfs_quota_us"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// The content of `file` in the unit's directory for `controller` (v2: the one
/// directory), trimmed; `None` if missing.
pub fn read(unit: &UnitCgroup, controller: &str, file: &str) -> Option<String> {
    let v2 = unit.version() == kennel_cgroups::Version::V2;
    let dir = unit.dirs().iter().find(|d| match &d.hierarchy {
        kennel_cgroups::Hierarchy::Unified => v2,
        kennel_cgroups::Hierarchy::V1 { controllers } => {
            !v2 && controllers.iter().any(|c| c == controller)
        }
    })?;
    std::fs::read_to_string(dir.path.join(file))
        .ok()
        .map(|t| t.trim().to_string())
}

/// runc's `stats` event data for the unit: cpu, memory and pids (what this host has;
/// 0 where a file is missing; a limit of "max" is 0 for pids, as runc reports it).
pub fn stats_data(unit: &UnitCgroup) -> serde_json::Value {
    let st = unit.stats();
    let v2 = unit.version() == kennel_cgroups::Version::V2;
    let num = |c: &str, f: &str| {
        read(unit, c, f)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (mem_limit, failcnt) = if v2 {
        let l = read(unit, "memory", "memory.max")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        (l, 0)
    } else {
        (
            num("memory", "memory.limit_in_bytes"),
            num("memory", "memory.failcnt"),
        )
    };
    let pids_limit = read(unit, "pids", "pids.max")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(0);
    let (user, kernel) = if v2 {
        let t = read(unit, "cpu", "cpu.stat").unwrap_or_default();
        let k = |key: &str| {
            t.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 1000
        };
        (k("user_usec"), k("system_usec"))
    } else {
        // cpuacct.stat is in clock ticks (USER_HZ, 100 on Linux).
        let t = read(unit, "cpuacct", "cpuacct.stat").unwrap_or_default();
        let k = |key: &str| {
            t.lines()
                .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
                * 10_000_000
        };
        (k("user"), k("system"))
    };
    serde_json::json!({
        "cpu": {
            "usage": {
                "total": st.cpu_usage_ns.unwrap_or(0),
                "kernel": kernel,
                "user": user,
            },
            "throttling": {},
        },
        "memory": {
            "usage": {
                "usage": st.memory_current.unwrap_or(0),
                "max": st.memory_peak.unwrap_or(0),
                "limit": mem_limit,
                "failcnt": failcnt,
            },
            "swap": {},
            "kernel": {},
            "kernelTCP": {},
        },
        "pids": {
            "current": st.tasks.unwrap_or(0),
            "limit": pids_limit,
        },
        "blkio": {},
        "hugetlb": {},
    })
}
