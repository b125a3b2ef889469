//! cgroup v1: limits written per controller hierarchy, cpuset initialization (a new
//! cpuset cgroup starts with empty `cpus`/`mems` and refuses tasks), and the v1 freezer.

use std::path::Path;
use std::time::Duration;

use kennel_units::Resources;

use crate::detect::Hierarchy;
use crate::fs::{self, set_or_reset};
use crate::{limits, CgroupError};

/// Applies `res` to the unit directory `dir` of one v1 hierarchy mounted at `mount`: only
/// the controllers this hierarchy carries. Soft failures (no `blkio.weight`) are pushed
/// to `warnings`.
pub(crate) fn apply(
    mount: &Path,
    dir: &Path,
    hierarchy: &Hierarchy,
    res: &Resources,
    fresh: bool,
    warnings: &mut Vec<String>,
) -> Result<(), CgroupError> {
    if hierarchy.has("memory") {
        let limit = res.memory_max.map(|b| b.to_string());
        set_or_reset(dir, "memory.limit_in_bytes", limit, "-1", fresh)?;
    }
    if hierarchy.has("cpu") {
        if res.cpu_millis.is_some() {
            fs::write(
                &dir.join("cpu.cfs_period_us"),
                &limits::CPU_PERIOD_US.to_string(),
            )?;
        }
        let quota = res.cpu_millis.map(|m| limits::cpu_quota_us(m).to_string());
        set_or_reset(dir, "cpu.cfs_quota_us", quota, "-1", fresh)?;
        let shares = res.cpu_weight.map(|w| limits::cpu_shares(w).to_string());
        set_or_reset(dir, "cpu.shares", shares, "1024", fresh)?;
    }
    if hierarchy.has("pids") {
        let max = res.pids_max.map(|n| n.to_string());
        set_or_reset(dir, "pids.max", max, "max", fresh)?;
    }
    if hierarchy.has("blkio") && !(fresh && res.io_weight.is_none()) {
        apply_blkio(dir, res.io_weight, warnings)?;
    }
    if hierarchy.has("cpuset") {
        init_cpuset(mount, dir)?;
        let cpus = match &res.cpuset {
            Some(list) => list.clone(),
            // A fresh cpuset has just been given its parent's set.
            None if fresh => return Ok(()),
            // Reset: the parent's set (a removed `cpuset` key lifts the restriction).
            None => match dir.parent() {
                Some(parent) => fs::read(&parent.join("cpuset.cpus"))?,
                None => return Ok(()),
            },
        };
        fs::write(&dir.join("cpuset.cpus"), &cpus)?;
    }
    Ok(())
}

/// `blkio.weight` (CFQ) or `blkio.bfq.weight` (BFQ), 10..=1000; neither file means no
/// proportional I/O scheduler on this kernel: a warning, not an error.
fn apply_blkio(
    dir: &Path,
    weight: Option<u32>,
    warnings: &mut Vec<String>,
) -> Result<(), CgroupError> {
    let file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| dir.join(f).exists());
    match (weight, file) {
        (Some(w), Some(file)) => fs::write(&dir.join(file), &limits::blkio_weight(w).to_string()),
        (Some(_), None) => {
            warnings.push(format!(
                "io_weight ignored: {} does not exist (no BFQ/CFQ I/O scheduler)",
                dir.join("blkio.weight").display()
            ));
            Ok(())
        }
        (None, Some(file)) => {
            let default = if file == "blkio.weight" { "500" } else { "100" };
            fs::write(&dir.join(file), default)
        }
        (None, None) => Ok(()),
    }
}

/// Fills empty `cpuset.cpus` and `cpuset.mems` of `dir` from its parent, first doing the
/// same for empty ancestors up to the mount (the hierarchy root is always populated).
/// Only empty files are written, so cgroups in use are never changed.
pub(crate) fn init_cpuset(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    if dir == mount || !dir.starts_with(mount) {
        return Ok(());
    }
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let path = dir.join(file);
        if fs::read(&path)?.is_empty() {
            init_cpuset(mount, parent)?;
            let value = fs::read(&parent.join(file))?;
            fs::write(&path, &value)?;
        }
    }
    Ok(())
}

/// Freezes the freezer cgroup `dir` and waits (at most `wait`) until the kernel reports
/// it `FROZEN` rather than `FREEZING`.
pub(crate) fn freeze(dir: &Path, wait: Duration) -> Result<(), CgroupError> {
    let state = dir.join("freezer.state");
    fs::write(&state, "FROZEN")?;
    let frozen = fs::poll_until(wait, || {
        fs::read_opt(&state).map_or(true, |s| s == "FROZEN")
    });
    if frozen {
        Ok(())
    } else {
        Err(CgroupError::FreezeTimeout {
            path: state,
            ms: wait.as_millis() as u64,
        })
    }
}

/// Thaws the freezer cgroup `dir`.
pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    fs::write(&dir.join("freezer.state"), "THAWED")
}
