//! Detection: which cgroup hierarchies are mounted where (`/proc/self/mountinfo`) and where
//! this process sits in each (`/proc/self/cgroup`), giving a [`Layout`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{CgroupError, Version};

/// The v1 controllers kennel puts unit cgroups in (co-mounted ones are one hierarchy).
pub(crate) const USED_V1: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer", "devices",
];

/// The named v1 hierarchy that mirrors the tree for `systemd-cgls`.
pub(crate) const SYSTEMD_NAME: &str = "name=systemd";

/// Every v1 controller the kernel knows, to tell controllers from other mount options.
const KNOWN_V1: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One cgroup hierarchy a unit cgroup lives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hierarchy {
    /// The cgroup2 tree: the only one on a pure v2 host; on a hybrid host, process
    /// tracking only (`cgroup.kill`, `cgroup.freeze`, `cpu.stat`), no controllers.
    Unified,
    /// A v1 hierarchy with its controllers, e.g. `["cpu", "cpuacct"]` when co-mounted, or
    /// `["name=systemd"]`.
    V1 {
        /// The controllers (and `name=...`), as in the mount options.
        controllers: Vec<String>,
    },
}

impl Hierarchy {
    /// Whether this v1 hierarchy carries `controller`.
    pub(crate) fn has(&self, controller: &str) -> bool {
        match self {
            Hierarchy::Unified => false,
            Hierarchy::V1 { controllers } => controllers.iter().any(|c| c == controller),
        }
    }
}

/// A detected hierarchy: where it is mounted and where this process is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tree {
    pub hierarchy: Hierarchy,
    /// The mount point (under the fake root in tests).
    pub mount: PathBuf,
    /// This process's cgroup, relative to the mount: `/` or `/a/b`.
    pub self_rel: String,
    /// Mounted read-only (the `ro` mount option).
    pub read_only: bool,
}

/// The detected layout: the version and the hierarchies kennel uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub version: Version,
    /// V2: the one cgroup2 tree. V1: the used v1 hierarchies in mount order, then the
    /// unified tree if mounted (hybrid).
    pub trees: Vec<Tree>,
}

/// One cgroup mount from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    cgroup2: bool,
    /// The mount's root within its hierarchy (`/` unless a subtree was bind-mounted).
    root: String,
    point: String,
    /// The `ro` per-mount option.
    read_only: bool,
    /// v1: the controllers and `name=` among the super options.
    controllers: Vec<String>,
}

/// Decodes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            let value = oct.iter().try_fold(0u32, |acc, b| {
                (b'0'..=b'7')
                    .contains(b)
                    .then(|| acc * 8 + u32::from(b - b'0'))
            });
            if let Some(v) = value.and_then(|v| u8::try_from(v).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `cgroup` and `cgroup2` mounts in a mountinfo text.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split_whitespace().collect();
        let right: Vec<&str> = right.split_whitespace().collect();
        if left.len() < 6 || right.len() < 3 {
            continue;
        }
        let cgroup2 = match right[0] {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers = if cgroup2 {
            Vec::new()
        } else {
            right[2]
                .split(',')
                .filter(|o| KNOWN_V1.contains(o) || o.starts_with("name="))
                .map(str::to_string)
                .collect()
        };
        mounts.push(Mount {
            cgroup2,
            root: unescape(left[3]),
            point: unescape(left[4]),
            read_only: left[5].split(',').any(|o| o == "ro"),
            controllers,
        });
    }
    mounts
}

/// `/proc/self/cgroup` lines: (controllers, path); the v2 line has no controllers.
fn parse_self(text: &str) -> Vec<(Vec<String>, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let ctrls = parts.next()?;
            let path = parts.next()?;
            let ctrls = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some((ctrls, path.trim_end().to_string()))
        })
        .collect()
}

/// Makes a `/proc/self/cgroup` path relative to a mount whose root is `mount_root`.
fn relative(path: &str, mount_root: &str) -> String {
    let rel = match path.strip_prefix(mount_root) {
        Some(rest) if mount_root != "/" && (rest.is_empty() || rest.starts_with('/')) => rest,
        _ => path,
    };
    if rel.is_empty() {
        "/".to_string()
    } else {
        rel.to_string()
    }
}

/// Detects the layout from the texts of `/proc/self/cgroup` and `/proc/self/mountinfo`;
/// mount points are taken under `root` (`/` for real, a tempdir in tests).
pub(crate) fn detect_layout(
    root: &Path,
    self_text: &str,
    mountinfo_text: &str,
) -> Result<Layout, CgroupError> {
    let mounts = parse_mountinfo(mountinfo_text);
    let selfs = parse_self(self_text);
    let under_root = |point: &str| root.join(point.trim_start_matches('/'));
    let not_listed = |what: &str| CgroupError::Parse {
        path: PathBuf::from("/proc/self/cgroup"),
        what: format!("no line for the mounted {what} hierarchy"),
    };

    let mut trees: Vec<Tree> = Vec::new();
    let mut seen: Vec<BTreeSet<&str>> = Vec::new();
    for m in mounts.iter().filter(|m| !m.cgroup2) {
        let set: BTreeSet<&str> = m.controllers.iter().map(String::as_str).collect();
        let used = set
            .iter()
            .any(|c| USED_V1.contains(c) || *c == SYSTEMD_NAME);
        if !used || seen.contains(&set) {
            continue;
        }
        let joined = m.controllers.join(",");
        let path = selfs
            .iter()
            .find(|(c, _)| c.iter().map(String::as_str).collect::<BTreeSet<_>>() == set)
            .map(|(_, p)| p)
            .ok_or_else(|| not_listed(&joined))?;
        seen.push(set);
        trees.push(Tree {
            hierarchy: Hierarchy::V1 {
                controllers: m.controllers.clone(),
            },
            mount: under_root(&m.point),
            self_rel: relative(path, &m.root),
            read_only: m.read_only,
        });
    }
    let has_v1_controller = trees
        .iter()
        .any(|t| matches!(&t.hierarchy, Hierarchy::V1 { controllers } if controllers.iter().any(|c| !c.starts_with("name="))));

    let unified = mounts.iter().find(|m| m.cgroup2);
    let unified_self = selfs.iter().find(|(c, _)| c.is_empty()).map(|(_, p)| p);
    let unified_tree = match (unified, unified_self) {
        (Some(m), Some(p)) => Some(Tree {
            hierarchy: Hierarchy::Unified,
            mount: under_root(&m.point),
            self_rel: relative(p, &m.root),
            read_only: m.read_only,
        }),
        (Some(_), None) if !has_v1_controller => return Err(not_listed("cgroup2")),
        _ => None,
    };

    // A container runtime's default: the container's own cgroup, bind-mounted read-only.
    if let Some(t) = trees.iter().chain(&unified_tree).find(|t| t.read_only) {
        return Err(CgroupError::ReadOnly {
            path: t.mount.clone(),
        });
    }
    if has_v1_controller {
        trees.extend(unified_tree);
        Ok(Layout {
            version: Version::V1,
            trees,
        })
    } else if let Some(tree) = unified_tree {
        Ok(Layout {
            version: Version::V2,
            trees: vec![tree],
        })
    } else {
        Err(CgroupError::NotMounted {
            path: PathBuf::from("/proc/self/mountinfo"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\"), r"/end\");
    }

    #[test]
    fn relative_to_mount_root() {
        assert_eq!(relative("/docker/abc/x", "/docker/abc"), "/x");
        assert_eq!(relative("/docker/abc", "/docker/abc"), "/");
        assert_eq!(relative("/docker/abcd", "/docker/abc"), "/docker/abcd");
        assert_eq!(relative("/a", "/"), "/a");
    }
}
