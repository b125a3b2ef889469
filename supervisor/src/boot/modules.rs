//! Kernel modules listed in `/etc/kennel/boot.toml`, loaded with their dependencies from
//! `/lib/modules/$(uname -r)` (as `modules.dep`, written by depmod, lists them).

use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::kmod::{finit_module, ModuleInitFlags};
use serde::Deserialize;

/// `/etc/kennel/boot.toml`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BootConfig {
    /// Module names to load at boot, e.g. `["overlay"]`.
    #[serde(default)]
    pub modules: Vec<String>,
    /// `[[network]]` tables: read and checked by `boot::net` (config.rs), which says what
    /// is wrong with them; any value here, so that they never stop the modules.
    #[serde(default)]
    pub network: Option<toml::Value>,
    /// A login (`getty@TTY` unit) on each console (see boot::getty); `false`: none.
    #[serde(default = "yes")]
    pub getty: bool,
    /// A `udev` unit when the system has udev (see boot::udev); `false`: none.
    #[serde(default = "yes")]
    pub udev: bool,
}

fn yes() -> bool {
    true
}

impl Default for BootConfig {
    fn default() -> Self {
        BootConfig {
            modules: Vec::new(),
            getty: true,
            udev: true,
            network: None,
        }
    }
}

/// A `boot.toml` that cannot be read, or a module that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("module {name} not found in {}/modules.dep", dir.display())]
    NotFound { name: String, dir: PathBuf },
    #[error("{0}")]
    Open(std::io::Error),
    #[error("{}", .0.desc())]
    Init(nix::errno::Errno),
}

impl BootConfig {
    /// Read the file; a missing file is an empty config.
    pub fn read(path: &Path) -> Result<BootConfig, ModuleError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|source| ModuleError::Parse {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BootConfig::default()),
            Err(source) => Err(ModuleError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

/// `modules.dep`: module file (relative) -> its dependencies (relative), and the name of
/// each module (file stem without `.ko*`, `-` and `_` equal).
pub struct ModDep {
    dir: PathBuf,
    entries: Vec<(String, Vec<String>)>,
}

fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let stem = base.split(".ko").next().unwrap_or(base);
    stem.replace('-', "_")
}

impl ModDep {
    pub fn parse(dir: &Path, text: &str) -> ModDep {
        let entries = text
            .lines()
            .filter_map(|l| {
                let (m, deps) = l.split_once(':')?;
                Some((
                    m.trim().to_string(),
                    deps.split_whitespace().map(str::to_string).collect(),
                ))
            })
            .collect();
        ModDep {
            dir: dir.to_path_buf(),
            entries,
        }
    }

    /// Files to load for `name`, dependencies first.
    pub fn plan(&self, name: &str) -> Result<Vec<PathBuf>, ModuleError> {
        let want = name.replace('-', "_");
        let (file, deps) = self
            .entries
            .iter()
            .find(|(f, _)| module_name(f) == want)
            .ok_or_else(|| ModuleError::NotFound {
                name: name.to_string(),
                dir: self.dir.clone(),
            })?;
        // modules.dep lists the transitive dependencies, the deepest last.
        let mut files: Vec<PathBuf> = deps.iter().rev().map(|d| self.dir.join(d)).collect();
        files.push(self.dir.join(file));
        Ok(files)
    }
}

/// Load `names` and their dependencies; one line per module for the console.
pub fn load(names: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    if names.is_empty() {
        return lines;
    }
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = PathBuf::from("/lib/modules").join(&release);
    let dep = match std::fs::read_to_string(dir.join("modules.dep")) {
        Ok(text) => ModDep::parse(&dir, &text),
        Err(e) => {
            lines.push(format!(
                "cannot load modules {names:?}: {}/modules.dep: {e}",
                dir.display()
            ));
            return lines;
        }
    };
    // Modules built into the kernel are there already (systemd-modules-load says nothing
    // of them either).
    let builtin: HashSet<String> = std::fs::read_to_string(dir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .map(module_name)
        .collect();
    let mut done = HashSet::new();
    for name in names {
        if builtin.contains(&name.replace('-', "_")) {
            continue;
        }
        match dep.plan(name) {
            Ok(files) => {
                for f in files {
                    if done.insert(f.clone()) {
                        lines.push(match insert(&f) {
                            Ok(()) => format!("loaded module {}", f.display()),
                            Err(e) => format!("load module {}: {e}", f.display()),
                        });
                    }
                }
            }
            Err(e) => lines.push(e.to_string()),
        }
    }
    lines
}

fn insert(file: &Path) -> Result<(), ModuleError> {
    let f = std::fs::File::open(file).map_err(ModuleError::Open)?;
    let params = CString::default();
    let compressed = file
        .extension()
        .is_some_and(|e| e == "xz" || e == "zst" || e == "gz");
    // MODULE_INIT_COMPRESSED_FILE (4): let the kernel decompress (kernels >= 5.17).
    let flags = if compressed {
        ModuleInitFlags::from_bits_retain(4)
    } else {
        ModuleInitFlags::empty()
    };
    match finit_module(&f, &params, flags) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(ModuleError::Init(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_dependencies_first() {
        let text =
            "kernel/fs/overlayfs/overlay.ko:\nkernel/a/b.ko.xz: kernel/c/c-dep.ko kernel/d/d.ko\n";
        let dep = ModDep::parse(Path::new("/lib/modules/6.1"), text);
        assert_eq!(
            dep.plan("overlay").unwrap(),
            [PathBuf::from(
                "/lib/modules/6.1/kernel/fs/overlayfs/overlay.ko"
            )]
        );
        assert_eq!(
            dep.plan("b").unwrap(),
            [
                PathBuf::from("/lib/modules/6.1/kernel/d/d.ko"),
                PathBuf::from("/lib/modules/6.1/kernel/c/c-dep.ko"),
                PathBuf::from("/lib/modules/6.1/kernel/a/b.ko.xz"),
            ]
        );
        assert_eq!(module_name("x/c-dep.ko"), "c_dep");
        assert_eq!(
            dep.plan("nope").unwrap_err().to_string(),
            "module nope not found in /lib/modules/6.1/modules.dep"
        );
    }

    #[test]
    fn boot_toml() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("boot.toml");
        assert_eq!(BootConfig::read(&p).unwrap(), BootConfig::default());
        std::fs::write(&p, "modules = [\"overlay\"]\n").unwrap();
        assert_eq!(BootConfig::read(&p).unwrap().modules, ["overlay"]);
        std::fs::write(&p, "modulez = []\n").unwrap();
        assert!(BootConfig::read(&p)
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
    }
}
