//! Turning a unit's `[container]` into the helper's [`ContainerSpec`]: layer names to
//! directories, named volumes to directories under the state dir, the init layer's files
//! generated, a network to join resolved to a namespace path.

use std::path::{Path, PathBuf};

use kennel_core::start::ContainerPlan;
use kennel_image::ImageError;
use kennel_units::{Container, ImageRef, Layer, Namespace, Network, Volume};

use crate::spawn::env::DEFAULT_PATH;
use crate::spawn::helper::userns::{SubidError, UserNsSpec};
use crate::spawn::seccomp_profile::SeccompProfileError;
use crate::spawn::spec::{ContainerSpec, DeviceNode, DeviceNodeError, MountSpec, SecuritySpec};

/// Where the notify socket appears inside a container.
pub const NOTIFY_INSIDE: &str = "/run/kennel/notify";

/// Why a unit's `[container]` could not be turned into what its helper needs.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The image, or the record of the layers the container was started on.
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(
        "layer {name:?} not found: {} is not a directory (put the layer there, or name an absolute directory)",
        dir.display()
    )]
    LayerNotFound { name: String, dir: PathBuf },
    #[error("layer {} is not a directory", .0.display())]
    LayerNotADirectory(PathBuf),
    /// `network = "unit:NAME"` while NAME has no process.
    #[error("network unit:{0}: unit {0} is not running")]
    NetworkUnitDown(String),
    #[error(transparent)]
    UserMaps(#[from] UserMapsError),
    #[error("{step} {}: {source}", dir.display())]
    PrivateDir {
        step: &'static str,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("create volume {name} at {}: {source}", dir.display())]
    Volume {
        name: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("record the layers of {unit}: {source}")]
    Record { unit: String, source: ImageError },
    #[error(transparent)]
    Device(#[from] DeviceNodeError),
    #[error("seccomp profile: {0}")]
    Seccomp(#[from] SeccompProfileError),
    #[error("image {0} has no Entrypoint or Cmd, and the unit sets no service.command")]
    NoCommand(ImageRef),
}

/// Why a unit with a user namespace has no id maps.
#[derive(Debug, thiserror::Error)]
pub enum UserMapsError {
    /// Neither the unit's map nor a `kennel` entry of `path`.
    #[error(
        "container.namespaces has \"user\" and container.{key} is not set, so kennel maps the container's ids to the ranges of the \"kennel\" entry of {}, which has none: add a line such as kennel:100000:65536 to /etc/subuid and /etc/subgid, or set container.uid_map and container.gid_map",
        path.display()
    )]
    NoEntry { key: &'static str, path: PathBuf },
    #[error("read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Entry { path: PathBuf, source: SubidError },
}

/// Why `kennel commit` could not freeze or thaw a unit's cgroup.
#[derive(Debug, thiserror::Error)]
pub enum FreezeError {
    #[error("cgroups: {0}")]
    Cgroups(kennel_cgroups::CgroupError),
    #[error("freeze {unit}: {source}")]
    Freeze {
        unit: String,
        source: kennel_cgroups::CgroupError,
    },
    #[error("thaw {unit}: {source}")]
    Thaw {
        unit: String,
        source: kennel_cgroups::CgroupError,
    },
}

/// Resolve `c` for unit `name`. `net_pid` is the main pid of the unit whose network
/// namespace this one joins (`network = "unit:NAME"`), if it runs.
pub fn spec(
    name: &str,
    c: &Container,
    state_dir: &Path,
    net_pid: Option<i32>,
    notify_socket: Option<&Path>,
) -> Result<ContainerSpec, ContainerError> {
    // The image's layers first (bottom), then `rootfs` on top.
    let mut layers = Vec::new();
    let mut image_config = None;
    if let Some(r) = &c.image {
        let (img, dirs) = kennel_image::runtime::resolve(state_dir, r)?;
        layers.extend(dirs);
        image_config = Some(img.config);
    }
    for l in &c.rootfs {
        let dir = match l {
            Layer::Named(n) => state_dir.join("layers").join(n),
            Layer::Path(p) => p.clone(),
        };
        if !dir.is_dir() {
            return Err(match l {
                Layer::Named(n) => ContainerError::LayerNotFound {
                    name: n.clone(),
                    dir,
                },
                Layer::Path(p) => ContainerError::LayerNotADirectory(p.clone()),
            });
        }
        layers.push(dir);
    }
    let join_net = match &c.network {
        Network::Unit(other) => match net_pid {
            Some(pid) => Some(PathBuf::from(format!("/proc/{pid}/ns/net"))),
            None => return Err(ContainerError::NetworkUnitDown(other.clone())),
        },
        _ => None,
    };
    let user_ns = if c.namespaces.contains(&Namespace::User) {
        Some(user_maps(
            c,
            Path::new("/etc/subuid"),
            Path::new("/etc/subgid"),
        )?)
    } else {
        None
    };
    // Bind and named volumes are idmapped like the layers (unless `idmap = false`): their
    // ids read the same inside as without a user namespace.
    let user = user_ns.is_some();
    let mut volumes = Vec::new();
    for v in &c.volumes {
        volumes.push(match v {
            Volume::Bind {
                source,
                target,
                read_only,
                idmap,
            } => MountSpec::Bind {
                source: source.clone(),
                target: target.clone(),
                read_only: *read_only,
                idmap: user && *idmap,
            },
            Volume::Tmpfs { target, size } => MountSpec::Tmpfs {
                target: target.clone(),
                size: *size,
            },
            Volume::Named {
                name: vol,
                target,
                read_only,
                idmap,
            } => {
                private_dir(&state_dir.join("volumes"))?;
                let dir = state_dir.join("volumes").join(vol);
                std::fs::create_dir_all(&dir).map_err(|source| ContainerError::Volume {
                    name: vol.clone(),
                    dir: dir.clone(),
                    source,
                })?;
                MountSpec::Bind {
                    source: dir,
                    target: target.clone(),
                    read_only: *read_only,
                    idmap: user && *idmap,
                }
            }
        });
    }
    if let Some(sock) = notify_socket {
        // kennel's own socket (0600, owned by the unit's user; with a user namespace by its
        // mapped host id): a plain bind, never idmapped (it is on /run, often a tmpfs).
        volumes.push(MountSpec::Bind {
            source: sock.to_path_buf(),
            target: PathBuf::from(NOTIFY_INSIDE),
            read_only: false,
            idmap: false,
        });
    }
    private_dir(&state_dir.join("containers"))?;
    let dir = state_dir.join("containers").join(name);
    // What the container is started on: `kennel commit` builds on it, `layer gc` keeps it.
    let record = kennel_image::runtime::ContainerRecord {
        image: c.image.as_ref().map(ToString::to_string),
        layers: layers.clone(),
        config: image_config,
    };
    record
        .write(&dir)
        .map_err(|source| ContainerError::Record {
            unit: name.to_string(),
            source,
        })?;
    Ok(ContainerSpec {
        namespaces: c.namespaces.iter().copied().collect(),
        join_net,
        hostname: c.hostname.clone(),
        layers,
        dir: state_dir.join("containers").join(name),
        read_only: c.read_only,
        persist: c.persist,
        init_files: init_files(c),
        volumes,
        devices: c
            .security
            .devices
            .iter()
            .map(|d| DeviceNode::of(d))
            .collect::<Result<_, _>>()?,
        user_ns,
        // Decided by the start plan once the unit's cgroup is made (owner/spawning.rs).
        plan: ContainerPlan::default(),
        cgroup_hierarchies: Vec::new(),
        bundle: None,
        join_paths: Vec::new(),
    })
}

/// Whether every one of `layers` is one of the store's digest layers
/// (`STATE/layers/sha256-<hex>`, named by the digest of their content; a name is a symlink
/// to one), which nothing changes in place.
pub fn content_addressed(state_dir: &Path, layers: &[PathBuf]) -> bool {
    let Ok(store) = state_dir.join("layers").canonicalize() else {
        return false;
    };
    layers.iter().all(|l| {
        l.canonicalize().is_ok_and(|p| {
            p.parent() == Some(store.as_path())
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("sha256-"))
        })
    })
}

/// `STATE/containers` and `STATE/volumes` are root's alone (0700): what a container writes
/// there (a setuid-root file in its writable layer or a volume: with a user namespace the
/// ids on disk are the container's, so its root's files are root's) must be out of reach of
/// the host's other users and of a process that escaped as an unprivileged id.
fn private_dir(dir: &Path) -> Result<(), ContainerError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |step| {
        move |source| ContainerError::PrivateDir {
            step,
            dir: dir.to_path_buf(),
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(failed("create"))?;
    let meta = std::fs::metadata(dir).map_err(failed("stat"))?;
    if meta.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(failed("chmod 0700"))?;
    }
    Ok(())
}

/// The id maps of a unit with a user namespace: its `uid_map` and `gid_map`, or else the
/// ranges of the `kennel` entries of `subuid` and `subgid` (`/etc/subuid`, `/etc/subgid`).
pub fn user_maps(c: &Container, subuid: &Path, subgid: &Path) -> Result<UserNsSpec, UserMapsError> {
    let read =
        |path: &Path, key: &'static str| -> Result<Vec<kennel_units::IdMap>, UserMapsError> {
            let missing = || UserMapsError::NoEntry {
                key,
                path: path.to_path_buf(),
            };
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
                Err(source) => {
                    return Err(UserMapsError::Read {
                        path: path.to_path_buf(),
                        source,
                    })
                }
            };
            let maps =
                crate::spawn::helper::userns::subid_ranges(&text, "kennel").map_err(|source| {
                    UserMapsError::Entry {
                        path: path.to_path_buf(),
                        source,
                    }
                })?;
            if maps.is_empty() {
                return Err(missing());
            }
            Ok(maps)
        };
    // Each from the unit if it sets it (gid_map already defaults to uid_map), else from
    // the files.
    let pick = |own: &[kennel_units::IdMap], path: &Path, key: &'static str| {
        if own.is_empty() {
            read(path, key)
        } else {
            Ok(own.to_vec())
        }
    };
    Ok(UserNsSpec {
        uid_map: pick(&c.uid_map, subuid, "uid_map")?,
        gid_map: pick(&c.gid_map, subgid, "gid_map")?,
    })
}

/// Deletes what earlier starts of container `name` moved into its trash
/// ([`crate::spawn::helper::layers::TRASH`]): old writable and init layers. Blocking: called on the
/// trash thread (daemon/trash.rs). Best effort: what is left goes at the next start.
pub fn empty_trash(state_dir: &Path, name: &str) {
    let trash = state_dir
        .join("containers")
        .join(name)
        .join(crate::spawn::helper::layers::TRASH);
    let Ok(entries) = std::fs::read_dir(&trash) else {
        return;
    };
    for entry in entries.flatten() {
        if let Err(e) = std::fs::remove_dir_all(entry.path()) {
            tracing::debug!("delete {}: {e}", entry.path().display());
        }
    }
}

/// The security settings for the helper, with a seccomp profile compiled here (the
/// profile file is read on the host).
pub fn security(c: &Container) -> Result<SecuritySpec, ContainerError> {
    let settings = c.security.clone();
    let profile = match &settings.seccomp {
        kennel_units::security::Seccomp::Profile(path) => {
            crate::spawn::seccomp_profile::compile_file(path, &settings.capabilities())?
        }
        _ => Vec::new(),
    };
    Ok(SecuritySpec { settings, profile })
}

/// Applies the defaults of the unit's image (recorded by [`spec`] at the last start) for
/// what the unit does not set: the command (Entrypoint + Cmd) when `spec.argv` is empty,
/// `Env` over the base environment, `WorkingDir`, `User`. Units without an image are left
/// alone.
pub fn apply_image(
    spec: &mut crate::spawn::SpawnSpec,
    name: &str,
    c: &Container,
    state_dir: &Path,
) -> Result<(), ContainerError> {
    let Some(image) = &c.image else {
        return Ok(());
    };
    let dir = state_dir.join("containers").join(name);
    let record = kennel_image::runtime::ContainerRecord::read(&dir)?;
    let d = record
        .config
        .as_ref()
        .map(kennel_image::runtime::ImageDefaults::from_config)
        .unwrap_or_default();
    if spec.argv.is_empty() {
        spec.argv = d.argv();
        if spec.argv.is_empty() {
            return Err(ContainerError::NoCommand(image.clone()));
        }
    }
    for (k, v) in d.env {
        match spec.base_env.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => spec.base_env.push((k, v)),
        }
    }
    if spec.working_dir.is_none() {
        spec.working_dir = d.working_dir.map(PathBuf::from);
    }
    if spec.user.is_none() {
        spec.user = d.user;
    }
    Ok(())
}

/// Freezes (`thaw_after: Some(ms)`, thawed by itself after that) or thaws (`None`) the
/// cgroup of unit `name`, for `kennel commit`.
pub fn freeze(
    parent: Option<&str>,
    name: &str,
    thaw_after: Option<u64>,
) -> Result<(), FreezeError> {
    let cgroup = kennel_cgroups::Cgroups::detect(parent)
        .map_err(FreezeError::Cgroups)?
        .unit(name);
    match thaw_after {
        None => cgroup.thaw().map_err(|source| FreezeError::Thaw {
            unit: name.to_string(),
            source,
        }),
        Some(ms) => {
            cgroup.freeze().map_err(|source| {
                let _ = cgroup.thaw();
                FreezeError::Freeze {
                    unit: name.to_string(),
                    source,
                }
            })?;
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                let _ = cgroup.thaw();
            });
            Ok(())
        }
    }
}

/// The init layer: `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf` for this unit.
pub fn init_files(c: &Container) -> Vec<(PathBuf, String)> {
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    hosts.push_str(&format!("127.0.1.1\t{}\n", c.hostname));
    for (host, addr) in &c.hosts {
        hosts.push_str(&format!("{addr}\t{host}\n"));
    }
    let resolv = match &c.dns {
        Some(servers) => servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .collect(),
        None => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
    };
    vec![
        (PathBuf::from("/etc/hostname"), format!("{}\n", c.hostname)),
        (PathBuf::from("/etc/hosts"), hosts),
        (PathBuf::from("/etc/resolv.conf"), resolv),
    ]
}

/// The search domain of kennel's DNS: `NAME.dns.kennel` is unit NAME on the asker's network.
pub const DNS_DOMAIN: &str = "dns.kennel";

/// For a container on a bridge network, `/etc/hosts` and `/etc/resolv.conf` of the init
/// layer `files` (made by [`init_files`]) replaced: the hostname on its own addresses
/// `addrs`, and kennel's DNS on the network's `gateway` (unless the unit sets `dns`).
pub fn network_files(
    files: &mut [(PathBuf, String)],
    c: &Container,
    addrs: &[std::net::IpAddr],
    gateway: std::net::IpAddr,
) {
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for a in addrs {
        hosts.push_str(&format!("{a}\t{}\n", c.hostname));
    }
    for (host, addr) in &c.hosts {
        hosts.push_str(&format!("{addr}\t{host}\n"));
    }
    let resolv = match &c.dns {
        Some(servers) => servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .collect(),
        None => format!("search {DNS_DOMAIN}\nnameserver {gateway}\n"),
    };
    for (path, text) in files.iter_mut() {
        if path == Path::new("/etc/hosts") {
            *text = hosts.clone();
        } else if path == Path::new("/etc/resolv.conf") {
            *text = resolv.clone();
        }
    }
}

/// A container's starting environment (it does not inherit kennel's, as a Docker
/// container does not inherit dockerd's).
pub fn base_env(name: &str, c: &Container, notify: bool) -> Vec<(String, String)> {
    let mut env = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOSTNAME".to_string(), c.hostname.clone()),
        ("KENNEL_UNIT".to_string(), name.to_string()),
    ];
    if notify {
        env.push(("NOTIFY_SOCKET".to_string(), NOTIFY_INSIDE.to_string()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn container() -> Container {
        Container {
            image: None,
            rootfs: vec![Layer::Named("base".into())],
            namespaces: Namespace::defaults(),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            hostname: "web".into(),
            network: Network::None,
            address: None,
            ports: Vec::new(),
            aliases: Vec::new(),
            cni_args: Default::default(),
            init: true,
            read_only: false,
            persist: false,
            cgroup: Default::default(),
            hosts: BTreeMap::from([("db".to_string(), "10.0.0.2".to_string())]),
            dns: Some(vec!["192.0.2.53".into()]),
            volumes: vec![Volume::Named {
                name: "data".into(),
                target: "/data".into(),
                read_only: false,
                idmap: true,
            }],
            security: Default::default(),
        }
    }

    #[test]
    fn init_layer_files() {
        let files = init_files(&container());
        assert_eq!(
            files[0],
            (PathBuf::from("/etc/hostname"), "web\n".to_string())
        );
        assert!(files[1].1.contains("127.0.1.1\tweb\n"));
        assert!(files[1].1.ends_with("10.0.0.2\tdb\n"));
        assert_eq!(files[2].1, "nameserver 192.0.2.53\n");
    }

    #[test]
    fn network_init_files() {
        let mut c = container();
        c.dns = None;
        let mut files = init_files(&c);
        let addrs = ["10.89.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        network_files(&mut files, &c, &addrs, "10.89.0.1".parse().unwrap());
        assert_eq!(
            files[1].1,
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.89.0.5\tweb\nfd00::5\tweb\n10.0.0.2\tdb\n"
        );
        assert_eq!(files[2].1, "search dns.kennel\nnameserver 10.89.0.1\n");
        // The unit's own name servers win.
        let mut files = init_files(&container());
        network_files(
            &mut files,
            &container(),
            &addrs,
            "10.89.0.1".parse().unwrap(),
        );
        assert_eq!(files[2].1, "nameserver 192.0.2.53\n");
    }

    #[test]
    fn resolves_layers_and_named_volumes() {
        let state = tempfile::tempdir().unwrap();
        let err = spec("web", &container(), state.path(), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("layer \"base\" not found"), "{err}");
        std::fs::create_dir_all(state.path().join("layers/base")).unwrap();
        let s = spec("web", &container(), state.path(), None, None).unwrap();
        assert_eq!(s.layers, [state.path().join("layers/base")]);
        assert!(state.path().join("volumes/data").is_dir());
        assert!(
            matches!(&s.volumes[0], MountSpec::Bind { source, .. } if source.ends_with("volumes/data"))
        );
        assert_eq!(s.dir, state.path().join("containers/web"));
        use std::os::unix::fs::PermissionsExt;
        for d in ["containers", "volumes"] {
            let mode = std::fs::metadata(state.path().join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{d}");
        }
    }

    #[test]
    fn user_maps_from_the_unit_or_the_kennel_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (subuid, subgid) = (dir.path().join("subuid"), dir.path().join("subgid"));
        let mut c = container();
        c.namespaces.insert(Namespace::User);
        let err = user_maps(&c, &subuid, &subgid).unwrap_err().to_string();
        assert!(err.contains("container.uid_map is not set"), "{err}");
        assert!(
            err.contains("add a line such as kennel:100000:65536"),
            "{err}"
        );
        std::fs::write(&subuid, "alice:100000:65536\nkennel:200000:65536\n").unwrap();
        std::fs::write(&subgid, "kennel:300000:1000\n").unwrap();
        let m = user_maps(&c, &subuid, &subgid).unwrap();
        assert_eq!(m.root().unwrap(), (200000, 300000));
        assert_eq!(m.gid_map[0].size, 1000);
        std::fs::write(&subgid, "alice:1:2\n").unwrap();
        let err = user_maps(&c, &subuid, &subgid).unwrap_err().to_string();
        assert!(err.contains("container.gid_map is not set"), "{err}");
        // A gid_map alone is the unit's; the uids still come from /etc/subuid.
        c.gid_map = vec![kennel_units::IdMap {
            container: 0,
            host: 700000,
            size: 10,
        }];
        let m = user_maps(&c, &subuid, &subgid).unwrap();
        assert_eq!(m.root().unwrap(), (200000, 700000));
        // The unit's own maps win.
        c.uid_map = vec![kennel_units::IdMap {
            container: 0,
            host: 500000,
            size: 10,
        }];
        c.gid_map = c.uid_map.clone();
        let m = user_maps(&c, &subuid, &subgid).unwrap();
        assert_eq!(m.root().unwrap(), (500000, 500000));
    }

    #[test]
    fn joining_a_stopped_unit_network_is_an_error() {
        let state = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(state.path().join("layers/base")).unwrap();
        let mut c = container();
        c.network = Network::Unit("db".into());
        let err = spec("web", &c, state.path(), None, None).unwrap_err();
        assert_eq!(err.to_string(), "network unit:db: unit db is not running");
        let s = spec("web", &c, state.path(), Some(42), None).unwrap();
        assert_eq!(s.join_net, Some(PathBuf::from("/proc/42/ns/net")));
    }
}
