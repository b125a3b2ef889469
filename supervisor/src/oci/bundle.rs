//! A bundle's config.json (parsed and checked by config.rs) as the spawn spec every
//! kennel container is made from: [`SpawnSpec`] + [`ContainerSpec`] (with its
//! `bundle` rootfs), the security settings, and the cgroup's resources. What the unit
//! path's daemon/container.rs decides from a `[container]`, this decides from a bundle.

use std::path::{Path, PathBuf};

use kennel_core::start::{CgroupFs, ContainerPlan, Overlay, Pid1, Writable};
use kennel_units::security::{CapabilitySets, Seccomp, Security};
use kennel_units::Namespace;
use oci_spec::runtime::Spec;

use super::config::{mount_options, ConfigError, MountOptions};
use crate::spawn::spec::{
    BundleRootfs, ContainerSpec, DeviceNode, FsMount, OwnedDevice, SecuritySpec, SpawnSpec, TtySize,
};

/// What `create` needs of a bundle.
pub struct Bundle {
    pub spawn: SpawnSpec,
    /// A new pid namespace: the helper is cloned right into it, as its PID 1.
    pub new_pid_ns: bool,
    /// An existing pid namespace to start the process in (`create` enters it before it
    /// forks the helper, whose child it then is).
    pub pid_ns_path: Option<PathBuf>,
    pub cgroups_path: Option<PathBuf>,
    pub resources: kennel_units::Resources,
    pub device_rules: Option<Vec<kennel_cgroups::DeviceRule>>,
    /// What `resources` has no field for (cgroup.rs writes it).
    pub extra: super::cgroup::Extra,
    pub annotations: std::collections::BTreeMap<String, String>,
}

fn invalid(field: &str, why: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        field: field.to_string(),
        why: why.to_string(),
    }
}

/// A serde enum's name (`"network"`, `"CAP_KILL"`).
fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// Translates `spec` of the bundle in `dir` for the container `id`, whose state
/// directory is `state`.
pub fn translate(id: &str, dir: &Path, state: &Path, spec: &Spec) -> Result<Bundle, ConfigError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "a container needs a process"))?;
    let argv = process.args().clone().unwrap_or_default();
    if argv.is_empty() {
        return Err(invalid("process.args", "empty"));
    }
    let env: Vec<(String, String)> = process
        .env()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.clone(), String::new()),
        })
        .collect();
    let user = process.user();
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "a container needs a root"))?;
    let root_path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    let root_path = std::fs::canonicalize(&root_path)
        .map_err(|e| invalid("root.path", format!("{}: {e}", root_path.display())))?;

    let linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces = Vec::new();
    let mut join_paths = Vec::new();
    let mut new_pid_ns = false;
    let mut pid_ns_path = None;
    for (i, ns) in linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("linux.namespaces[{i}]");
        let kind = name_of(&ns.typ());
        let (n, short) = match kind.as_str() {
            "pid" => (Namespace::Pid, "pid"),
            "network" => (Namespace::Net, "net"),
            "ipc" => (Namespace::Ipc, "ipc"),
            "uts" => (Namespace::Uts, "uts"),
            "mount" => (Namespace::Mount, "mnt"),
            "cgroup" => (Namespace::Cgroup, "cgroup"),
            other => {
                return Err(ConfigError::Unsupported(format!(
                    "{field}: the {other} namespace"
                )))
            }
        };
        match ns.path() {
            Some(p) if !p.as_os_str().is_empty() && short == "pid" => {
                pid_ns_path = Some(p.clone());
            }
            Some(p) if !p.as_os_str().is_empty() => {
                if !matches!(short, "net" | "ipc" | "uts" | "cgroup") {
                    return Err(ConfigError::Unsupported(format!(
                        "{field}.path (joining a {kind} namespace)"
                    )));
                }
                join_paths.push((short.to_string(), p.clone()));
            }
            _ => {
                if n == Namespace::Pid {
                    new_pid_ns = true;
                }
                namespaces.push(n);
            }
        }
    }
    if !namespaces.contains(&Namespace::Mount) {
        return Err(ConfigError::Unsupported(
            "linux.namespaces without a mount namespace".into(),
        ));
    }
    let hostname = spec.hostname().clone().unwrap_or_default();
    if !hostname.is_empty() && !namespaces.contains(&Namespace::Uts) {
        return Err(invalid("hostname", "needs a new uts namespace"));
    }

    let mut mounts = Vec::new();
    for (i, m) in spec.mounts().clone().unwrap_or_default().iter().enumerate() {
        let field = format!("mounts[{i}]");
        let MountOptions {
            mut flags,
            propagation,
            data,
            copy_up,
        } = mount_options(&field, m.options().as_deref().unwrap_or_default())?;
        let typ = m.typ().clone().unwrap_or_default();
        let fstype = if flags & libc::MS_BIND != 0 || typ == "bind" {
            flags |= libc::MS_BIND;
            "bind".to_string()
        } else {
            match typ.as_str() {
                "proc" | "sysfs" | "tmpfs" | "devpts" | "mqueue" | "cgroup" | "cgroup2" => typ,
                "" => {
                    return Err(invalid(
                        &format!("{field}.type"),
                        "missing (and not a bind mount)",
                    ))
                }
                other => return Err(ConfigError::Unsupported(format!("{field}.type {other:?}"))),
            }
        };
        if copy_up && fstype != "tmpfs" {
            return Err(invalid(
                &format!("{field}.options"),
                "tmpcopyup is for a tmpfs mount only",
            ));
        }
        if !m.destination().is_absolute() {
            return Err(invalid(
                &format!("{field}.destination"),
                "not an absolute path",
            ));
        }
        let mut source = m.source().clone().unwrap_or_else(|| PathBuf::from(&fstype));
        if fstype == "bind" && source.is_relative() {
            source = dir.join(source);
        }
        mounts.push(FsMount {
            target: m.destination().clone(),
            fstype,
            source,
            flags,
            propagation,
            data,
            copy_up,
        });
    }

    let mut devices = Vec::new();
    for (i, d) in linux
        .devices()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("linux.devices[{i}]");
        let kind = match name_of(&d.typ()).as_str() {
            "c" | "u" => 'c',
            "b" => 'b',
            "p" => 'p',
            other => return Err(invalid(&format!("{field}.type"), format!("{other:?}"))),
        };
        let num = |v: i64, what: &str| {
            u32::try_from(v).map_err(|_| invalid(&format!("{field}.{what}"), "out of range"))
        };
        devices.push(OwnedDevice {
            node: DeviceNode {
                path: d.path().clone(),
                kind,
                major: num(d.major(), "major")?,
                minor: num(d.minor(), "minor")?,
                mode: d.file_mode().unwrap_or(0o666),
            },
            uid: d.uid(),
            gid: d.gid(),
        });
    }

    // Resources on the container's cgroup.
    let mut resources = kennel_units::Resources::default();
    let mut device_rules = None;
    let mut extra = super::cgroup::Extra::default();
    if let Some(r) = linux.resources() {
        if let Some(m) = r.memory() {
            if let Some(limit) = m.limit() {
                resources.memory_max = Some(u64::try_from(limit).unwrap_or(u64::MAX));
            }
            extra.memory_reservation = m.reservation();
            extra.memory_swap = m.swap();
            extra.swappiness = m.swappiness();
            extra.disable_oom_killer = m.disable_oom_killer();
            extra.kernel_memory = m.kernel();
            extra.kernel_tcp_memory = m.kernel_tcp();
        }
        if let Some(p) = r.pids() {
            if p.limit() > 0 {
                resources.pids_max = Some(p.limit() as u64);
            }
        }
        if let Some(c) = r.cpu() {
            // The quota and period exactly (a unit's `cpu` is thousandths of a core over
            // 100 ms, which would round).
            if c.quota().is_some() || c.period().is_some() {
                extra.cpu_max = Some((c.quota().unwrap_or(-1), c.period().unwrap_or(100_000)));
            }
            extra.cpu_shares = c.shares();
            extra.rt_runtime = c.realtime_runtime();
            extra.rt_period = c.realtime_period();
            extra.cpus = c.cpus().clone().filter(|s| !s.is_empty());
            extra.mems = c.mems().clone().filter(|s| !s.is_empty());
        }
        if let Some(rules) = r.devices() {
            device_rules = device_cgroup(rules, &devices)?;
        }
    }

    // Security: the bundle's capabilities, limits, no_new_privs and seccomp filter.
    let caps = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
        let mut v: Vec<String> = set
            .iter()
            .flatten()
            .map(|c| name_of(c).trim_start_matches("CAP_").to_string())
            .collect();
        v.sort();
        v
    };
    let sets = process.capabilities().as_ref().map(|c| CapabilitySets {
        bounding: caps(c.bounding()),
        effective: caps(c.effective()),
        permitted: caps(c.permitted()),
        inheritable: caps(c.inheritable()),
        ambient: caps(c.ambient()),
    });
    let mut limits = std::collections::BTreeMap::new();
    let mut soft_limits = std::collections::BTreeMap::new();
    for (i, r) in process
        .rlimits()
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let name = r.typ().to_string();
        let short = name.trim_start_matches("RLIMIT_").to_ascii_lowercase();
        if r.soft() > r.hard() {
            return Err(invalid(&format!("process.rlimits[{i}]"), "soft above hard"));
        }
        limits.insert(short.clone(), r.hard());
        if r.soft() != r.hard() {
            soft_limits.insert(short, r.soft());
        }
    }
    // linux.seccomp: the same schema as a unit's profile file, compiled by the same code
    // (spawn/seccomp_profile.rs) from a copy in the state directory; what it cannot
    // express (an unknown action, an operator) is refused.
    let (seccomp, profile) = match linux.seccomp() {
        None => (Seccomp::Unconfined, Vec::new()),
        Some(sc) => {
            let path = state.join("seccomp.json");
            let text = serde_json::to_vec(sc).map_err(|e| invalid("linux.seccomp", e))?;
            std::fs::write(&path, text)
                .map_err(|e| invalid("linux.seccomp", format!("{}: {e}", path.display())))?;
            let bounding = sets
                .as_ref()
                .map(|s| s.bounding.clone())
                .unwrap_or_default();
            let programs = crate::spawn::seccomp_profile::compile_file(&path, &bounding)
                .map_err(|e| invalid("linux.seccomp", e))?;
            (Seccomp::Profile(path), programs)
        }
    };
    let settings = Security {
        cap_add: Vec::new(),
        cap_drop: vec!["ALL".into()],
        ambient: Vec::new(),
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        seccomp,
        devices: Vec::new(),
        limits,
        oom_score_adj: process.oom_score_adj(),
        sets: Some(sets.unwrap_or_default()),
        soft_limits,
    };

    let tty = process.terminal().unwrap_or(false).then(|| {
        let size = process.console_size();
        TtySize {
            rows: size.map_or(24, |b| b.height() as u16),
            cols: size.map_or(80, |b| b.width() as u16),
        }
    });
    let user_spec = format!("{}:{}", user.uid(), user.gid());
    let groups = Some(user.additional_gids().clone().unwrap_or_default());

    // Only namespaced sysctls, in namespaces of the container's own: never the host's.
    for key in linux.sysctl().iter().flat_map(|m| m.keys()) {
        let has = |n: Namespace, short: &str| {
            namespaces.contains(&n) || join_paths.iter().any(|(j, _)| j == short)
        };
        let ok = if key.starts_with("net.") {
            has(Namespace::Net, "net")
        } else if key.starts_with("kernel.shm")
            || key.starts_with("kernel.msg")
            || key == "kernel.sem"
            || key.starts_with("fs.mqueue.")
        {
            has(Namespace::Ipc, "ipc")
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            has(Namespace::Uts, "uts")
        } else {
            false
        };
        if !ok {
            return Err(invalid(
                &format!("linux.sysctl.{key}"),
                "not a sysctl of one of the container's own namespaces (kennel never changes the host's)",
            ));
        }
    }
    let propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => 0,
        Some(p) => super::config::PROPAGATION
            .iter()
            .find(|o| o.0 == p)
            .map(|o| o.1)
            .ok_or_else(|| invalid("linux.rootfsPropagation", format!("{p:?}")))?,
    };
    let container = ContainerSpec {
        namespaces,
        join_net: None,
        hostname,
        layers: Vec::new(),
        dir: state.to_path_buf(),
        read_only: root.readonly().unwrap_or(false),
        persist: true,
        init_files: Vec::new(),
        volumes: Vec::new(),
        devices: Vec::new(),
        user_ns: None,
        plan: ContainerPlan {
            pid1: if new_pid_ns {
                Pid1::Service
            } else {
                Pid1::NoPidNamespace
            },
            writable: Writable::None,
            overlay: Overlay::New,
            offer_overlay: false,
            cgroup_fs: CgroupFs::None,
        },
        cgroup_hierarchies: Vec::new(),
        bundle: Some(BundleRootfs {
            path: root_path,
            mounts,
            masked: paths(linux.masked_paths()),
            read_only_paths: paths(linux.readonly_paths()),
            devices,
            sysctl: linux
                .sysctl()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            propagation,
        }),
        join_paths,
    };
    let spawn = SpawnSpec {
        unit: id.to_string(),
        argv,
        base_env: Vec::new(),
        environment_file: None,
        env,
        working_dir: Some(process.cwd().clone()),
        user: Some(user_spec),
        // A terminal's process leads a session of its own, so that the terminal becomes
        // its controlling one (as runc's init always does: `run -it`, `exec -t`).
        new_session: tty.is_some(),
        cgroup_procs: Vec::new(),
        unified: None,
        v1: kennel_core::start::V1Join::None,
        container: Some(container),
        join: None,
        stdin_passed: false,
        tty,
        security: Some(SecuritySpec { settings, profile }),
        start_gate: None,
        groups,
        umask: user.umask(),
        sockets: Vec::new(),
        socket_fds: Vec::new(),
    };
    Ok(Bundle {
        spawn,
        new_pid_ns,
        pid_ns_path,
        cgroups_path: linux.cgroups_path().clone(),
        resources,
        device_rules,
        extra,
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    })
}

fn paths(p: &Option<Vec<String>>) -> Vec<PathBuf> {
    p.iter().flatten().map(PathBuf::from).collect()
}

/// Whether `r` allows every device (no type or `a`, no numbers, `rwm`): the rule of
/// `podman run --privileged`.
fn allows_all(r: &oci_spec::runtime::LinuxDeviceCgroup) -> bool {
    let kind = r.typ().map(|t| name_of(&t)).unwrap_or_else(|| "a".into());
    let access = r.access().as_deref().unwrap_or("rwm");
    r.allow()
        && kind == "a"
        && r.major().is_none_or(|n| n < 0)
        && r.minor().is_none_or(|n| n < 0)
        && ['r', 'w', 'm'].iter().all(|c| access.contains(*c))
}

/// `linux.resources.devices` as kennel's device rules: a first rule denying everything,
/// then rules allowing (the standard devices and the bundle's own nodes are added, as
/// runc does); `None` (no restriction) when the last rule allows every device (what
/// `--privileged` gives); any other shape is refused.
fn device_cgroup(
    rules: &[oci_spec::runtime::LinuxDeviceCgroup],
    nodes: &[OwnedDevice],
) -> Result<Option<Vec<kennel_cgroups::DeviceRule>>, ConfigError> {
    use kennel_cgroups::{default_rules, DeviceRule};
    if rules.last().is_some_and(allows_all) {
        return Ok(None);
    }
    // The bundle's rules first, in its order (the spec: entries are applied in the listed
    // order), then the standard devices and the bundle's nodes.
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let kind = r.typ().map(|t| name_of(&t)).unwrap_or_else(|| "a".into());
        let all = kind == "a" && r.major().is_none() && r.minor().is_none();
        if i == 0 && !r.allow() && all {
            continue;
        }
        if !r.allow() {
            return Err(ConfigError::Unsupported(format!(
                "{field} (a deny rule other than a first deny-all)"
            )));
        }
        let num = |v: Option<i64>| v.filter(|n| *n >= 0).map(|n| n as u32);
        let k = kind.chars().next().unwrap_or('a');
        out.push(DeviceRule::new(
            k,
            num(r.major()),
            num(r.minor()),
            r.access().as_deref().unwrap_or("rwm"),
        ));
    }
    if rules.first().is_none_or(|r| r.allow()) {
        return Err(ConfigError::Unsupported(
            "linux.resources.devices without a first rule denying all".into(),
        ));
    }
    out.extend(default_rules());
    // A FIFO is no device: the devices cgroup has no rule for it.
    for n in nodes.iter().filter(|n| n.node.kind != 'p') {
        out.push(DeviceRule::new(
            n.node.kind,
            Some(n.node.major),
            Some(n.node.minor),
            "rwm",
        ));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> (tempfile::TempDir, Result<Bundle, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let mut v = super::super::defaults::default_spec();
        edit(&mut v);
        std::fs::write(dir.path().join("config.json"), v.to_string()).unwrap();
        let spec = super::super::config::load(dir.path()).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let b = translate("t", dir.path(), &state, &spec);
        (dir, b)
    }

    #[test]
    fn the_default_spec_becomes_a_container_spawn() {
        let (dir, b) = bundle_with(|_| {});
        let b = b.unwrap();
        assert!(b.new_pid_ns);
        let c = b.spawn.container.as_ref().unwrap();
        assert_eq!(
            c.plan.pid1,
            Pid1::Service,
            "the process is the pid namespace's PID 1"
        );
        for n in [
            Namespace::Pid,
            Namespace::Net,
            Namespace::Ipc,
            Namespace::Uts,
            Namespace::Mount,
        ] {
            assert!(c.namespaces.contains(&n), "{n:?}");
        }
        assert_eq!(c.hostname, "kennel");
        assert!(c.read_only);
        let r = c.bundle.as_ref().unwrap();
        assert_eq!(
            r.path,
            std::fs::canonicalize(dir.path().join("rootfs")).unwrap()
        );
        let dev = r
            .mounts
            .iter()
            .find(|m| m.target == Path::new("/dev"))
            .unwrap();
        assert_eq!(dev.fstype, "tmpfs");
        assert_eq!(dev.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(dev.data, "mode=755,size=65536k");
        let sec = &b.spawn.security.as_ref().unwrap().settings;
        let sets = sec.sets.as_ref().unwrap();
        assert_eq!(sets.bounding, ["AUDIT_WRITE", "KILL", "NET_BIND_SERVICE"]);
        assert!(sets.inheritable.is_empty());
        assert_eq!(sec.limits.get("nofile"), Some(&1024));
        assert!(sec.no_new_privileges);
        assert_eq!(sec.seccomp, Seccomp::Unconfined);
        assert_eq!(b.spawn.user.as_deref(), Some("0:0"));
        assert_eq!(b.spawn.groups, Some(vec![]));
        assert!(b.spawn.tty.is_some(), "terminal: true");
        let rules = b.device_rules.unwrap();
        assert_eq!(
            rules,
            kennel_cgroups::default_rules(),
            "deny all, then the standard devices"
        );
    }

    #[test]
    fn a_host_sysctl_is_refused_a_namespaced_one_kept() {
        let (_d, b) = bundle_with(|v| {
            v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        });
        assert_eq!(
            b.unwrap().spawn.container.unwrap().bundle.unwrap().sysctl,
            [("net.ipv4.ip_forward".to_string(), "1".to_string())]
        );
        let (_d, b) = bundle_with(|v| {
            v["linux"]["sysctl"] = serde_json::json!({"vm.swappiness": "1"});
        });
        let e = b.err().unwrap().to_string();
        assert!(e.contains("linux.sysctl.vm.swappiness"), "{e}");
    }

    #[test]
    fn soft_rlimits_and_a_joined_namespace() {
        let (_d, b) = bundle_with(|v| {
            v["process"]["rlimits"] =
                serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024}]);
            v["linux"]["namespaces"][1]["path"] = "/proc/1/ns/net".into();
        });
        let b = b.unwrap();
        let sec = &b.spawn.security.as_ref().unwrap().settings;
        assert_eq!(sec.limits.get("nofile"), Some(&1024));
        assert_eq!(sec.soft_limits.get("nofile"), Some(&512));
        let c = b.spawn.container.unwrap();
        assert!(!c.namespaces.contains(&Namespace::Net));
        assert_eq!(
            c.join_paths,
            [("net".to_string(), PathBuf::from("/proc/1/ns/net"))]
        );
    }
}
