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
