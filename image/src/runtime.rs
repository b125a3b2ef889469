//! What the daemon needs at spawn: a unit's `image` resolved to layer directories and to
//! defaults (command, environment, working directory, user), and the record of the
//! layers a container was started on (`STATE/containers/NAME/layers.json`), which
//! `kennel commit` builds on and `kennel layer gc` respects.

use std::fs;
use std::path::{Path, PathBuf};

use kennel_units::ImageRef;
use serde::{Deserialize, Serialize};

use crate::error::{io, ImageError, Result};
use crate::store::{Image, Store};

/// The file, in a container's directory, that records what it was started on.
pub const RECORD_FILE: &str = "layers.json";

/// What the image config says a container runs, for what the unit does not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

impl ImageDefaults {
    /// From an OCI image config (`config.Entrypoint`, `Cmd`, `Env`, `WorkingDir`, `User`).
    pub fn from_config(config: &serde_json::Value) -> ImageDefaults {
        let c = &config["config"];
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let text = |v: &serde_json::Value| v.as_str().filter(|s| !s.is_empty()).map(String::from);
        ImageDefaults {
            entrypoint: strings(&c["Entrypoint"]),
            cmd: strings(&c["Cmd"]),
            env: strings(&c["Env"])
                .into_iter()
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect(),
            working_dir: text(&c["WorkingDir"]),
            user: text(&c["User"]),
        }
    }

    /// The argv: Entrypoint + Cmd, as Docker does.
    pub fn argv(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

/// The layers a container was started on, bottom first, and its image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// `NAME:TAG` of the unit's image, if any.
    pub image: Option<String>,
    /// The read-only layer directories, bottom first (image layers, then `rootfs`).
    pub layers: Vec<PathBuf>,
    /// The image's config, if any (the base of a commit's config).
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

impl ContainerRecord {
    /// Writes `DIR/layers.json` (through a temporary file).
    pub fn write(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(io("create", dir))?;
        let path = dir.join(RECORD_FILE);
        let tmp = dir.join(".layers.json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|source| ImageError::Json {
            what: path.display().to_string(),
            source,
        })?;
        // Unchanged (every start of the same unit): replacing it would only cost a rename
        // and the freeing of the old file on the start's path.
        if fs::read(&path).is_ok_and(|old| old == bytes) {
            return Ok(());
        }
        fs::write(&tmp, bytes).map_err(io("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io("rename to", &path))
    }

    /// Reads `DIR/layers.json`.
    pub fn read(dir: &Path) -> Result<ContainerRecord> {
        let path = dir.join(RECORD_FILE);
        let bytes = fs::read(&path).map_err(io("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            what: path.display().to_string(),
            source,
        })
    }
}

/// The image `r` of the store under `state`, with its layer directories (bottom first),
/// each checked to exist.
pub fn resolve(state: &Path, r: &ImageRef) -> Result<(Image, Vec<PathBuf>)> {
    let store = Store::open(state)?;
    let img = store.image(r)?;
    let mut dirs = Vec::new();
    for l in &img.layers {
        let d = store.layer_path(l);
        if !d.is_dir() {
            return Err(ImageError::Refused(format!(
                "image {r}: its layer {l} is missing from {}",
                store.layer_path("").display()
            )));
        }
        dirs.push(d);
    }
    Ok((img, dirs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_from_a_config() {
        let c = serde_json::json!({"config": {
            "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"],
            "Env": ["PATH=/usr/bin:/bin", "A=b=c"], "WorkingDir": "/srv", "User": ""
        }});
        let d = ImageDefaults::from_config(&c);
        assert_eq!(d.argv(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(d.env[1], ("A".to_string(), "b=c".to_string()));
        assert_eq!(d.working_dir.as_deref(), Some("/srv"));
        assert_eq!(d.user, None);
        assert_eq!(
            ImageDefaults::from_config(&serde_json::json!({})),
            ImageDefaults::default()
        );
    }
}
