//! The daemon's view of cgroups: one per unit, created before each spawn, killed whole at
//! the end of each run and removed, its OOM counter read when the main process ends.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kennel_cgroups::{CgroupError, Cgroups, Part, Stats, UnitCgroup};
use kennel_core::start::CgroupLayout;
use kennel_core::Pid;
use kennel_units::Unit;
use tracing::{info, warn};

use super::leftovers;

/// A step of making a unit's cgroup that failed: the step and the error, which a helper
/// waiting for the v1 part ([`UnitCgroups::finish`]) reports as its own failure.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {cause}")]
pub struct StepError {
    /// `create cgroup` or `restrict devices`.
    pub step: &'static str,
    pub cause: StepCause,
}

/// What went wrong in a [`StepError`].
#[derive(Debug, thiserror::Error)]
pub enum StepCause {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A `container.devices` entry that is not a device node.
    #[error(transparent)]
    Device(#[from] crate::spawn::spec::DeviceNodeError),
}

/// Why a unit's cgroup could not be made before its start ([`UnitCgroups::begin`]).
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    /// The unit has `[resources]` and the machine no usable cgroups.
    #[error("[resources] needs cgroups, which are unavailable: {0}{remedy}", remedy = remedy(.0))]
    Unavailable(Arc<CgroupError>),
    /// `[container] cgroup = "delegate"` and the machine has no usable cgroups.
    #[error("container.cgroup = \"delegate\" needs cgroups, which are unavailable: {0}")]
    NothingToDelegate(Arc<CgroupError>),
    #[error(transparent)]
    Step(#[from] StepError),
}

/// What to do about cgroups being unavailable, when there is something to do: a container
/// runtime mounts them read-only unless told otherwise.
fn remedy(why: &CgroupError) -> &'static str {
    match why {
        CgroupError::ReadOnly { .. } => {
            " (give the container writable cgroups: `--privileged`, or on a cgroup v2 host \
             `--cgroupns=private` with /sys/fs/cgroup mounted read-write; see docs/containers.md)"
        }
        _ => "",
    }
}

fn step(step: &'static str) -> impl FnOnce(StepCause) -> StepError {
    move |cause| StepError { step, cause }
}

/// A unit's cgroup while it has a process, with the OOM count seen at its start.
struct Live {
    /// Its statistics files, open for cheap rereads (status over many units).
    files: kennel_cgroups::StatsFiles,
    /// The unified (or v2) directory, open, until the unit's own helper is started right
    /// in it ([`UnitCgroups::start_target`]).
    dir: Option<std::fs::File>,
    cgroup: UnitCgroup,
    oom_base: u64,
    pid: Option<Pid>,
}

pub struct UnitCgroups {
    /// The detected layout, or why there is none (then units with `[resources]` fail).
    layout: Result<Cgroups, Arc<CgroupError>>,
    live: HashMap<String, Live>,
    /// Cgroups of runs that ended, emptied, whose directories are still to be removed:
    /// that waits until the replies of the turn are written ([`UnitCgroups::remove_doomed`]),
    /// or until the unit starts again.
    doomed: Vec<UnitCgroup>,
    /// Units whose last run's cgroup could not be emptied and removed (a kill that timed
    /// out, a stale cgroup of an earlier kennel that would not go): processes of that run
    /// may be left ([`UnitCgroups::previous_run_gone`]).
    unsettled: HashSet<String>,
    /// The last reading of each running unit's statistics, and when, by the pid of its
    /// main process: a listing of every unit reuses a recent one. Keyed by pid, not
    /// name: a listing looks up every unit, and an integer key in a small table costs far
    /// less than a name in `live` (whose entries are large and scattered in memory).
    sampled: HashMap<Pid, (Instant, Stats)>,
    /// Without usable cgroups: each running unit's main process, by pid, whose leftovers
    /// [`leftovers::kill`] finds at the end of its run.
    bare: HashMap<Pid, String>,
}

impl UnitCgroups {
    /// Detect the hierarchy, prepare the parent, and clean up what a previous kennel (that
    /// crashed) left behind: cgroups under the parent named like one of `units` (only
    /// those: the parent may be shared with cgroups that are not kennel's).
    pub fn setup<'a>(
        parent: Option<&str>,
        units: impl IntoIterator<Item = &'a str>,
    ) -> UnitCgroups {
        let ours: HashSet<&str> = units.into_iter().collect();
        let mut unsettled = HashSet::new();
        let layout = Cgroups::detect(parent).and_then(|c| c.prepare().map(|()| c));
        let layout = match layout {
            Ok(c) => {
                match c.stale() {
                    Ok(names) => {
                        for name in names.into_iter().filter(|n| ours.contains(n.as_str())) {
                            info!(unit = %name, "removing a stale cgroup from an earlier run");
                            if let Err(e) = c.unit(&name).remove() {
                                warn!(unit = %name, "removing stale cgroup: {e}");
                                unsettled.insert(name);
                            }
                        }
                    }
                    Err(e) => warn!("listing stale cgroups: {e}"),
                }
                Ok(c)
            }
            Err(e) => {
                warn!(
                    "cgroups unavailable ({e}); units run without their own cgroup and [resources] units cannot start{}",
                    remedy(&e)
                );
                Err(Arc::new(e))
            }
        };
        UnitCgroups {
            layout,
            live: HashMap::new(),
            doomed: Vec::new(),
            unsettled,
            sampled: HashMap::new(),
            bare: HashMap::new(),
        }
    }

    /// Create the unit's cgroup, first part: the unified (or v2) directory, with everything
    /// v2 applies, where the helper can be started at once. Returns the files its helper
    /// must join, the v1 hierarchies' included, which [`UnitCgroups::finish`] makes (with
    /// their limits), before the helper starts or while it does
    /// (`V1Join::AfterUnshare`).
    pub fn begin(&mut self, unit: &Unit) -> Result<Vec<PathBuf>, BeginError> {
        let layout = match &self.layout {
            Ok(l) => l,
            Err(why) if !unit.resources.is_empty() => {
                return Err(BeginError::Unavailable(why.clone()))
            }
            Err(why) if delegates(unit) => return Err(BeginError::NothingToDelegate(why.clone())),
            Err(_) => return Ok(Vec::new()),
        };
        // Its previous run's cgroup, not removed yet: remove it before making the new one.
        if let Some(i) = self.doomed.iter().position(|c| c.name() == unit.name) {
            let ended = self.doomed.swap_remove(i);
            remove_ended(&mut self.unsettled, &ended);
        }
        let mut cgroup = layout
            .create_part(&unit.name, &unit.resources, Part::Unified)
            .map_err(|e| step("create cgroup")(e.into()))?;
        if !layout.has_rest() {
            restrict_devices(&cgroup, unit).map_err(step("restrict devices"))?;
        }
        if delegates(unit) {
            cgroup
                .delegate(Part::Unified)
                .map_err(|e| step("delegate cgroup")(e.into()))?;
        }
        let procs = cgroup.join_files();
        let dir = cgroup.entry().and_then(|d| std::fs::File::open(d).ok());
        self.live.insert(
            unit.name.clone(),
            Live {
                files: cgroup.stats_files(),
                dir,
                oom_base: cgroup.oom_kills(),
                cgroup,
                pid: None,
            },
        );
        Ok(procs)
    }

    /// The layout, for the start plan (`kennel_core::start::Host`).
    pub fn layout(&self) -> CgroupLayout {
        match &self.layout {
            Err(_) => CgroupLayout::None,
            Ok(l) => match (l.has_rest(), l.has_unified()) {
                (false, true) => CgroupLayout::V2,
                (true, true) => CgroupLayout::Hybrid,
                (true, false) => CgroupLayout::V1,
                (false, false) => CgroupLayout::None,
            },
        }
    }

    /// The second part of [`UnitCgroups::begin`]: the v1 hierarchies' directories,
    /// limits and device rules of `unit`, whose cgroup [`UnitCgroups::begin`] made.
    pub fn finish(&mut self, unit: &Unit) -> Result<(), StepError> {
        let Ok(layout) = &self.layout else {
            return Ok(());
        };
        if !layout.has_rest() {
            return Ok(());
        }
        let mut cgroup = layout
            .create_part(&unit.name, &unit.resources, Part::Rest)
            .map_err(|e| step("create cgroup")(e.into()))?;
        restrict_devices(&cgroup, unit).map_err(step("restrict devices"))?;
        if delegates(unit) {
            cgroup
                .delegate(Part::Rest)
                .map_err(|e| step("delegate cgroup")(e.into()))?;
        }
        if let Some(l) = self.live.get_mut(&unit.name) {
            l.oom_base = cgroup.oom_kills();
            l.files = cgroup.stats_files();
        }
        Ok(())
    }

    pub fn spawned(&mut self, unit: &str, pid: Pid) {
        // Figures kept for an earlier process with this pid are not this one's.
        self.sampled.remove(&pid);
        if let Some(l) = self.live.get_mut(unit) {
            l.pid = Some(pid);
        } else if self.layout.is_err() {
            self.bare.insert(pid, unit.to_string());
        }
    }

    fn unit_of(&self, pid: Pid) -> Option<&str> {
        self.live
            .iter()
            .find(|(_, l)| l.pid == Some(pid))
            .map(|(n, _)| n.as_str())
    }

    /// A process ended: if it was a unit's main process, the unit's name and whether the
    /// OOM killer struck in its cgroup during this run.
    pub fn exited(&self, pid: Pid) -> Option<(String, bool)> {
        let name = self.unit_of(pid)?;
        let l = &self.live[name];
        Some((name.to_string(), l.cgroup.oom_kills() > l.oom_base))
    }

    /// SIGKILL to a unit's group also kills everything else in its cgroup (a process that
    /// double-forked or called setsid left the group, not the cgroup). Once its main
    /// process is gone, the emptied cgroup is set aside for [`UnitCgroups::remove_doomed`].
    pub fn kill(&mut self, pid: Pid, main_alive: bool) {
        if !main_alive {
            if let Some(unit) = self.bare.remove(&pid) {
                let n = leftovers::kill(pid, &unit);
                if n > 0 {
                    info!(unit = %unit, "killed {n} process(es) its run left behind (no cgroup)");
                }
                return;
            }
        }
        let Some(name) = self.unit_of(pid).map(str::to_string) else {
            return;
        };
        let Some(l) = self.live.get(&name) else {
            return;
        };
        // After the main process, usually nothing is left: one read of `cgroup.events`
        // says so, instead of listing every hierarchy (every process kennel moves in joins
        // the unified tree first; anything in a v1 directory only is killed by `remove`).
        if main_alive || l.cgroup.populated() != Some(false) {
            if let Err(e) = l.cgroup.kill_all() {
                warn!(unit = %name, "kill cgroup {}: {e}", l.cgroup.display());
            }
        }
        if !main_alive {
            self.sampled.remove(&pid);
            if let Some(l) = self.live.remove(&name) {
                self.doomed.push(l.cgroup);
            }
        }
    }

    /// Whether [`UnitCgroups::remove_doomed`] has work.
    pub fn has_doomed(&self) -> bool {
        !self.doomed.is_empty()
    }

    /// Removes the directories of the cgroups whose runs ended. The owner calls it after
    /// the replies of its turn are written: a `start` of a oneshot or a `stop` is answered
    /// once the processes are gone, without waiting for ten rmdirs.
    pub fn remove_doomed(&mut self) {
        for c in std::mem::take(&mut self.doomed) {
            remove_ended(&mut self.unsettled, &c);
        }
    }

    /// Whether every process of `unit`'s previous run is known to be gone: the cgroup of
    /// that run was removed, which the kernel refuses while a process is in it (killing
    /// them first, [`UnitCgroup::remove`] waits until they are gone). Never without
    /// cgroups. Asked after [`UnitCgroups::begin`], which removes that cgroup if it is
    /// still there.
    pub fn previous_run_gone(&self, unit: &str) -> bool {
        self.layout.is_ok()
            && !self.unsettled.contains(unit)
            && !self.doomed.iter().any(|c| c.name() == unit)
    }

    /// The unified (or v2) directory of a unit whose cgroup [`UnitCgroups::begin`]
    /// just made, open, and its path: where [`crate::spawn::launch::launch`] starts the
    /// unit's own helper. Once only, and only while the cgroup is idle (empty, not
    /// frozen): `clone3` with `CLONE_VFORK` holds the daemon's thread until the child
    /// execs, which in a frozen cgroup is never (`kennel commit` freezes a running unit)
    /// and in a CPU-throttled busy one is after the quota period. Exec and probes join a
    /// running unit's cgroup from outside ([`UnitCgroups::procs_of`]), never through this.
    pub fn start_target(&mut self, unit: &str) -> Option<(std::fs::File, PathBuf)> {
        let l = self.live.get_mut(unit)?;
        let dir = l.dir.take()?;
        if !l.cgroup.idle() {
            return None;
        }
        Some((dir, l.cgroup.entry()?))
    }

    /// The unified (or v2) directory of running unit `unit`, opened now, and its path:
    /// where an exec's helper is forked right in (by the zygote, which does not wait for
    /// it, so a frozen unit holds up that helper only).
    pub fn unified_of(&self, unit: &str) -> Option<(std::fs::File, PathBuf)> {
        let path = self.live.get(unit)?.cgroup.entry()?;
        let dir = std::fs::File::open(&path).ok()?;
        Some((dir, path))
    }

    /// The files through which a process joins a running unit (exec, probes): see
    /// `UnitCgroup::join_files`. The helper writes them itself: a frozen or throttled
    /// unit then holds up that helper, not the daemon.
    pub fn procs_of(&self, unit: &str) -> Vec<PathBuf> {
        self.live
            .get(unit)
            .map(|l| l.cgroup.join_files())
            .unwrap_or_default()
    }

    /// The processes now in the cgroup of the unit whose main process is `pid`.
    pub fn pids_with_main(&self, pid: Pid) -> Vec<Pid> {
        self.unit_of(pid)
            .map(|u| self.pids_of(u))
            .unwrap_or_default()
    }

    /// The processes of `unit`'s cgroup now (none if it has no cgroup).
    pub fn pids_of(&self, unit: &str) -> Vec<Pid> {
        self.live
            .get(unit)
            .and_then(|l| l.cgroup.pids().ok())
            .unwrap_or_default()
    }

    /// The hierarchies of `unit`'s cgroup (made by [`UnitCgroups::begin`]), for the
    /// mounts of a container its subtree is delegated to.
    pub fn hierarchies_of(&self, unit: &str) -> Vec<kennel_cgroups::Hierarchy> {
        self.live
            .get(unit)
            .map(|l| l.cgroup.hierarchies())
            .unwrap_or_default()
    }

    /// The statistics of `unit`, whose main process is `pid`, read again unless the last
    /// reading is younger than `max_age` (`Duration::ZERO`: always read). Reading the four
    /// statistics files costs kernel time even through kept-open files, which repeated
    /// listings of many units (a dashboard polling `status`) would pay on every request
    /// (docs/performance.md).
    pub fn stats(
        &mut self,
        unit: &str,
        pid: Pid,
        now: Instant,
        max_age: Duration,
    ) -> Option<Stats> {
        if let Some((at, s)) = self.sampled.get(&pid) {
            if now.saturating_duration_since(*at) < max_age {
                return Some(s.clone());
            }
        }
        let l = self.live.get(unit)?;
        let s = l.files.read(&l.cgroup);
        self.sampled.insert(pid, (now, s.clone()));
        Some(s)
    }

    /// At shutdown: remove every unit cgroup still there.
    pub fn remove_all(&mut self) {
        self.sampled.clear();
        self.remove_doomed();
        for (_, l) in self.live.drain() {
            remove(&l.cgroup);
        }
    }
}

/// Whether `unit`'s processes get a subtree of their own (`[container] cgroup =
/// "delegate"`): they live in the `payload` child of its cgroup (`UnitCgroup::delegate`).
fn delegates(unit: &Unit) -> bool {
    unit.container
        .as_ref()
        .is_some_and(|c| c.cgroup == kennel_units::CgroupAccess::Delegate)
}

/// A container unit's device rules on its cgroup (v1 devices hierarchy, or v2 eBPF).
fn restrict_devices(cgroup: &UnitCgroup, unit: &Unit) -> Result<(), StepCause> {
    let Some(c) = &unit.container else {
        return Ok(());
    };
    let mut rules = kennel_cgroups::default_rules();
    for d in &c.security.devices {
        let node = crate::spawn::spec::DeviceNode::of(d)?;
        rules.push(kennel_cgroups::DeviceRule::new(
            node.kind,
            Some(node.major),
            Some(node.minor),
            "rwm",
        ));
    }
    Ok(cgroup.restrict_devices(&rules)?)
}

/// Removes the cgroup `c` of a run that ended, noting in `unsettled` whether all that
/// run's processes are known gone.
fn remove_ended(unsettled: &mut HashSet<String>, c: &UnitCgroup) {
    if remove(c) {
        unsettled.remove(c.name());
    } else {
        unsettled.insert(c.name().to_string());
    }
}

/// Removes `c` (killing what is left in it); false, with a warning, if it could not.
fn remove(c: &UnitCgroup) -> bool {
    match c.remove() {
        Ok(()) => true,
        Err(e) => {
            warn!(unit = %c.name(), "remove cgroup {}: {e}", c.display());
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without cgroups nothing shows that a run's processes are gone: a container never
    /// keeps its writable layer then.
    #[test]
    fn without_cgroups_no_previous_run_is_known_gone() {
        let cgroups = UnitCgroups {
            layout: Err(Arc::new(CgroupError::NotMounted {
                path: PathBuf::from("/proc/self/mountinfo"),
            })),
            live: HashMap::new(),
            doomed: Vec::new(),
            unsettled: HashSet::new(),
            sampled: HashMap::new(),
            bare: HashMap::new(),
        };
        assert!(!cgroups.previous_run_gone("web"));
    }
}
