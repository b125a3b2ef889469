//! The daemon's side of `network = "cni:NAME"`: before the container starts, its pinned
//! namespace (`STATE/netns/UNIT`, as for bridge units) and the plugin chain's ADD; at its
//! end (or when its start fails), DEL and the namespace's removal; at the daemon's start,
//! DEL of every cached attachment whose unit does not run (a `kill -9` of kennel).
//!
//! The plugins run in `kennel cni add|check|del` (`net::cni::command`), a child process
//! of the daemon. This first version runs that child SYNCHRONOUSLY on the owner task:
//! `std::process::Command::output()` spawns it, reads its stdout and stderr, and waits
//! for its pid with `waitpid(pid)`. That cannot race the one reaper: the reaper
//! (`Owner::reap`, `waitpid(-1)`) runs only on the owner task, which is busy in this call
//! until the child is collected, so it never sees this pid. The cost is that the daemon
//! does nothing else during an ADD/DEL (a plugin chain takes tens of milliseconds; each
//! plugin call is bounded by [`PLUGIN_TIMEOUT`]). An asynchronous start (the unit
//! "starting" while the ADD runs as a child the reaper collects) is the next step.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use kennel_core::Pid;
use kennel_units::{Container, PortMap, Proto, Unit};
use tracing::{debug, info, warn};

use crate::net::cni::{self, CniPaths, CniResult};
use crate::net::netns;

/// How long one plugin call may take (the daemon waits for the whole chain).
pub const PLUGIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The interface CNI makes in the container.
pub const IFNAME: &str = "eth0";

/// Why a unit's CNI network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CniNetError {
    #[error("network cni:{network}: {msg}")]
    Add { network: String, msg: String },
    #[error("network cni:{network}: {source}")]
    Netns {
        network: String,
        source: crate::net::bridge::LinkError,
    },
    #[error("network cni:{network}: run {exe}: {source}")]
    Spawn {
        network: String,
        exe: String,
        source: std::io::Error,
    },
}

/// A container's CNI attachment while it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CniAttached {
    pub network: String,
    pub container_id: String,
    pub netns: PathBuf,
    /// The result's addresses on eth0.
    pub addrs: Vec<IpAddr>,
    pub ports: Vec<PortMap>,
    /// CNI_ARGS (`IgnoreUnknown=1` first, when the unit has `cni_args`).
    pub args: Vec<(String, String)>,
    pub result: CniResult,
}

pub struct CniNets {
    paths: CniPaths,
    state_dir: PathBuf,
    attached: HashMap<String, CniAttached>,
    pids: HashMap<Pid, String>,
}

/// CNI_CONTAINERID of a unit: `kennel-UNIT`, each character CNI does not allow in an id
/// (letters, digits, `_ . -`) as `_`.
pub fn container_id(unit: &str) -> String {
    let mut id = String::from("kennel-");
    id.extend(unit.chars().map(|c| {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            c
        } else {
            '_'
        }
    }));
    id
}

/// CNI_ARGS of a unit's `cni_args`: `IgnoreUnknown=1` first (as containerd and podman
/// pass it: a plugin then passes over keys it does not know instead of failing), then
/// each pair in key order. None without `cni_args`.
pub fn cni_args(m: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    if m.is_empty() {
        return Vec::new();
    }
    let mut v = vec![("IgnoreUnknown".to_string(), "1".to_string())];
    v.extend(
        m.iter()
            .filter(|(k, _)| k.as_str() != "IgnoreUnknown")
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    v
}

/// The `portMappings` capability argument of a unit's `ports` (a range as one mapping a
/// port, as the portmap plugin takes them).
pub fn port_mappings(ports: &[PortMap]) -> serde_json::Value {
    let mut v = Vec::new();
    for p in ports {
        for i in 0..p.count.max(1) {
            let mut m = serde_json::json!({
                "hostPort": p.host_port.saturating_add(i),
                "containerPort": p.container_port.saturating_add(i),
                "protocol": match p.proto { Proto::Tcp => "tcp", Proto::Udp => "udp" },
            });
            if let Some(ip) = p.host_ip {
                m["hostIP"] = serde_json::json!(ip.to_string());
            }
            v.push(m);
        }
    }
    serde_json::json!({ "portMappings": v })
}

impl CniNets {
    pub fn new(state_dir: &Path, conf_dir: PathBuf, plugin_dirs: Vec<PathBuf>) -> CniNets {
        CniNets {
            paths: CniPaths::new(conf_dir, plugin_dirs, state_dir.join("cni")),
            state_dir: state_dir.to_path_buf(),
            attached: HashMap::new(),
            pids: HashMap::new(),
        }
    }

    /// `kennel cni OP` for `network` and `container_id`, run to its end (see the module
    /// doc for why waiting here is safe); its stdout, or its stderr as the error.
    fn run(
        &self,
        op: &str,
        network: &str,
        container_id: &str,
        netns: Option<&Path>,
        capability_args: Option<&serde_json::Value>,
        args: &[(String, String)],
    ) -> Result<String, CniNetError> {
        let exe = "/proc/self/exe";
        let mut cmd = Command::new(exe);
        cmd.arg("cni")
            .arg(op)
            .arg("--network")
            .arg(network)
            .arg("--conf-dir")
            .arg(&self.paths.conf_dir)
            .arg("--cache-dir")
            .arg(&self.paths.cache_dir)
            .arg("--container-id")
            .arg(container_id)
            .arg("--ifname")
            .arg(IFNAME)
            .arg("--timeout")
            .arg(format!("{}s", PLUGIN_TIMEOUT.as_secs()));
        for d in &self.paths.plugin_dirs {
            cmd.arg("--plugin-dir").arg(d);
        }
        if let Some(n) = netns {
            cmd.arg("--netns").arg(n);
        }
        for (k, v) in args {
            cmd.arg("--arg").arg(format!("{k}={v}"));
        }
        if let Some(c) = capability_args {
            cmd.arg("--capability-args").arg(c.to_string());
        }
        let out = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .map_err(|source| CniNetError::Spawn {
                network: network.to_string(),
                exe: exe.to_string(),
                source,
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let err = err.trim();
            let err = err
                .strip_prefix(&format!("kennel: cni {op}: "))
                .unwrap_or(err);
            Err(CniNetError::Add {
                network: network.to_string(),
                msg: if err.is_empty() {
                    format!("kennel cni {op} failed ({})", out.status)
                } else {
                    err.to_string()
                },
            })
        }
    }

    /// Before `unit` (a container on `cni:NETWORK`) starts: its namespace and the ADD.
    /// A failed ADD is undone (DEL) and its namespace removed.
    pub fn attach(&mut self, unit: &Unit, network: &str) -> Result<&CniAttached, CniNetError> {
        let name = unit.name.clone();
        self.detach(&name);
        let ports = unit
            .container
            .as_ref()
            .map(|c| c.ports.clone())
            .unwrap_or_default();
        let args = unit
            .container
            .as_ref()
            .map(|c| cni_args(&c.cni_args))
            .unwrap_or_default();
        let id = container_id(&name);
        let ns = netns::dir(&self.state_dir).join(&name);
        let started = std::time::Instant::now();
        crate::net::bridge::create_netns(ns.clone()).map_err(|source| CniNetError::Netns {
            network: network.to_string(),
            source,
        })?;
        let caps = port_mappings(&ports);
        let out = match self.run("add", network, &id, Some(&ns), Some(&caps), &args) {
            Ok(out) => out,
            Err(e) => {
                // `kennel cni add` undoes a failed chain itself; a DEL again is harmless
                // (DEL is idempotent) and covers a child that died half-way.
                if let Err(d) = self.run("del", network, &id, Some(&ns), None, &args) {
                    debug!(unit = %name, "DEL after the failed ADD: {d}");
                }
                remove_netns(&ns);
                return Err(e);
            }
        };
        let result = match serde_json::from_str::<serde_json::Value>(&out)
            .map_err(|e| e.to_string())
            .and_then(|v| CniResult::from_raw(&v))
        {
            Ok(r) => r,
            Err(e) => {
                let _ = self.run("del", network, &id, Some(&ns), None, &args);
                remove_netns(&ns);
                return Err(CniNetError::Add {
                    network: network.to_string(),
                    msg: format!("the ADD's result: {e}"),
                });
            }
        };
        let addrs: Vec<IpAddr> = result.addresses(IFNAME).iter().map(|(a, _)| *a).collect();
        debug!(unit = %name, "network cni:{network}: {addrs:?} in {:?}", started.elapsed());
        self.attached.insert(
            name.clone(),
            CniAttached {
                network: network.to_string(),
                container_id: id,
                netns: ns,
                addrs,
                ports,
                args,
                result,
            },
        );
        self.attached.get(&name).ok_or_else(|| CniNetError::Add {
            network: network.to_string(),
            msg: "attachment lost".into(),
        })
    }

    /// `unit`'s run is `pid`: its exit detaches the unit.
    pub fn launched(&mut self, unit: &str, pid: Pid) {
        if self.attached.contains_key(unit) {
            self.pids.insert(pid, unit.to_string());
        }
    }

    /// Process `pid` ended: if it was an attached unit's run, the unit is detached.
    pub fn exited(&mut self, pid: Pid) {
        if let Some(unit) = self.pids.remove(&pid) {
            self.detach(&unit);
        }
    }

    /// DEL of `unit`'s attachment, if any, and its namespace's removal.
    pub fn detach(&mut self, unit: &str) {
        self.pids.retain(|_, u| u != unit);
        let Some(a) = self.attached.remove(unit) else {
            return;
        };
        if let Err(e) = self.run(
            "del",
            &a.network,
            &a.container_id,
            Some(&a.netns),
            None,
            &a.args,
        ) {
            warn!(unit, "{e}");
        }
        remove_netns(&a.netns);
    }

    /// CHECK of `unit`'s attachment: `None` when it has none.
    pub fn check(&self, unit: &str) -> Option<Result<(), String>> {
        let a = self.attached.get(unit)?;
        Some(
            self.run(
                "check",
                &a.network,
                &a.container_id,
                Some(&a.netns),
                Some(&port_mappings(&a.ports)),
                &a.args,
            )
            .map(|_| ())
            .map_err(|e| e.to_string()),
        )
    }

    /// At the daemon's start: DEL of each cached attachment of a kennel unit
    /// (`kennel-…`) that is not attached now, and its namespace's removal.
    pub fn remove_leftovers(&mut self) {
        let running: Vec<String> = self
            .attached
            .values()
            .map(|a| a.container_id.clone())
            .collect();
        for e in cni::cached(&self.paths) {
            if !e.container_id.starts_with("kennel-") || running.contains(&e.container_id) {
                continue;
            }
            // The namespace goes first: after a crash its file is no nsfs mount anymore
            // (kennel's mount namespace ended, or its containers did), and plugins pass
            // over a namespace that does not exist (the spec's DEL), not over a plain file.
            if e.netns.starts_with(netns::dir(&self.state_dir)) {
                remove_netns(&e.netns);
            }
            let netns = (!e.netns.as_os_str().is_empty()).then_some(e.netns.as_path());
            match self.run("del", &e.network, &e.container_id, netns, None, &[]) {
                Ok(_) => info!(
                    "removed CNI leftover: {} on network {}",
                    e.container_id, e.network
                ),
                Err(err) => warn!("CNI leftover {}: {err}", e.container_id),
            }
        }
    }

    /// What `unit` is attached with now.
    pub fn of(&self, unit: &str) -> Option<&CniAttached> {
        self.attached.get(unit)
    }
}

fn remove_netns(path: &Path) {
    let p = path.to_path_buf();
    match netns::on_thread(move || netns::remove(&p)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!("{e}"),
        Err(e) => warn!("{e}"),
    }
}

/// The init layer's /etc/hosts (the result's addresses as the hostname) and, when the
/// result names name servers and the unit sets no `dns`, /etc/resolv.conf.
pub fn network_files(files: &mut [(PathBuf, String)], c: &Container, a: &CniAttached) {
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for addr in &a.addrs {
        hosts.push_str(&format!("{addr}\t{}\n", c.hostname));
    }
    for (host, addr) in &c.hosts {
        hosts.push_str(&format!("{addr}\t{host}\n"));
    }
    let dns = &a.result.dns;
    let resolv = match &c.dns {
        Some(servers) => Some(
            servers
                .iter()
                .map(|s| format!("nameserver {s}\n"))
                .collect::<String>(),
        ),
        None if !dns.nameservers.is_empty() => {
            let mut r = String::new();
            if let Some(d) = &dns.domain {
                r.push_str(&format!("domain {d}\n"));
            }
            if !dns.search.is_empty() {
                r.push_str(&format!("search {}\n", dns.search.join(" ")));
            }
            for s in &dns.nameservers {
                r.push_str(&format!("nameserver {s}\n"));
            }
            if !dns.options.is_empty() {
                r.push_str(&format!("options {}\n", dns.options.join(" ")));
            }
            Some(r)
        }
        None => None,
    };
    for (path, text) in files.iter_mut() {
        if path == Path::new("/etc/hosts") {
            *text = hosts.clone();
        } else if path == Path::new("/etc/resolv.conf") {
            if let Some(r) = &resolv {
                *text = r.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_are_valid_cni_ids() {
        assert_eq!(container_id("web"), "kennel-web");
        assert_eq!(container_id("getty@tty1"), "kennel-getty_tty1");
    }

    #[test]
    fn ports_become_port_mappings() {
        let p = PortMap::parse("127.0.0.1:9000-9001:80-81/udp").unwrap();
        let v = port_mappings(&[p]);
        assert_eq!(
            v,
            serde_json::json!({"portMappings": [
                {"hostPort": 9000, "containerPort": 80, "protocol": "udp", "hostIP": "127.0.0.1"},
                {"hostPort": 9001, "containerPort": 81, "protocol": "udp", "hostIP": "127.0.0.1"},
            ]})
        );
    }
}
