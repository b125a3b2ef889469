//! config.json: every key is checked against what kennel honours before the bundle is
//! parsed with `oci-spec` (which ignores what it does not know): a key kennel does not
//! honour is refused with its JSON path, never ignored.

use serde_json::Value;

/// A config.json kennel cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("config.json: {0} is not supported by kennel")]
    Unsupported(String),
    #[error("config.json: {field}: {why}")]
    Invalid { field: String, why: String },
}

fn unsupported(path: &str) -> ConfigError {
    ConfigError::Unsupported(path.to_string())
}

/// `MS_*` flags of each mount option: (name, set, clear).
pub const MOUNT_OPTIONS: &[(&str, u64, u64)] = &[
    ("defaults", 0, 0),
    ("ro", libc::MS_RDONLY, 0),
    ("rw", 0, libc::MS_RDONLY),
    ("suid", 0, libc::MS_NOSUID),
    ("nosuid", libc::MS_NOSUID, 0),
    ("dev", 0, libc::MS_NODEV),
    ("nodev", libc::MS_NODEV, 0),
    ("exec", 0, libc::MS_NOEXEC),
    ("noexec", libc::MS_NOEXEC, 0),
    ("sync", libc::MS_SYNCHRONOUS, 0),
    ("async", 0, libc::MS_SYNCHRONOUS),
    ("dirsync", libc::MS_DIRSYNC, 0),
    ("remount", libc::MS_REMOUNT, 0),
    ("mand", libc::MS_MANDLOCK, 0),
    ("nomand", 0, libc::MS_MANDLOCK),
    ("atime", 0, libc::MS_NOATIME),
    ("noatime", libc::MS_NOATIME, 0),
    ("diratime", 0, libc::MS_NODIRATIME),
    ("nodiratime", libc::MS_NODIRATIME, 0),
    ("relatime", libc::MS_RELATIME, 0),
    ("norelatime", 0, libc::MS_RELATIME),
    ("strictatime", libc::MS_STRICTATIME, 0),
    ("nostrictatime", 0, libc::MS_STRICTATIME),
];

/// Propagation options: (name, flags).
pub const PROPAGATION: &[(&str, u64)] = &[
    ("private", libc::MS_PRIVATE),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC),
    ("shared", libc::MS_SHARED),
    ("rshared", libc::MS_SHARED | libc::MS_REC),
    ("slave", libc::MS_SLAVE),
    ("rslave", libc::MS_SLAVE | libc::MS_REC),
    ("unbindable", libc::MS_UNBINDABLE),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
];

/// A mount's options, as [`mount_options`] reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags.
    pub flags: u64,
    /// `MS_PRIVATE`, `MS_SHARED` ... (with `MS_REC`), or 0.
    pub propagation: u64,
    /// What is left, for the file system.
    pub data: String,
    /// `tmpcopyup`: a tmpfs starts with what the directory it covers holds.
    pub copy_up: bool,
}

/// A mount's options as flags, propagation, data for the file system and `tmpcopyup`.
pub fn mount_options(field: &str, options: &[String]) -> Result<MountOptions, ConfigError> {
    let (mut flags, mut prop, mut data, mut copy_up) = (0u64, 0u64, Vec::new(), false);
    for o in options {
        if let Some((_, set, clear)) = MOUNT_OPTIONS.iter().find(|m| m.0 == o) {
            flags = (flags & !clear) | set;
        } else if let Some((_, p)) = PROPAGATION.iter().find(|m| m.0 == o) {
            prop = *p;
        } else if o == "bind" {
            flags |= libc::MS_BIND;
        } else if o == "rbind" {
            flags |= libc::MS_BIND | libc::MS_REC;
        } else if o.starts_with('r') && MOUNT_OPTIONS.iter().any(|m| m.0 == &o[1..]) {
            // Recursive attributes (rro, rnosuid ...) need mount_setattr: not yet.
            return Err(ConfigError::Invalid {
                field: field.to_string(),
                why: format!("the recursive mount option {o:?} is not supported by kennel"),
            });
        } else if o == "tmpcopyup" {
            copy_up = true;
        } else if matches!(o.as_str(), "idmap" | "ridmap" | "copy-symlink") {
            return Err(ConfigError::Invalid {
                field: field.to_string(),
                why: format!("the mount option {o:?} is not supported by kennel"),
            });
        } else {
            data.push(o.as_str());
        }
    }
    Ok(MountOptions {
        flags,
        propagation: prop,
        data: data.join(","),
        copy_up,
    })
}

/// Keys kennel honours, as JSON paths (`[]` for each element of an array). A key whose
/// path is here and whose value is an object is checked key by key too.
const HONOURED: &[&str] = &[
    "ociVersion",
    "process",
    "process.terminal",
    "process.consoleSize",
    "process.consoleSize.height",
    "process.consoleSize.width",
    "process.user",
    "process.user.uid",
    "process.user.gid",
    "process.user.additionalGids",
    "process.user.umask",
    "process.args",
    "process.env",
    "process.cwd",
    "process.capabilities",
    "process.capabilities.bounding",
    "process.capabilities.effective",
    "process.capabilities.inheritable",
    "process.capabilities.permitted",
    "process.capabilities.ambient",
    "process.rlimits",
    "process.rlimits[]",
    "process.rlimits[].type",
    "process.rlimits[].soft",
    "process.rlimits[].hard",
    "process.noNewPrivileges",
    "process.oomScoreAdj",
    "root",
    "root.path",
    "root.readonly",
    "mounts",
    "mounts[]",
    "mounts[].destination",
    "mounts[].type",
    "mounts[].source",
    "mounts[].options",
    "hostname",
    "hooks",
    "hooks.prestart",
    "hooks.prestart[]",
    "hooks.prestart[].path",
    "hooks.prestart[].args",
    "hooks.prestart[].env",
    "hooks.prestart[].timeout",
    "hooks.createRuntime",
    "hooks.createRuntime[]",
    "hooks.createRuntime[].path",
    "hooks.createRuntime[].args",
    "hooks.createRuntime[].env",
    "hooks.createRuntime[].timeout",
    "hooks.poststart",
    "hooks.poststart[]",
    "hooks.poststart[].path",
    "hooks.poststart[].args",
    "hooks.poststart[].env",
    "hooks.poststart[].timeout",
    "hooks.poststop",
    "hooks.poststop[]",
    "hooks.poststop[].path",
    "hooks.poststop[].args",
    "hooks.poststop[].env",
    "hooks.poststop[].timeout",
    "annotations",
    "annotations.*",
    "linux",
    "linux.namespaces",
    "linux.namespaces[]",
    "linux.namespaces[].type",
    "linux.namespaces[].path",
    "linux.devices",
    "linux.devices[]",
    "linux.devices[].path",
    "linux.devices[].type",
    "linux.devices[].major",
    "linux.devices[].minor",
    "linux.devices[].fileMode",
    "linux.devices[].uid",
    "linux.devices[].gid",
    "linux.cgroupsPath",
    "linux.resources",
    "linux.resources.memory",
    "linux.resources.memory.limit",
    "linux.resources.memory.reservation",
    "linux.resources.memory.swap",
    "linux.resources.memory.swappiness",
    "linux.resources.memory.disableOOMKiller",
    "linux.resources.memory.kernel",
    "linux.resources.memory.kernelTCP",
    "linux.resources.pids",
    "linux.resources.pids.limit",
    "linux.resources.cpu",
    "linux.resources.cpu.quota",
    "linux.resources.cpu.period",
    "linux.resources.cpu.shares",
    "linux.resources.cpu.realtimeRuntime",
    "linux.resources.cpu.realtimePeriod",
    "linux.resources.cpu.cpus",
    "linux.resources.cpu.mems",
    "linux.resources.devices",
    "linux.resources.devices[]",
    "linux.resources.devices[].allow",
    "linux.resources.devices[].type",
    "linux.resources.devices[].major",
    "linux.resources.devices[].minor",
    "linux.resources.devices[].access",
    "linux.seccomp",
    "linux.seccomp.defaultAction",
    "linux.seccomp.defaultErrnoRet",
    "linux.seccomp.architectures",
    "linux.seccomp.syscalls",
    "linux.seccomp.syscalls[]",
    "linux.seccomp.syscalls[].names",
    "linux.seccomp.syscalls[].action",
    "linux.seccomp.syscalls[].errnoRet",
    "linux.seccomp.syscalls[].args",
    "linux.seccomp.syscalls[].args[]",
    "linux.seccomp.syscalls[].args[].index",
    "linux.seccomp.syscalls[].args[].value",
    "linux.seccomp.syscalls[].args[].valueTwo",
    "linux.seccomp.syscalls[].args[].op",
    "linux.sysctl",
    "linux.sysctl.*",
    "linux.rootfsPropagation",
    "linux.maskedPaths",
    "linux.readonlyPaths",
];

/// Whether `v` is "nothing": null, false, 0, "", [] or {} (keys that say nothing are not
/// refused: `"sysctl": {}`, `"apparmorProfile": ""`).
fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) => false,
    }
}

/// Refuses the first key of `v` (a whole config.json) that kennel does not honour.
pub fn check_keys(v: &Value) -> Result<(), ConfigError> {
    walk(v, "", "")
}

fn walk(v: &Value, pattern: &str, shown: &str) -> Result<(), ConfigError> {
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                let p = join(pattern, k);
                let s = join(shown, k);
                let star = join(pattern, "*");
                if HONOURED.contains(&star.as_str()) {
                    continue;
                }
                if !HONOURED.contains(&p.as_str()) {
                    if empty(val) {
                        continue;
                    }
                    return Err(unsupported(&s));
                }
                walk(val, &p, &s)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            let p = format!("{pattern}[]");
            if !HONOURED.contains(&p.as_str()) {
                return Ok(());
            }
            for (i, item) in items.iter().enumerate() {
                walk(item, &p, &format!("{shown}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}.{b}")
    }
}

/// Reads `BUNDLE/config.json`: checked, then parsed.
pub fn load(bundle: &std::path::Path) -> Result<oci_spec::runtime::Spec, ConfigError> {
    let path = bundle.join("config.json");
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|source| ConfigError::Json {
        path: shown.clone(),
        source,
    })?;
    let spec: oci_spec::runtime::Spec =
        serde_json::from_value(value).map_err(|source| ConfigError::Json {
            path: shown.clone(),
            source,
        })?;
    // The runtime spec says a runtime MUST ignore properties it does not define: the
    // check runs on what the spec's types (oci-spec) kept of the file, so that a key the
    // spec defines and kennel does not honour is refused, and one the spec does not define
    // is ignored.
    let known = serde_json::to_value(&spec).map_err(|source| ConfigError::Json {
        path: shown,
        source,
    })?;
    check_keys(&known)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_unhonoured_keys_are_refused_by_path() {
        let v = serde_json::json!({"ociVersion": "1.0.2", "linux": {"intelRdt": {"closID": "x"}}});
        let e = check_keys(&v).unwrap_err().to_string();
        assert_eq!(e, "config.json: linux.intelRdt is not supported by kennel");
        let v = serde_json::json!({"mounts": [{"destination": "/x"}, {"destination": "/y", "uidMappings": [{"a": 1}]}]});
        let e = check_keys(&v).unwrap_err().to_string();
        assert_eq!(
            e,
            "config.json: mounts[1].uidMappings is not supported by kennel"
        );
        let v = serde_json::json!({"process": {"apparmorProfile": "", "selinuxLabel": "x"}});
        let e = check_keys(&v).unwrap_err().to_string();
        assert_eq!(
            e,
            "config.json: process.selinuxLabel is not supported by kennel"
        );
    }

    #[test]
    fn keys_the_spec_does_not_define_are_ignored_and_those_it_does_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut v = super::super::defaults::default_spec();
        v["unknownProperty"] = "x".into();
        std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
        assert!(load(dir.path()).is_ok());
        v["linux"]["intelRdt"] = serde_json::json!({"closID": "x"});
        std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
        let e = load(dir.path()).unwrap_err().to_string();
        assert_eq!(e, "config.json: linux.intelRdt is not supported by kennel");
    }

    #[test]
    fn the_default_spec_is_accepted() {
        assert!(check_keys(&super::super::defaults::default_spec()).is_ok());
    }

    #[test]
    fn mount_options_become_flags_and_data() {
        let o = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let m = mount_options("m", &o(&["nosuid", "ro", "mode=755", "rprivate", "rbind"])).unwrap();
        let (f, p, d) = (m.flags, m.propagation, m.data);
        assert!(!m.copy_up);
        assert!(mount_options("m", &o(&["tmpcopyup"])).unwrap().copy_up);
        assert_eq!(
            f,
            libc::MS_NOSUID | libc::MS_RDONLY | libc::MS_BIND | libc::MS_REC
        );
        assert_eq!(p, libc::MS_PRIVATE | libc::MS_REC);
        assert_eq!(d, "mode=755");
        assert!(mount_options("m", &o(&["rro"])).is_err());
    }
}
