//! `Stats` and the OOM-kill counter: best-effort reads of memory, CPU and task numbers
//! from whichever files this kernel and hierarchy provide.

use serde::{Deserialize, Serialize};

use crate::fs;
use crate::{UnitCgroup, Version};

/// Usage numbers of a unit cgroup; `None` where the kernel does not provide the file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Memory in use, bytes (v2 `memory.current`, v1 `memory.usage_in_bytes`).
    pub memory_current: Option<u64>,
    /// Highest memory use seen, bytes (v2 `memory.peak` on kernels >= 5.19, v1
    /// `memory.max_usage_in_bytes`).
    pub memory_peak: Option<u64>,
    /// CPU time used, nanoseconds (v2 `cpu.stat` `usage_usec` * 1000, v1 `cpuacct.usage`).
    pub cpu_usage_ns: Option<u64>,
    /// Processes and threads (`pids.current`), else the number of processes listed.
    pub tasks: Option<u64>,
}

/// The value of `key` in a flat-keyed file (`key value` per line), e.g. `oom_kill 3`.
pub(crate) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next()? == key).then_some(())?;
        parts.next()?.parse().ok()
    })
}

/// Reads what there is; see [`Stats`].
pub(crate) fn collect(unit: &UnitCgroup) -> Stats {
    let file = |controller: &str, name: &str| unit.dir_for(controller).map(|d| d.join(name));
    let num =
        |controller: &str, name: &str| file(controller, name).and_then(|p| fs::read_u64_opt(&p));
    let unified_usage = || {
        let text = fs::read_opt(&unit.unified()?.join("cpu.stat"))?;
        keyed(&text, "usage_usec").map(|us| us * 1000)
    };
    let (memory_current, memory_peak, cpu_usage_ns) = match unit.version() {
        Version::V2 => (
            num("memory", "memory.current"),
            num("memory", "memory.peak"),
            unified_usage(),
        ),
        Version::V1 => (
            num("memory", "memory.usage_in_bytes"),
            num("memory", "memory.max_usage_in_bytes"),
            num("cpuacct", "cpuacct.usage").or_else(unified_usage),
        ),
    };
    let tasks = num("pids", "pids.current").or_else(|| unit.pids().ok().map(|p| p.len() as u64));
    Stats {
        memory_current,
        memory_peak,
        cpu_usage_ns,
        tasks,
    }
}

/// The statistics files of one unit, kept open: reading them again (`pread` at offset 0
/// regenerates a cgroup file's content) costs no path lookup, which is most of the cost
/// of a status request over many units.
#[derive(Debug)]
pub struct StatsFiles {
    memory_current: Option<std::fs::File>,
    memory_peak: Option<std::fs::File>,
    /// The CPU usage file, and whether it is v2's `cpu.stat` (`usage_usec` key).
    cpu: Option<(std::fs::File, bool)>,
    tasks: Option<std::fs::File>,
}

impl StatsFiles {
    /// Open what this kernel and hierarchy provide (see [`Stats`]).
    pub(crate) fn open(unit: &UnitCgroup) -> StatsFiles {
        let open = |p: Option<std::path::PathBuf>| p.and_then(|p| std::fs::File::open(p).ok());
        let file = |controller: &str, name: &str| unit.dir_for(controller).map(|d| d.join(name));
        let cpu_stat = || open(unit.unified().map(|d| d.join("cpu.stat"))).map(|f| (f, true));
        let (memory_current, memory_peak, cpu) = match unit.version() {
            Version::V2 => (
                open(file("memory", "memory.current")),
                open(file("memory", "memory.peak")),
                cpu_stat(),
            ),
            Version::V1 => (
                open(file("memory", "memory.usage_in_bytes")),
                open(file("memory", "memory.max_usage_in_bytes")),
                open(file("cpuacct", "cpuacct.usage"))
                    .map(|f| (f, false))
                    .or_else(cpu_stat),
            ),
        };
        StatsFiles {
            memory_current,
            memory_peak,
            cpu,
            tasks: open(file("pids", "pids.current")),
        }
    }

    /// Read the numbers now; `unit` is used when there is no `pids.current`.
    pub fn read(&self, unit: &UnitCgroup) -> Stats {
        let text = |f: &std::fs::File| {
            use std::os::unix::fs::FileExt;
            let mut buf = [0u8; 1024];
            let n = f.read_at(&mut buf, 0).ok()?;
            Some(String::from_utf8_lossy(&buf[..n]).into_owned())
        };
        let num = |f: &Option<std::fs::File>| {
            f.as_ref()
                .and_then(text)
                .and_then(|t| t.trim().parse().ok())
        };
        let cpu_usage_ns = self.cpu.as_ref().and_then(|(f, keyed_usec)| {
            let t = text(f)?;
            if *keyed_usec {
                keyed(&t, "usage_usec").map(|us| us * 1000)
            } else {
                t.trim().parse().ok()
            }
        });
        Stats {
            memory_current: num(&self.memory_current),
            memory_peak: num(&self.memory_peak),
            cpu_usage_ns,
            tasks: num(&self.tasks).or_else(|| unit.pids().ok().map(|p| p.len() as u64)),
        }
    }
}

/// OOM kills in the unit; 0 when the kernel does not count them.
pub(crate) fn oom_kills(unit: &UnitCgroup) -> u64 {
    let name = match unit.version() {
        Version::V2 => "memory.events",
        Version::V1 => "memory.oom_control",
    };
    unit.dir_for("memory")
        .and_then(|d| fs::read_opt(&d.join(name)))
        .and_then(|text| keyed(&text, "oom_kill"))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed(events, "oom_kill"), Some(2));
        assert_eq!(keyed(events, "oom"), Some(2));
        assert_eq!(keyed(events, "missing"), None);
        let oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n";
        assert_eq!(keyed(oom_control, "oom_kill"), Some(7));
        let cpu_stat = "usage_usec 12345\nuser_usec 10000\nsystem_usec 2345\n";
        assert_eq!(keyed(cpu_stat, "usage_usec"), Some(12345));
        assert_eq!(keyed("oom_kill x", "oom_kill"), None);
    }
}
