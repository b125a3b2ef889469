//! `Cgroups`: the detected layout plus the parent unit cgroups go under; preparing the
//! parent, creating unit cgroups with their limits, and finding stale ones.

use std::path::{Path, PathBuf};

use kennel_units::Resources;

use crate::detect::{self, Hierarchy, Layout};
use crate::unit::UnitDir;
use crate::{fs, v1, v2, CgroupError, UnitCgroup, Version};

/// The leaf kennel moves itself into on v2 when it sits in the parent itself.
pub const SUPERVISOR_LEAF: &str = "supervisor";

/// Which directories of a unit cgroup [`Cgroups::create_part`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Every directory.
    All,
    /// The unified tree's (on pure v2: the only one).
    Unified,
    /// The v1 hierarchies'.
    Rest,
}

/// The cgroup layout of this host and the parent under which every unit gets its cgroup.
///
/// Build it with [`Cgroups::detect`] (or [`Cgroups::detect_at`] on a fake tree), call
/// [`Cgroups::prepare`] once at start-up, then [`Cgroups::create`] per unit start.
#[derive(Debug, Clone)]
pub struct Cgroups {
    version: Version,
    /// One per hierarchy used, in the order unit directories are created and joined.
    trees: Vec<ParentTree>,
}

/// One hierarchy with the resolved parent directory.
#[derive(Debug, Clone)]
struct ParentTree {
    hierarchy: Hierarchy,
    /// The mount point (root of the hierarchy).
    mount: PathBuf,
    /// The parent directory unit cgroups are created in.
    parent: PathBuf,
    /// This process's own cgroup directory in this hierarchy.
    own: PathBuf,
}

/// Splits `--cgroup-parent` into clean components (`/a/b/` -> `["a", "b"]`).
fn parent_components(parent: &str) -> Result<Vec<&str>, CgroupError> {
    let invalid = |why| CgroupError::InvalidParent {
        parent: parent.to_string(),
        why,
    };
    let parts: Vec<&str> = parent.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(invalid("\".\" and \"..\" are not allowed"));
    }
    if parts.iter().any(|p| p.contains('\0')) {
        return Err(invalid("contains a NUL byte"));
    }
    Ok(parts)
}

/// `mount` joined with a cgroup path relative to it (`/` -> the mount itself).
fn under(mount: &Path, rel: &str) -> PathBuf {
    let mut dir = mount.to_path_buf();
    dir.extend(rel.split('/').filter(|p| !p.is_empty()));
    dir
}

impl Cgroups {
    /// Detects the layout from `/proc/self/mountinfo` and `/proc/self/cgroup`. `parent` is
    /// `--cgroup-parent`, a path relative to each hierarchy's root; `None` nests units under
    /// kennel's own cgroup, per hierarchy on v1 (on v2, when kennel already sits in a leaf
    /// named `supervisor`, that leaf's parent: kennel put itself there in an earlier
    /// [`prepare`](Self::prepare)).
    pub fn detect(parent: Option<&str>) -> Result<Cgroups, CgroupError> {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|source| CgroupError::Read {
                path: p.into(),
                source,
            })
        };
        let self_cgroup = read("/proc/self/cgroup")?;
        let mountinfo = read("/proc/self/mountinfo")?;
        Cgroups::detect_at(Path::new("/"), parent, &self_cgroup, &mountinfo)
    }

    /// [`detect`](Self::detect) from given texts of `/proc/self/cgroup` and
    /// `/proc/self/mountinfo`, with every mount point taken under `root` (a tempdir holding
    /// a fake cgroupfs in tests; `/` for real).
    pub fn detect_at(
        root: &Path,
        parent: Option<&str>,
        self_cgroup_text: &str,
        mountinfo_text: &str,
    ) -> Result<Cgroups, CgroupError> {
        let Layout { version, trees } =
            detect::detect_layout(root, self_cgroup_text, mountinfo_text)?;
        let explicit = parent.map(parent_components).transpose()?;
        let trees = trees
            .into_iter()
            .map(|t| {
                let own = under(&t.mount, &t.self_rel);
                let parent = match &explicit {
                    Some(parts) => {
                        let mut dir = t.mount.clone();
                        dir.extend(parts);
                        dir
                    }
                    None if version == Version::V2
                        && own != t.mount
                        && own.file_name().is_some_and(|n| n == SUPERVISOR_LEAF) =>
                    {
                        own.parent().map_or_else(|| own.clone(), Path::to_path_buf)
                    }
                    None => own.clone(),
                };
                ParentTree {
                    hierarchy: t.hierarchy,
                    mount: t.mount,
                    parent,
                    own,
                }
            })
            .collect();
        Ok(Cgroups { version, trees })
    }

    /// V1 for legacy and hybrid hosts (v1 controllers mounted), V2 for pure cgroup2.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The parent directory in every hierarchy, e.g. for a test to remove what it made.
    pub fn parent_dirs(&self) -> Vec<PathBuf> {
        self.trees.iter().map(|t| t.parent.clone()).collect()
    }

    /// Creates the parent in every hierarchy (v1 cpuset: with `cpus`/`mems` initialized).
    /// On v2, when kennel is itself in the parent, it first moves itself into the leaf
    /// `PARENT/supervisor`; then it enables cpu, memory, pids, io and cpuset (those offered)
    /// in `PARENT/cgroup.subtree_control`, and, best effort, in the parent of every
    /// directory it created on the way.
    pub fn prepare(&self) -> Result<(), CgroupError> {
        for tree in &self.trees {
            let created = fs::mkdir_chain(&tree.mount, &tree.parent)?;
            match (&tree.hierarchy, self.version) {
                (h, Version::V1) if h.has("cpuset") => v1::init_cpuset(&tree.mount, &tree.parent)?,
                (_, Version::V2) => self.prepare_v2(tree, &created)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// The v2 part of [`prepare`](Self::prepare) for the one tree.
    fn prepare_v2(&self, tree: &ParentTree, created: &[PathBuf]) -> Result<(), CgroupError> {
        for dir in created {
            let Some(up) = dir.parent() else { continue };
            if let Err(e) = v2::enable_controllers(up) {
                tracing::warn!("cgroup controllers not enabled for {}: {e}", dir.display());
            }
        }
        if tree.own == tree.parent {
            let leaf = tree.parent.join(SUPERVISOR_LEAF);
            fs::mkdir_chain(&tree.parent, &leaf)?;
            fs::write(&leaf.join("cgroup.procs"), &std::process::id().to_string())?;
            tracing::info!("moved kennel into {}", leaf.display());
        }
        let enabled = v2::enable_controllers(&tree.parent)?;
        if !enabled.is_empty() {
            tracing::info!(
                "enabled {} in {}",
                enabled.join(" "),
                tree.parent.join("cgroup.subtree_control").display()
            );
        }
        Ok(())
    }

    /// The unit cgroup of `name`: paths only, no I/O.
    pub fn unit(&self, name: &str) -> UnitCgroup {
        let dirs = self
            .trees
            .iter()
            .map(|t| UnitDir {
                hierarchy: t.hierarchy.clone(),
                path: t.parent.join(name),
            })
            .collect();
        UnitCgroup::new(name, self.version, dirs)
    }

    /// Creates the unit cgroup `name` in every hierarchy and applies `res`. Idempotent: an
    /// existing cgroup is reused and its limits written again, limits no longer asked for
    /// being put back to the kernel default. Soft failures (e.g. no `blkio.weight`) are
    /// logged and kept in [`UnitCgroup::warnings`]. Call [`prepare`](Self::prepare) first.
    pub fn create(&self, name: &str, res: &Resources) -> Result<UnitCgroup, CgroupError> {
        self.create_part(name, res, Part::All)
    }

    /// [`create`](Self::create) in two steps: [`Part::Unified`] makes the unified (or v2)
    /// directory, with everything v2 applies there, so that a process can be started in it
    /// at once; [`Part::Rest`] then makes the v1 hierarchies' directories with their limits
    /// (nothing on pure v2).
    pub fn create_part(
        &self,
        name: &str,
        res: &Resources,
        part: Part,
    ) -> Result<UnitCgroup, CgroupError> {
        check_name(name)?;
        let mut unit = self.unit(name);
        let mut warnings = Vec::new();
        for (tree, dir) in self.trees.iter().zip(unit.dirs()) {
            let unified = self.version == Version::V2 || dir.hierarchy == Hierarchy::Unified;
            match part {
                Part::All => {}
                Part::Unified if unified => {}
                Part::Rest if !unified => {}
                Part::Unified | Part::Rest => continue,
            }
            // A cgroup made just now has the kernel's defaults: only what the unit sets is
            // written (resetting the rest is for a cgroup that existed, e.g. on reload).
            let fresh = fs::mkdir_chain(&tree.mount, &dir.path)?.contains(&dir.path);
            if !fresh && !dir.path.is_dir() {
                return Err(CgroupError::InvalidName {
                    name: name.to_string(),
                    why: "it is the name of a cgroup control file",
                });
            }
            match (self.version, &dir.hierarchy) {
                (Version::V2, _) => v2::apply(&dir.path, res, fresh, &mut warnings)?,
                (Version::V1, h @ Hierarchy::V1 { .. }) => {
                    v1::apply(&tree.mount, &dir.path, h, res, fresh, &mut warnings)?
                }
                // The hybrid unified tree tracks processes only.
                (Version::V1, Hierarchy::Unified) => {}
            }
        }
        for w in &warnings {
            tracing::warn!(unit = name, "{w}");
        }
        unit.set_warnings(warnings);
        Ok(unit)
    }

    /// Whether a unit's cgroup has a unified (v2) directory: pure v2, or a v1 host's
    /// unified tree (hybrid).
    pub fn has_unified(&self) -> bool {
        self.trees.iter().any(|t| t.hierarchy == Hierarchy::Unified)
    }

    /// Whether [`Part::Rest`] has anything to make (v1 hierarchies).
    pub fn has_rest(&self) -> bool {
        self.version == Version::V1 && self.trees.iter().any(|t| t.hierarchy != Hierarchy::Unified)
    }

    /// Names of the unit cgroups under the parent (never `supervisor`), e.g. left by a
    /// crash. On v1, only names present in every v1 controller hierarchy kennel uses: with
    /// the default parent a hierarchy root may be shared with others (`system.slice`, ...),
    /// and those rarely exist in all of them. Still, remove only names of known units.
    pub fn stale(&self) -> Result<Vec<String>, CgroupError> {
        let mut lists = Vec::new();
        for tree in &self.trees {
            let counts = match (&tree.hierarchy, self.version) {
                (_, Version::V2) => true,
                (Hierarchy::V1 { controllers }, Version::V1) => {
                    controllers.iter().any(|c| !c.starts_with("name="))
                }
                (Hierarchy::Unified, Version::V1) => false,
            };
            if counts {
                lists.push(fs::subdirs(&tree.parent)?);
            }
        }
        let Some((first, rest)) = lists.split_first() else {
            return Ok(Vec::new());
        };
        Ok(first
            .iter()
            .filter(|n| n.as_str() != SUPERVISOR_LEAF)
            .filter(|n| rest.iter().all(|l| l.contains(n)))
            .cloned()
            .collect())
    }
}

/// A unit cgroup name must be one directory name, and not the supervisor leaf.
fn check_name(name: &str) -> Result<(), CgroupError> {
    let why = if name.is_empty() {
        Some("empty")
    } else if name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        Some("not a single directory name")
    } else if name == SUPERVISOR_LEAF {
        Some("reserved for kennel itself")
    } else {
        None
    };
    match why {
        Some(why) => Err(CgroupError::InvalidName {
            name: name.to_string(),
            why,
        }),
        None => Ok(()),
    }
}
