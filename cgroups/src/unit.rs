//! `UnitCgroup`: one unit's cgroup directories (one per hierarchy), and what the daemon
//! and the spawn helper do with them: join, list, kill everything, freeze, remove.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::detect::Hierarchy;
use crate::{fs, stats, v1, v2, CgroupError, Stats, Version};

/// Kill rounds before [`UnitCgroup::kill_all`] gives up.
const KILL_ROUNDS: u32 = 50;
/// How long one kill round waits for the processes to be gone.
const KILL_WAIT: Duration = Duration::from_millis(100);
/// How long a removal retries a directory that is still busy (its processes dying).
const RMDIR_WAIT: Duration = Duration::from_secs(2);
/// How long [`UnitCgroup::freeze`] waits for the kernel to report frozen.
const FREEZE_WAIT: Duration = Duration::from_secs(2);

/// The child of a delegated unit cgroup ([`UnitCgroup::delegate`]) that holds the unit's
/// processes and is given to them: the root of a container's cgroup namespace. (The name
/// systemd-nspawn gives the same child.)
pub const PAYLOAD_LEAF: &str = "payload";

/// One directory of a unit cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitDir {
    /// The hierarchy it belongs to.
    pub hierarchy: Hierarchy,
    /// `MOUNT/PARENT/NAME`.
    pub path: PathBuf,
}

/// A unit's cgroup: on v2 one directory, on v1 one per used hierarchy (plus the unified
/// tree on hybrid hosts). Plain paths, so it can be sent to the spawn helper as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitCgroup {
    name: String,
    version: Version,
    dirs: Vec<UnitDir>,
    /// The unit's processes live in [`PAYLOAD_LEAF`] below each directory
    /// ([`delegate`](Self::delegate)).
    #[serde(default)]
    delegated: bool,
    /// Soft failures from [`Cgroups::create`](crate::Cgroups::create); not sent anywhere.
    #[serde(skip)]
    warnings: Vec<String>,
}

/// Sends SIGKILL to `pid`; a process already gone is fine.
fn sigkill(pid: i32, dir: &Path) -> Result<(), CgroupError> {
    if pid <= 0 {
        return Ok(());
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
        return Ok(());
    }
    let source = io::Error::last_os_error();
    if source.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(CgroupError::Signal {
        pid,
        path: dir.to_path_buf(),
        source,
    })
}

impl UnitCgroup {
    pub(crate) fn new(name: &str, version: Version, dirs: Vec<UnitDir>) -> UnitCgroup {
        UnitCgroup {
            name: name.to_string(),
            version,
            dirs,
            delegated: false,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn set_warnings(&mut self, warnings: Vec<String>) {
        self.warnings = warnings;
    }

    /// The unit name (the last path component of every directory).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hierarchy version the cgroup was laid out for.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Every directory, one per hierarchy.
    pub fn dirs(&self) -> &[UnitDir] {
        &self.dirs
    }

    /// Warning-level notes from creation, e.g. `io_weight ignored: .../blkio.weight does
    /// not exist (...)`. Empty when everything asked for was applied.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The directory of the v1 hierarchy carrying `controller`, or the v2 directory.
    pub(crate) fn dir_for(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| match self.version {
                Version::V2 => true,
                Version::V1 => d.hierarchy.has(controller),
            })
            .map(|d| d.path.as_path())
    }

    /// The unified-tree directory: the only one on v2, the tracking one on hybrid v1.
    pub fn unified(&self) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.hierarchy == Hierarchy::Unified)
            .map(|d| d.path.as_path())
    }

    /// The directory processes are tracked in: the unified one when there is one, else the
    /// v1 pids, freezer or memory hierarchy, else the first.
    pub(crate) fn tracking(&self) -> Option<&Path> {
        self.unified()
            .or_else(|| {
                ["pids", "freezer", "memory"]
                    .iter()
                    .find_map(|c| self.dir_for(c))
            })
            .or_else(|| self.dirs.first().map(|d| d.path.as_path()))
    }

    /// The main directory for messages: v2's, or v1 memory's, else the first.
    fn primary(&self) -> Option<&Path> {
        match self.version {
            Version::V2 => self.unified(),
            Version::V1 => self.dir_for("memory"),
        }
        .or_else(|| self.dirs.first().map(|d| d.path.as_path()))
    }

    /// Whether the unit's processes live in its [`PAYLOAD_LEAF`] child.
    pub fn delegated(&self) -> bool {
        self.delegated
    }

    /// Delegates the unit's subtree to its processes: makes the child [`PAYLOAD_LEAF`]
    /// in the directories of `part` (the unified tree's, the v1 hierarchies', or all:
    /// [`Cgroups::create_part`](crate::Cgroups::create_part)'s two steps), and from now on
    /// joins, [`entry`](Self::entry) and the files of [`join_files`](Self::join_files)
    /// name that child, while limits, statistics, kills, freezing and removal stay on the
    /// unit's directory, which the processes never see (a cgroup namespace rooted at the
    /// child). Limits are hierarchical: whatever they make below the child is held by the
    /// unit's. On v2 the controllers the unit's directory offers are enabled in its
    /// `cgroup.subtree_control` for the child (the unit's directory then holds no
    /// process: the no-internal-processes rule). Made after the unit's device rules: a v1
    /// devices cgroup copies its parent's rules when it is created, and its parent's
    /// cannot be narrowed while it has children. Idempotent.
    pub fn delegate(&mut self, part: crate::Part) -> Result<(), CgroupError> {
        self.delegated = true;
        for d in &self.dirs {
            let unified = self.version == Version::V2 || d.hierarchy == Hierarchy::Unified;
            match part {
                crate::Part::All => {}
                crate::Part::Unified if unified => {}
                crate::Part::Rest if !unified => {}
                crate::Part::Unified | crate::Part::Rest => continue,
            }
            if self.version == Version::V2 {
                v2::enable_controllers(&d.path)?;
            }
            let payload = d.path.join(PAYLOAD_LEAF);
            fs::mkdir_chain(&d.path, &payload)?;
            if d.hierarchy.has("cpuset") {
                // Filled from the unit's, which is (stopping the walk there).
                v1::init_cpuset(&d.path, &payload)?;
            }
        }
        Ok(())
    }

    /// Where the unit's processes go in `dir`: the directory itself, or its
    /// [`PAYLOAD_LEAF`] when delegated.
    fn entry_of(&self, dir: &Path) -> PathBuf {
        if self.delegated {
            dir.join(PAYLOAD_LEAF)
        } else {
            dir.to_path_buf()
        }
    }

    /// The unified (or v2) directory a process of the unit is started in or moved into:
    /// [`unified`](Self::unified), or its [`PAYLOAD_LEAF`] when delegated.
    pub fn entry(&self) -> Option<PathBuf> {
        self.unified().map(|d| self.entry_of(d))
    }

    /// The directories in join order: the unified tree first, then each v1 hierarchy. A
    /// process kennel moves into the unit is in the unified directory before it is in any
    /// v1 one, so the unified tree's `populated` covers every process of the unit
    /// ([`populated`](Self::populated)).
    fn join_order(&self) -> impl Iterator<Item = &UnitDir> {
        let unified = self
            .dirs
            .iter()
            .filter(|d| d.hierarchy == Hierarchy::Unified);
        let v1 = self
            .dirs
            .iter()
            .filter(|d| d.hierarchy != Hierarchy::Unified);
        unified.chain(v1)
    }

    /// Every `cgroup.procs` the spawn helper must write its own pid into before exec (and
    /// before it unshares a cgroup namespace), the unified tree first (see
    /// [`populated`](Self::populated)); in the [`PAYLOAD_LEAF`] when delegated. Writing
    /// `0` means "the writing process" and is right in any pid namespace.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.join_order()
            .map(|d| self.entry_of(&d.path).join("cgroup.procs"))
            .collect()
    }

    /// What a single-threaded process writes `0` into to join the unit, the unified tree
    /// first (see [`populated`](Self::populated)): `cgroup.procs` in the unified tree, `tasks` in each v1
    /// hierarchy. A `cgroup.procs` write takes the kernel's global threadgroup lock, whose
    /// first taking after a quiet moment waits for an RCU grace period (kennel's
    /// docs/performance.md); `0` into `tasks` moves only the calling thread and skips that
    /// lock (kernels >= 6.0; older ones take it). The unified
    /// directory's file is skipped by a helper started inside it (`CLONE_INTO_CGROUP`).
    pub fn join_files(&self) -> Vec<PathBuf> {
        self.join_order()
            .map(|d| {
                let dir = self.entry_of(&d.path);
                match (self.version, &d.hierarchy) {
                    (Version::V1, Hierarchy::V1 { .. }) => dir.join("tasks"),
                    _ => dir.join("cgroup.procs"),
                }
            })
            .collect()
    }

    /// The hierarchies the unit has a directory in, in join order (the unified tree
    /// first): what a delegated container mounts.
    pub fn hierarchies(&self) -> Vec<Hierarchy> {
        self.join_order().map(|d| d.hierarchy.clone()).collect()
    }

    /// Moves `pid` (its whole thread group) into the unit, in every hierarchy; `0` is the
    /// calling process.
    pub fn join(&self, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for file in self.procs_files() {
            fs::write(&file, &pid)?;
        }
        Ok(())
    }

    /// The processes in the unit (its sub-cgroups included), from the tracking hierarchy:
    /// v2's directory, the unified tree on hybrid hosts, else v1 pids/freezer/memory.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        if let Some(dir) = self.tracking() {
            fs::procs_recursive(dir, &mut pids)?;
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// The processes in any of the unit's directories (a helper that died half-way through
    /// [`join`](Self::join) may have left one in some hierarchies only).
    fn all_pids(&self) -> Result<Vec<i32>, CgroupError> {
        let mut pids = Vec::new();
        for d in &self.dirs {
            fs::procs_recursive(&d.path, &mut pids)?;
        }
        let set: BTreeSet<i32> = pids.into_iter().collect();
        Ok(set.into_iter().collect())
    }

    /// Whether the unit has processes, from the unified tree's `cgroup.events` (v2, and
    /// hybrid hosts, where the unified tree tracks every process): one read instead of a
    /// listing of every hierarchy. `None` without that file. Every process kennel moves in
    /// joins the unified directory first ([`join_files`](Self::join_files),
    /// [`procs_files`](Self::procs_files)) or is born there (`CLONE_INTO_CGROUP`), and
    /// never leaves it for a v1 directory of the unit; a process that got into a v1
    /// directory some other way is still found by [`remove`](Self::remove), which kills
    /// and retries when a directory will not go.
    pub fn populated(&self) -> Option<bool> {
        let text = fs::read_opt(&self.unified()?.join("cgroup.events"))?;
        stats::keyed(&text, "populated").map(|n| n != 0)
    }

    /// Whether a process can be started right inside the unified (or v2) directory
    /// (`clone3` with `CLONE_INTO_CGROUP`) without the parent waiting on the cgroup: it
    /// is empty and not frozen (`cgroup.events`: `populated 0`, and `frozen 0` where the
    /// kernel has a v2 freezer). An empty cgroup has no CPU time charged in the current
    /// period either. `false` when unknown.
    pub fn idle(&self) -> bool {
        let Some(text) = self
            .unified()
            .and_then(|d| fs::read_opt(&d.join("cgroup.events")))
        else {
            return false;
        };
        stats::keyed(&text, "populated") == Some(0)
            && stats::keyed(&text, "frozen").unwrap_or(0) == 0
    }

    /// Whether no process is left in any of the unit's directories (unreadable counts as
    /// empty: a directory already removed).
    pub fn is_empty(&self) -> bool {
        self.all_pids().map_or(true, |p| p.is_empty())
    }

    /// Kills every process of the unit with SIGKILL, including anything it forked (double
    /// fork, setsid: nothing leaves a cgroup on its own), and waits until all are gone.
    /// With `cgroup.kill` in the unified tree (kernel >= 5.14; also on hybrid hosts) one
    /// write kills the subtree atomically; otherwise the cgroup is frozen (v2
    /// `cgroup.freeze` or the v1 freezer), every listed pid is killed, and it is thawed.
    /// Repeated (at most 50 rounds) until empty.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        let kill_file = self
            .unified()
            .map(|d| d.join("cgroup.kill"))
            .filter(|f| f.exists());
        let label = self.primary().unwrap_or(Path::new("")).to_path_buf();
        for _ in 0..KILL_ROUNDS {
            let pids = self.all_pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            if let Some(file) = &kill_file {
                fs::write(file, "1")?;
                // Processes only in v1 directories (a half-done join) are not covered.
                for pid in pids {
                    sigkill(pid, &label)?;
                }
            } else {
                // Frozen, nothing can fork between listing and killing; a frozen task
                // dies of SIGKILL once thawed (v1) or at once (v2).
                // A freeze that times out (a task in D state) still stops most of them.
                let _ = self.freeze_with(Duration::from_millis(200));
                let result = self
                    .all_pids()
                    .and_then(|pids| pids.into_iter().try_for_each(|p| sigkill(p, &label)));
                if self.freezer().is_some() {
                    self.thaw()?;
                }
                result?;
            }
            fs::poll_until(KILL_WAIT, || self.is_empty());
        }
        let left = self.all_pids()?.len();
        if left == 0 {
            return Ok(());
        }
        Err(CgroupError::KillTimeout {
            path: label,
            left,
            rounds: KILL_ROUNDS,
        })
    }

    /// The freezer to use: v1 freezer hierarchy, else the unified tree's `cgroup.freeze`.
    fn freezer(&self) -> Option<(bool, &Path)> {
        if self.version == Version::V1 {
            if let Some(dir) = self.dir_for("freezer") {
                return Some((true, dir));
            }
        }
        self.unified()
            .filter(|d| d.join("cgroup.freeze").exists())
            .map(|d| (false, d))
    }

    fn freeze_with(&self, wait: Duration) -> Result<(), CgroupError> {
        match self.freezer() {
            Some((true, dir)) => v1::freeze(dir, wait),
            Some((false, dir)) => v2::freeze(dir, wait),
            None => Err(CgroupError::NoFreezer {
                path: self.primary().unwrap_or(Path::new("")).to_path_buf(),
            }),
        }
    }

    /// Freezes every process of the unit and waits until the kernel reports it frozen
    /// (v1 freezer `FROZEN`, v2 `cgroup.events` `frozen 1`), at most 2 s.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.freeze_with(FREEZE_WAIT)
    }

    /// Thaws the unit.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer() {
            Some((true, dir)) => v1::thaw(dir),
            Some((false, dir)) => v2::thaw(dir),
            None => Err(CgroupError::NoFreezer {
                path: self.primary().unwrap_or(Path::new("")).to_path_buf(),
            }),
        }
    }

    /// Whether the unit is frozen (or freezing): v1 `freezer.state` other than `THAWED`,
    /// v2 `cgroup.freeze` 1. `false` without a freezer.
    pub fn frozen(&self) -> bool {
        match self.freezer() {
            Some((true, dir)) => {
                fs::read_opt(&dir.join("freezer.state")).is_some_and(|s| s.trim() != "THAWED")
            }
            Some((false, dir)) => {
                fs::read_opt(&dir.join("cgroup.freeze")).is_some_and(|s| s.trim() == "1")
            }
            None => false,
        }
    }

    /// Best-effort usage numbers; a missing file gives a `None` field.
    pub fn stats(&self) -> Stats {
        stats::collect(self)
    }

    /// The statistics files, opened once, for repeated cheap reads
    /// ([`StatsFiles::read`](crate::StatsFiles::read)).
    pub fn stats_files(&self) -> stats::StatsFiles {
        stats::StatsFiles::open(self)
    }

    /// How many processes the kernel OOM killer killed in the unit (v2 `memory.events`,
    /// v1 `memory.oom_control` on kernels >= 4.13); 0 when unavailable.
    pub fn oom_kills(&self) -> u64 {
        stats::oom_kills(self)
    }

    /// Kills everything in the unit ([`kill_all`](Self::kill_all), skipped when
    /// [`populated`](Self::populated) says it is empty), then removes its directory (and
    /// any sub-cgroups) in every hierarchy; a missing directory is fine. Should a
    /// directory still hold a process that the unified tree did not show (one put into a
    /// v1 directory only, by something other than kennel), everything is killed after
    /// all and the removal tried again.
    pub fn remove(&self) -> Result<(), CgroupError> {
        let skipped = self.populated() == Some(false);
        if !skipped {
            self.kill_all()?;
        }
        match self.rmdir_all(skipped) {
            Err(_) if skipped => {
                self.kill_all()?;
                self.rmdir_all(false)
            }
            other => other,
        }
    }

    /// rmdir of every directory; `quick`: a busy directory fails at once instead of being
    /// retried while its processes die (the caller then kills and retries).
    fn rmdir_all(&self, quick: bool) -> Result<(), CgroupError> {
        let patience = if quick { Duration::ZERO } else { RMDIR_WAIT };
        for d in &self.dirs {
            fs::rmdir_tree_within(&d.path, patience)?;
        }
        Ok(())
    }

    /// For messages: `/sys/fs/cgroup/memory/kennel/web (+8 v1 hierarchies, unified)`, or
    /// the one directory on v2.
    pub fn display(&self) -> String {
        let Some(primary) = self.primary() else {
            return format!("{} (no cgroup hierarchy)", self.name);
        };
        let mut text = primary.display().to_string();
        if self.version == Version::V1 {
            let others = self
                .dirs
                .iter()
                .filter(|d| d.path != primary && d.hierarchy != Hierarchy::Unified)
                .count();
            let unified = self.unified().is_some();
            match (others, unified) {
                (0, false) => {}
                (0, true) => text.push_str(" (+unified)"),
                (n, false) => text.push_str(&format!(" (+{n} v1 hierarchies)")),
                (n, true) => text.push_str(&format!(" (+{n} v1 hierarchies, unified)")),
            }
        }
        text
    }
}
