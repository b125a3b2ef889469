//! Who uses which layer (images, names, containers, unit files), `kennel layer ls` and
//! `kennel layer gc`. A layer in use is never removed.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::digest::Digest;
use crate::error::{io, Result};
use crate::pack::tree_size;
use crate::runtime::ContainerRecord;
use crate::store::Store;

/// One row of `kennel layer ls`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerRow {
    pub name: String,
    /// For a name that is a symlink: the digest layer it points to.
    pub target: Option<String>,
    /// The diff_id, when known.
    pub digest: Option<String>,
    /// Bytes of regular files in the directory.
    pub size: u64,
    /// `image web:1`, `unit web`, `name busybox`.
    pub users: Vec<String>,
}

/// Layer name (as in `STATE/layers`) -> who uses it. `units` are users known from unit
/// files: (unit name, layer names it uses).
pub fn users(
    store: &Store,
    units: &[(String, Vec<String>)],
) -> Result<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut add = |layer: String, user: String| {
        let v = out.entry(layer).or_default();
        if !v.contains(&user) {
            v.push(user);
        }
    };
    for name in store.layer_names()? {
        let target = store.resolve_name(&name);
        if target != name {
            add(target, format!("name {name}"));
        }
    }
    for img in store.images()? {
        for l in &img.layers {
            add(
                store.resolve_name(l),
                format!("image {}:{}", img.name, img.tag),
            );
        }
    }
    let containers = store.state_dir().join("containers");
    if let Ok(rd) = fs::read_dir(&containers) {
        for e in rd.flatten() {
            let Ok(rec) = ContainerRecord::read(&e.path()) else {
                continue;
            };
            let unit = e.file_name().to_string_lossy().into_owned();
            for l in rec.layers {
                if let Some(name) = in_store(store, &l) {
                    add(store.resolve_name(&name), format!("unit {unit}"));
                }
            }
        }
    }
    for (unit, layers) in units {
        for l in layers {
            add(store.resolve_name(l), format!("unit {unit}"));
        }
    }
    Ok(out)
}

/// The store name of a layer directory, if it is one of the store's.
fn in_store(store: &Store, dir: &Path) -> Option<String> {
    (dir.parent()? == store.layer_path("").as_path())
        .then(|| dir.file_name().map(|f| f.to_string_lossy().into_owned()))
        .flatten()
}

/// `kennel layer ls`.
pub fn list(store: &Store, units: &[(String, Vec<String>)]) -> Result<Vec<LayerRow>> {
    let users = users(store, units)?;
    let mut rows = Vec::new();
    for name in store.layer_names()? {
        let target = store.resolve_name(&name);
        let is_link = target != name;
        let digest = Digest::from_dir_name(&target)
            .map(|d| d.to_string())
            .or_else(|| store.meta(&name).map(|m| m.diff_id));
        rows.push(LayerRow {
            size: if is_link {
                0
            } else {
                tree_size(&store.layer_path(&name))
            },
            users: if is_link {
                Vec::new()
            } else {
                users.get(&name).cloned().unwrap_or_default()
            },
            target: is_link.then_some(target),
            digest,
            name,
        });
    }
    Ok(rows)
}

/// `kennel layer gc`: removes the digest layers (`sha256-*`) nobody uses, and what crashed
/// imports left. Named layers (directories or symlinks) are never removed. Returns the
/// removed layers.
pub fn gc(store: &Store, units: &[(String, Vec<String>)]) -> Result<Vec<String>> {
    let _lock = store.lock(true)?;
    let users = users(store, units)?;
    let mut removed = Vec::new();
    for name in store.layer_names()? {
        if Digest::from_dir_name(&name).is_none() || users.contains_key(&name) {
            continue;
        }
        let dir = store.layer_path(&name);
        if fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
            continue;
        }
        // Out of sight first: a half-removed layer is never visible under its name.
        let doomed = store.layer_path(&crate::store::temp_name(".tmp-gc-"));
        fs::rename(&dir, &doomed).map_err(io("rename", &dir))?;
        fs::remove_dir_all(&doomed).map_err(io("remove", &doomed))?;
        let _ = fs::remove_file(store.layer_path(".meta").join(format!("{name}.json")));
        removed.push(name);
    }
    Ok(removed)
}
