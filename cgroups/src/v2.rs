//! cgroup v2: limits in the unit's one directory, enabling controllers for children
//! (`cgroup.subtree_control`), and the v2 freezer (`cgroup.freeze`, `cgroup.events`).

use std::path::Path;
use std::time::Duration;

use kennel_units::Resources;

use crate::fs::{self, set_or_reset};
use crate::{limits, CgroupError};

/// The controllers kennel enables for unit cgroups, where the parent offers them.
pub(crate) const WANTED: &[&str] = &["cpuset", "cpu", "io", "memory", "pids"];

/// Applies `res` to the unit directory `dir`. A limit the unit asks for whose file is
/// missing (controller not enabled) is an error naming the file, except `io_weight`, which
/// needs a proportional I/O scheduler and only gives a warning.
pub(crate) fn apply(
    dir: &Path,
    res: &Resources,
    fresh: bool,
    warnings: &mut Vec<String>,
) -> Result<(), CgroupError> {
    let memory = res.memory_max.map(|b| b.to_string());
    set_or_reset(dir, "memory.max", memory, "max", fresh)?;
    let cpu = res.cpu_millis.map(limits::cpu_max);
    let unlimited = format!("max {}", limits::CPU_PERIOD_US);
    set_or_reset(dir, "cpu.max", cpu, &unlimited, fresh)?;
    let weight = res.cpu_weight.map(|w| limits::weight(w).to_string());
    set_or_reset(dir, "cpu.weight", weight, "100", fresh)?;
    let pids = res.pids_max.map(|n| n.to_string());
    set_or_reset(dir, "pids.max", pids, "max", fresh)?;
    set_or_reset(dir, "cpuset.cpus", res.cpuset.clone(), "", fresh)?;
    if dir.join("io.weight").exists() {
        let io = res
            .io_weight
            .map(|w| format!("default {}", limits::weight(w)));
        set_or_reset(dir, "io.weight", io, "default 100", fresh)?;
    } else if dir.join("io.bfq.weight").exists() {
        let io = res
            .io_weight
            .map(|w| limits::blkio_weight(w).clamp(1, 1000).to_string());
        set_or_reset(dir, "io.bfq.weight", io, "100", fresh)?;
    } else if res.io_weight.is_some() {
        warnings.push(format!(
            "io_weight ignored: {} does not exist (io controller not enabled, or no proportional I/O scheduler)",
            dir.join("io.weight").display()
        ));
    }
    Ok(())
}

/// Enables in `dir/cgroup.subtree_control` those of [`WANTED`] that `dir/cgroup.controllers`
/// offers and that are not enabled yet, in one write. Returns what it enabled.
pub(crate) fn enable_controllers(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let available = fs::read(&dir.join("cgroup.controllers"))?;
    let control = dir.join("cgroup.subtree_control");
    let enabled = fs::read(&control)?;
    let missing: Vec<String> = WANTED
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        let line: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
        fs::write(&control, &line.join(" "))?;
    }
    Ok(missing)
}

/// Whether `cgroup.events` of `dir` says `frozen 1`; `None` when there is no such file.
fn frozen(dir: &Path) -> Option<bool> {
    let events = fs::read_opt(&dir.join("cgroup.events"))?;
    Some(events.lines().any(|l| l.trim() == "frozen 1"))
}

/// Freezes `dir` (and its subtree) and waits for `cgroup.events` to say `frozen 1`.
pub(crate) fn freeze(dir: &Path, wait: Duration) -> Result<(), CgroupError> {
    fs::write(&dir.join("cgroup.freeze"), "1")?;
    if fs::poll_until(wait, || frozen(dir).unwrap_or(true)) {
        Ok(())
    } else {
        Err(CgroupError::FreezeTimeout {
            path: dir.join("cgroup.events"),
            ms: wait.as_millis() as u64,
        })
    }
}

/// Thaws `dir`.
pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    fs::write(&dir.join("cgroup.freeze"), "0")
}
