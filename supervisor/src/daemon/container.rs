//! Turning a unit's `[container]` into the helper's [`ContainerSpec`]: layer names to
//! directories, named volumes to directories under the state dir, the init layer's files
//! generated, a network to join resolved to a namespace path.

use std::path::{Path, PathBuf};

use kennel_units::{Container, Layer, Namespace, Network, Volume};

use crate::spawn::env::DEFAULT_PATH;
use crate::spawn::spec::{ContainerSpec, MountSpec};

/// Where the notify socket appears inside a container.
pub const NOTIFY_INSIDE: &str = "/run/kennel/notify";

/// Resolve `c` for unit `name`. `net_pid` is the main pid of the unit whose network
/// namespace this one joins (`network = "unit:NAME"`), if it runs.
pub fn spec(
    name: &str,
    c: &Container,
    state_dir: &Path,
    net_pid: Option<i32>,
    notify_socket: Option<&Path>,
) -> Result<ContainerSpec, String> {
    let mut layers = Vec::new();
    for l in &c.rootfs {
        let dir = match l {
            Layer::Named(n) => state_dir.join("layers").join(n),
            Layer::Path(p) => p.clone(),
        };
        if !dir.is_dir() {
            return Err(match l {
                Layer::Named(n) => format!(
                    "layer {n:?} not found: {} is not a directory (put the layer there, or name an absolute directory)",
                    dir.display()
                ),
                Layer::Path(p) => format!("layer {} is not a directory", p.display()),
            });
        }
        layers.push(dir);
    }
    let join_net = match &c.network {
        Network::Unit(other) => match net_pid {
            Some(pid) => Some(PathBuf::from(format!("/proc/{pid}/ns/net"))),
            None => return Err(format!("network unit:{other}: unit {other} is not running")),
        },
        _ => None,
    };
    let mut volumes = Vec::new();
    for v in &c.volumes {
        volumes.push(match v {
            Volume::Bind {
                source,
                target,
                read_only,
            } => MountSpec::Bind {
                source: source.clone(),
                target: target.clone(),
                read_only: *read_only,
            },
            Volume::Tmpfs { target, size } => MountSpec::Tmpfs {
                target: target.clone(),
                size: *size,
            },
            Volume::Named {
                name: vol,
                target,
                read_only,
            } => {
                let dir = state_dir.join("volumes").join(vol);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("create volume {vol} at {}: {e}", dir.display()))?;
                MountSpec::Bind {
                    source: dir,
                    target: target.clone(),
                    read_only: *read_only,
                }
            }
        });
    }
    if let Some(sock) = notify_socket {
        volumes.push(MountSpec::Bind {
            source: sock.to_path_buf(),
            target: PathBuf::from(NOTIFY_INSIDE),
            read_only: false,
        });
    }
    Ok(ContainerSpec {
        namespaces: c.namespaces.iter().copied().collect(),
        join_net,
        hostname: c.hostname.clone(),
        init: c.init && c.namespaces.contains(&Namespace::Pid),
        layers,
        dir: state_dir.join("containers").join(name),
        read_only: c.read_only,
        persist: c.persist,
        init_files: init_files(c),
        volumes,
    })
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
            rootfs: vec![Layer::Named("base".into())],
            namespaces: Namespace::defaults(),
            hostname: "web".into(),
            network: Network::None,
            init: true,
            read_only: false,
            persist: false,
            hosts: BTreeMap::from([("db".to_string(), "10.0.0.2".to_string())]),
            dns: Some(vec!["192.0.2.53".into()]),
            volumes: vec![Volume::Named {
                name: "data".into(),
                target: "/data".into(),
                read_only: false,
            }],
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
    fn resolves_layers_and_named_volumes() {
        let state = tempfile::tempdir().unwrap();
        let err = spec("web", &container(), state.path(), None, None).unwrap_err();
        assert!(err.contains("layer \"base\" not found"), "{err}");
        std::fs::create_dir_all(state.path().join("layers/base")).unwrap();
        let s = spec("web", &container(), state.path(), None, None).unwrap();
        assert_eq!(s.layers, [state.path().join("layers/base")]);
        assert!(state.path().join("volumes/data").is_dir());
        assert!(
            matches!(&s.volumes[0], MountSpec::Bind { source, .. } if source.ends_with("volumes/data"))
        );
        assert_eq!(s.dir, state.path().join("containers/web"));
        assert!(s.init);
    }

    #[test]
    fn joining_a_stopped_unit_network_is_an_error() {
        let state = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(state.path().join("layers/base")).unwrap();
        let mut c = container();
        c.network = Network::Unit("db".into());
        let err = spec("web", &c, state.path(), None, None).unwrap_err();
        assert_eq!(err, "network unit:db: unit db is not running");
        let s = spec("web", &c, state.path(), Some(42), None).unwrap();
        assert_eq!(s.join_net, Some(PathBuf::from("/proc/42/ns/net")));
    }
}
