//! What an ADD leaves behind for DEL and CHECK: the network's configuration as it was, the
//! attachment's arguments and the chain's result, in
//! `CACHE_DIR/NETWORK/CONTAINER_ID/IFNAME.json` (libcni keeps the same in /var/lib/cni).
//! Written before the chain runs (without a result) and again after it, so that a DEL after
//! a crash in the middle of an ADD still finds the plugins to call.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::CniError;

const KIND: &str = "kennelCniCacheV1";

/// One attachment's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// Always `kennelCniCacheV1`.
    pub kind: String,
    pub network: String,
    #[serde(rename = "containerId")]
    pub container_id: String,
    #[serde(rename = "ifName")]
    pub ifname: String,
    pub netns: PathBuf,
    /// The file the configuration was read from.
    pub file: PathBuf,
    /// The configuration list as the ADD ran it.
    pub config: Value,
    #[serde(rename = "cniArgs", default)]
    pub args: Vec<(String, String)>,
    #[serde(rename = "capabilityArgs", default)]
    pub capability_args: Value,
    /// The chain's result (in the list's version); null until the ADD finished.
    #[serde(default)]
    pub result: Value,
}

/// Where the record of (network, container, ifname) lives.
pub fn path(dir: &Path, network: &str, container_id: &str, ifname: &str) -> PathBuf {
    dir.join(network)
        .join(container_id)
        .join(format!("{ifname}.json"))
}

pub fn write(dir: &Path, e: &Entry) -> Result<(), CniError> {
    let path = path(dir, &e.network, &e.container_id, &e.ifname);
    let io = |what, p: &Path| {
        let p = p.to_path_buf();
        move |source| CniError::Io {
            what,
            path: p,
            source,
        }
    };
    let parent = path.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(e).unwrap_or_default();
    std::fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename", &path))
}

/// The record, or None when there is none.
pub fn read(
    dir: &Path,
    network: &str,
    container_id: &str,
    ifname: &str,
) -> Result<Option<Entry>, CniError> {
    let path = path(dir, network, container_id, ifname);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CniError::Io {
                what: "read",
                path,
                source,
            })
        }
    };
    let entry: Entry = serde_json::from_slice(&text).map_err(|e| CniError::CacheFormat {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    if entry.kind != KIND {
        return Err(CniError::CacheFormat {
            path,
            msg: format!("kind {:?}, not {KIND}", entry.kind),
        });
    }
    Ok(Some(entry))
}

/// Removes the record, and the directories it leaves empty.
pub fn remove(dir: &Path, network: &str, container_id: &str, ifname: &str) -> Result<(), CniError> {
    let path = path(dir, network, container_id, ifname);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(CniError::Io {
                what: "remove",
                path,
                source,
            })
        }
    }
    // Not empty (another attachment) is fine.
    let container = dir.join(network).join(container_id);
    let _ = std::fs::remove_dir(&container);
    let _ = std::fs::remove_dir(dir.join(network));
    Ok(())
}

/// Every record in `dir` (for the cleanup after a crash: DEL what no running unit holds).
pub fn list(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let sub = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    for net in sub(dir) {
        for container in sub(&net) {
            for file in sub(&container) {
                if file.extension().is_some_and(|e| e == "json") {
                    if let Ok(text) = std::fs::read(&file) {
                        match serde_json::from_slice::<Entry>(&text) {
                            Ok(e) if e.kind == KIND => out.push(e),
                            _ => {
                                tracing::warn!(file = %file.display(), "not a kennel CNI cache record")
                            }
                        }
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.network, &a.container_id, &a.ifname).cmp(&(&b.network, &b.container_id, &b.ifname))
    });
    out
}

/// A new record (without a result) of an ADD about to run.
pub fn entry(list: &super::ConfList, a: &super::Attachment) -> Entry {
    Entry {
        kind: KIND.into(),
        network: list.name.clone(),
        container_id: a.container_id.into(),
        ifname: a.ifname.into(),
        netns: a.netns.to_path_buf(),
        file: list.file.clone(),
        config: list.raw.clone(),
        args: a.args.to_vec(),
        capability_args: a.capability_args.clone(),
        result: Value::Null,
    }
}
