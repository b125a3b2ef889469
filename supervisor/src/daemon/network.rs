//! The daemon's side of container networks: before a container on a bridge network
//! starts, its lease, namespace and veth ([`Networking::attach`]); at its end, or when its
//! start fails, the veth and namespace go ([`Networking::detach`]; the lease stays, so the
//! next start has the same address); a lease goes when its unit leaves the unit set
//! ([`Networking::sweep`]); at the daemon's start, what a crash left is removed
//! ([`Networking::remove_leftovers`]). Owned by the owner task, like all state.
//!
//! With the bridge: the firewall (`net::firewall`: `ensure_network` + `publish` in
//! [`Networking::attach`], `unpublish` in [`Networking::detach`], `remove_network` where
//! the bridge goes, its leftovers in [`Networking::remove_leftovers`]), the published host
//! ports held while a unit runs (`net::ports`), the DNS server (`net::dns`:
//! `serve_network_now` on the gateway(s) of a network when its first member attaches, `set`
//! for the unit and its aliases in `attach`, `remove` in `detach`, `stop_network` where the
//! bridge goes) and CNI (`cni:NAME` in `attach`, which says "not supported yet" until then).
//! The firewall and the held ports act on the namespace of the thread that calls these: the
//! daemon's (its owner task's) own.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use kennel_core::Pid;
use kennel_units::{Network, NetworkDef, Networks, PortMap, Unit, UnitSet};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::net::bridge::{self, AttachSpec, BridgeSpec, LinkError};
use crate::net::dns::{self, Dns, DnsError};
use crate::net::firewall::{self, Firewall, FirewallError, NetworkRules, PortRule};
use crate::net::ipam::{IpamError, Lease, Leases};
use crate::net::netns;
use crate::net::ports::{self, HostPort, PortError};

/// Why a unit's network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network bridge:{0}: no such network (reload after adding its file to the networks directory)")]
    UnknownNetwork(String),
    #[error(transparent)]
    Cni(#[from] super::cni::CniNetError),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error("network {network}: {source}")]
    Link { network: String, source: LinkError },
    #[error("network {network}: firewall: {source}")]
    Firewall {
        network: String,
        source: FirewallError,
    },
    #[error("unit {unit}: published port {port} is taken on this host ({source}): stop what uses it, or publish another host port in the unit's container.ports")]
    PortTaken {
        unit: String,
        port: String,
        source: PortError,
    },
    #[error("unit {unit}: cannot hold published port {port}: {source}")]
    Port {
        unit: String,
        port: String,
        source: PortError,
    },
    #[error("unit {unit}: port {port}: {why}")]
    PortFamily {
        unit: String,
        port: String,
        why: &'static str,
    },
    #[error("network {network}: {source}")]
    Dns { network: String, source: DnsError },
}

/// A container's place on a bridge network while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached {
    pub network: String,
    pub lease: Lease,
    /// The network's gateway: the containers' name server (kennel's DNS listens there).
    pub gateway: IpAddr,
    /// The pinned namespace the container joins: `STATE/netns/SLOT`, SLOT the unit's name
    /// or the unit's name and `+1`, one run the one, the next run the other
    /// ([`Networking::slot`]).
    pub netns: PathBuf,
    /// The host end of its veth.
    pub veth: String,
    pub ports: Vec<PortMap>,
    /// Its names on the network besides the unit name (`container.aliases`).
    pub aliases: Vec<String>,
}

impl Attached {
    /// Its slot: the namespace's file name ([`Networking::slot`]).
    fn slot(&self) -> String {
        self.netns
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string()
    }
}

/// One network as `kennel network ls|inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub def: NetworkDef,
    /// Units with a lease: unit -> (addresses, attached now).
    pub leases: BTreeMap<String, (Vec<IpAddr>, bool)>,
}

pub struct Networking {
    state_dir: PathBuf,
    networks: Networks,
    /// Per network, its leases, read on first use.
    leases: BTreeMap<String, Leases>,
    /// Units attached now.
    attached: HashMap<String, Attached>,
    /// The pid of each attached unit's run: its exit detaches the unit.
    pids: HashMap<Pid, String>,
    /// Networks whose file is gone but whose members still run: network -> its bridge,
    /// removed once the last member is detached.
    doomed: BTreeMap<String, String>,
    /// Units on CNI networks (`cni:NAME`).
    pub cni: super::cni::CniNets,
    /// kennel's nftables rules, opened at first use (in the daemon's namespace).
    firewall: Option<Firewall>,
    /// The sockets holding each attached unit's published host ports.
    held: HashMap<String, Vec<OwnedFd>>,
    /// The name servers, made at first use (on the daemon's runtime).
    dns: Option<Dns>,
    /// Veth deletions and namespace removals of ended runs, each on a thread of its own
    /// so that the owner task never waits for the kernel (deleting a netdevice waits for
    /// RCU grace periods: milliseconds, which a oneshot's `kennel start` would otherwise
    /// wait for before its reply): slot (the namespace's file name, see `had_first`) -> (its
    /// network, the thread). Joined before the unit attaches again in the same slot (same
    /// veth name, same namespace file: two runs later), before its network's bridge goes,
    /// and at the daemon's end.
    teardowns: HashMap<String, (String, JoinHandle<Result<(), LinkError>>)>,
    /// Networks whose bridge and firewall base (table, chains, sysctls) were made or
    /// checked by an attach since the last reload: network -> its bridge's index. Not
    /// checked again at each start (a bridge removed by hand is noticed when a veth cannot
    /// join it, and made again); a reload forgets them all.
    ready: HashMap<String, u32>,
    /// The thread that makes the namespaces and veths, kept between attaches.
    links: bridge::Links,
    /// Units whose last run had the first slot (`UNIT`: namespace file and veth name;
    /// the second is `UNIT+1`); the next run has the other one, so that it does not wait
    /// for the deletion of the last run's veth (tens of milliseconds in the kernel).
    had_first: BTreeSet<String>,
}

impl Networking {
    pub fn new(state_dir: &Path, networks: Networks, cni: super::cni::CniNets) -> Networking {
        Networking {
            cni,
            state_dir: state_dir.to_path_buf(),
            networks,
            leases: BTreeMap::new(),
            attached: HashMap::new(),
            pids: HashMap::new(),
            doomed: BTreeMap::new(),
            firewall: None,
            held: HashMap::new(),
            dns: None,
            teardowns: HashMap::new(),
            ready: HashMap::new(),
            links: bridge::Links::default(),
            had_first: BTreeSet::new(),
        }
    }

    fn firewall(&mut self) -> Result<&mut Firewall, FirewallError> {
        if self.firewall.is_none() {
            self.firewall = Some(Firewall::open()?);
        }
        match self.firewall.as_mut() {
            Some(f) => Ok(f),
            None => Err(FirewallError::Netlink("not open".into())),
        }
    }

    /// The name servers; the common upstreams are the host's (its /etc/resolv.conf).
    fn dns(&mut self) -> &mut Dns {
        self.dns.get_or_insert_with(|| {
            let path = Path::new("/etc/resolv.conf");
            let upstreams = dns::upstreams_from_resolv_conf(path).unwrap_or_else(|e| {
                warn!("dns: no upstream name servers: {e}");
                Vec::new()
            });
            Dns::new(upstreams)
        })
    }

    /// A reload's networks. Leases of a changed network that fall outside it go. A
    /// removed network's bridge and leases go now, or once its last running member is
    /// detached.
    pub fn set_networks(&mut self, networks: Networks) {
        self.leases.retain(|name, l| match networks.get(name) {
            Some(def) => {
                l.set_def(def.clone());
                true
            }
            None => false,
        });
        let gone: Vec<NetworkDef> = self
            .networks
            .iter()
            .filter(|d| networks.get(&d.name).is_none())
            .cloned()
            .collect();
        self.networks = networks;
        // Checked again at their next attach.
        self.ready.clear();
        for def in gone {
            self.doomed.insert(def.name.clone(), def.bridge.clone());
            self.remove_if_unused(&def.name);
        }
    }

    /// A network whose file is gone, once no member runs: its bridge and leases.
    fn remove_if_unused(&mut self, network: &str) {
        if self.attached.values().any(|a| a.network == network) {
            return;
        }
        let Some(bridge) = self.doomed.remove(network) else {
            return;
        };
        self.ready.remove(network);
        let members: Vec<String> = self
            .teardowns
            .iter()
            .filter(|(_, (n, _))| n == network)
            .map(|(u, _)| u.clone())
            .collect();
        for unit in members {
            self.finish_teardown(&unit);
        }
        if let Some(d) = self.dns.as_mut() {
            d.stop_network(network);
        }
        match self.firewall() {
            Ok(fw) => {
                if let Err(e) = fw.remove_network(network) {
                    warn!("network {network} was removed, but not its firewall rules: {e}");
                }
            }
            Err(e) => warn!("network {network} was removed, but not its firewall rules: {e}"),
        }
        if let Err(e) = bridge::delete_link(bridge.clone()) {
            warn!("network {network} was removed, but not its bridge {bridge}: {e}");
        }
        let dir = self.state_dir.join("networks").join(network);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => info!("network {network} removed: bridge {bridge}, leases"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!("remove {}: {e}", dir.display()),
        }
    }

    fn leases(&mut self, network: &str) -> Result<&mut Leases, NetError> {
        if !self.leases.contains_key(network) {
            let def = self
                .networks
                .get(network)
                .ok_or_else(|| NetError::UnknownNetwork(network.to_string()))?
                .clone();
            let l = Leases::load(&self.state_dir, def)?;
            self.leases.insert(network.to_string(), l);
        }
        self.leases
            .get_mut(network)
            .ok_or_else(|| NetError::UnknownNetwork(network.to_string()))
    }

    /// At the daemon's start (no unit runs yet): the namespaces and veths of runs a
    /// crash (`kill -9` of kennel) left.
    pub fn remove_leftovers(&mut self) {
        // CNI first: its DEL wants the namespace the bridge sweep below removes.
        self.cni.remove_leftovers();
        let keep: Vec<String> = self.attached.values().map(Attached::slot).collect();
        match bridge::remove_leftovers(&netns::dir(&self.state_dir), &keep) {
            Ok(removed) if removed.is_empty() => {}
            Ok(removed) => info!("removed network leftovers: {}", removed.join(", ")),
            Err(e) => warn!("cannot remove network leftovers: {e}"),
        }
        // Networks whose file went while kennel was stopped: their bridge (recorded in
        // their leases file) and leases.
        let dirs = std::fs::read_dir(self.state_dir.join("networks"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for name in dirs {
            if self.networks.get(&name).is_none() {
                if let Some(bridge) = Leases::recorded_bridge(&self.state_dir, &name) {
                    self.doomed.insert(name.clone(), bridge);
                    self.remove_if_unused(&name);
                }
            }
        }
        // Rules of units that do not run and of networks that no longer exist; only
        // when this state directory ever had a network (a kennel that never made one,
        // e.g. a test's in the host's namespace, leaves the table alone).
        if !self.state_dir.join("networks").exists() {
            return;
        }
        let running: BTreeSet<String> = self.attached.keys().cloned().collect();
        let exists: BTreeSet<String> = self.networks.names().map(str::to_string).collect();
        let fw = match self.firewall() {
            Ok(fw) => fw,
            Err(e) => {
                warn!("cannot look for leftover firewall rules: {e}");
                return;
            }
        };
        let mut removed = Vec::new();
        match fw.published() {
            Ok(units) => {
                for u in units.into_iter().filter(|u| !running.contains(u)) {
                    match fw.unpublish(&u) {
                        Ok(()) => removed.push(format!("ports of {u}")),
                        Err(e) => warn!("cannot remove the published ports of {u}: {e}"),
                    }
                }
            }
            Err(e) => warn!("cannot look for leftover firewall rules: {e}"),
        }
        match fw.networks() {
            Ok(nets) => {
                for n in nets.into_iter().filter(|n| !exists.contains(n)) {
                    match fw.remove_network(&n) {
                        Ok(()) => removed.push(format!("rules of network {n}")),
                        Err(e) => warn!("cannot remove the firewall rules of network {n}: {e}"),
                    }
                }
            }
            Err(e) => warn!("cannot look for leftover firewall rules: {e}"),
        }
        if !removed.is_empty() {
            info!("removed firewall leftovers: {}", removed.join(", "));
        }
    }

    /// Binds a socket on each host port `ports` publish (see net::ports).
    fn hold_ports(
        unit: &str,
        ports: &[kennel_units::PortMap],
        v6: bool,
    ) -> Result<Vec<OwnedFd>, NetError> {
        let mut held = Vec::new();
        for p in ports {
            let families: Vec<bool> = match p.host_ip {
                Some(ip) => vec![ip.is_ipv6()],
                None if v6 => vec![false, true],
                None => vec![false],
            };
            for fam6 in families {
                for i in 0..p.count {
                    let hp = HostPort {
                        udp: p.proto == kennel_units::Proto::Udp,
                        ip: p.host_ip,
                        v6: fam6,
                        port: p.host_port.saturating_add(i),
                    };
                    let fd = ports::hold(&[hp]).map_err(|source| {
                        let port = format!("{}/{}", hp.port, if hp.udp { "udp" } else { "tcp" });
                        let unit = unit.to_string();
                        if source.in_use() {
                            NetError::PortTaken { unit, port, source }
                        } else {
                            NetError::Port { unit, port, source }
                        }
                    })?;
                    held.extend(fd);
                }
            }
        }
        Ok(held)
    }

    /// The firewall's rules for `ports`: one per port map and address family of the
    /// container (IPv6 too when it has an IPv6 address and the host address allows it).
    fn port_rules(
        unit: &str,
        ports: &[kennel_units::PortMap],
        lease: &Lease,
    ) -> Result<Vec<PortRule>, NetError> {
        let mut rules = Vec::new();
        for p in ports {
            let proto = match p.proto {
                kennel_units::Proto::Tcp => firewall::Proto::Tcp,
                kennel_units::Proto::Udp => firewall::Proto::Udp,
            };
            let mut targets: Vec<IpAddr> = Vec::new();
            if p.host_ip.is_none_or(|ip| ip.is_ipv4()) {
                targets.push(IpAddr::V4(lease.v4));
            }
            if p.host_ip.is_none_or(|ip| ip.is_ipv6()) {
                match lease.v6 {
                    Some(v6) => targets.push(IpAddr::V6(v6)),
                    None if p.host_ip.is_some() => {
                        return Err(NetError::PortFamily {
                            unit: unit.to_string(),
                            port: format!("{}", p.host_port),
                            why: "published on an IPv6 host address, but the network has no subnet6: give the network a subnet6, or publish on an IPv4 address",
                        })
                    }
                    None => {}
                }
            }
            rules.extend(targets.into_iter().map(|container_ip| PortRule {
                proto,
                host_ip: p.host_ip,
                host_port: p.host_port,
                count: p.count,
                container_ip,
                container_port: p.container_port,
            }));
        }
        Ok(rules)
    }

    /// Before `unit` (a container) starts: on a bridge network, its lease, namespace and
    /// veth; returns what the container joins. `None` for other networks.
    pub fn attach(&mut self, unit: &Unit, units: &UnitSet) -> Result<Option<&Attached>, NetError> {
        let Some(c) = &unit.container else {
            return Ok(None);
        };
        let network = match &c.network {
            Network::Bridge(n) => n.clone(),
            // CNI: [`Networking::attach_cni`].
            Network::Cni(_) => return Ok(None),
            _ => return Ok(None),
        };
        let name = unit.name.clone();
        // A leftover of this unit's previous run (never expected: its exit detaches).
        self.detach(&name);
        // The other slot than the last run's; the veth and namespace of the run before,
        // which had the same names, must be gone: done long ago, usually.
        let second = self.had_first.contains(&name);
        let slot = Self::slot(&name, second);
        self.finish_teardown(&slot);
        self.reap_teardowns();
        // Other units' static addresses on this network stay out of the dynamic pool.
        let reserved: BTreeSet<Ipv4Addr> = units
            .iter()
            .filter(|u| u.name != name)
            .filter_map(|u| u.container.as_ref())
            .filter(|o| o.network == Network::Bridge(network.clone()))
            .filter_map(|o| match o.address {
                Some(IpAddr::V4(a)) => Some(a),
                _ => None,
            })
            .collect();
        let running: BTreeSet<String> = self.attached.keys().cloned().collect();
        let state_dir = self.state_dir.clone();
        let leases = self.leases(&network)?;
        let (lease, changed) =
            leases.lease(&name, c.address, &reserved, |u| running.contains(u))?;
        if changed {
            leases.save(&state_dir)?;
        }
        let def = leases.def().clone();
        // The published host ports first: a taken one fails the start before anything
        // is made.
        let held = Self::hold_ports(&name, &c.ports, def.subnet6.is_some())?;
        let port_rules = Self::port_rules(&name, &c.ports, &lease)?;
        let spec = AttachSpec {
            netns: netns::dir(&self.state_dir).join(&slot),
            veth: bridge::veth_name(&slot),
            bridge: BridgeSpec::of(&def),
            addr: (lease.v4, def.subnet.prefix),
            addr6: lease.v6.zip(def.subnet6.map(|s| s.prefix)),
            bridge_index: self.ready.get(&network).copied(),
        };
        let started = std::time::Instant::now();
        let found = self
            .links
            .attach(spec.clone())
            .map_err(|source| NetError::Link {
                network: network.clone(),
                source,
            })?;
        debug!(unit = %name, "network {network}: {} in {:?}", lease.v4, started.elapsed());
        if second {
            self.had_first.remove(&name);
        } else {
            self.had_first.insert(name.clone());
        }
        self.held.insert(name.clone(), held);
        self.attached.insert(
            name.clone(),
            Attached {
                network,
                lease,
                gateway: IpAddr::V4(def.gateway),
                netns: spec.netns,
                veth: spec.veth,
                ports: c.ports.clone(),
                aliases: c.aliases.clone(),
            },
        );
        // From here on a failure detaches again (the rules, the veth, the namespace).
        if let Err(e) = self.attach_rest(&name, &def, found.checked, &port_rules, &c.aliases) {
            self.detach(&name);
            return Err(e);
        }
        self.ready.insert(def.name.clone(), found.bridge);
        Ok(self.attached.get(&name))
    }

    /// Before `unit` (a container on `cni:NAME`) starts: its namespace and the ADD.
    /// `None` for other networks.
    pub fn attach_cni(
        &mut self,
        unit: &Unit,
    ) -> Result<Option<&super::cni::CniAttached>, NetError> {
        match unit.container.as_ref().map(|c| &c.network) {
            Some(Network::Cni(n)) => {
                let n = n.clone();
                Ok(Some(self.cni.attach(unit, &n)?))
            }
            _ => Ok(None),
        }
    }

    /// The firewall's rules and the names of a unit just attached to `def`; the network's
    /// own rules (and sysctls) too when its bridge was `checked` by this attach.
    fn attach_rest(
        &mut self,
        name: &str,
        def: &NetworkDef,
        checked: bool,
        port_rules: &[PortRule],
        aliases: &[String],
    ) -> Result<(), NetError> {
        let network = def.name.clone();
        let fw_err = |source| NetError::Firewall {
            network: network.clone(),
            source,
        };
        let fw = self.firewall().map_err(fw_err)?;
        if checked {
            fw.ensure_network(&NetworkRules {
                name: network.clone(),
                bridge: def.bridge.clone(),
                subnets: def.subnets(),
                internal: def.internal,
            })
            .map_err(fw_err)?;
        }
        fw.publish(name, &network, port_rules).map_err(fw_err)?;
        let addrs = self
            .attached
            .get(name)
            .map(|a| a.lease.addrs())
            .unwrap_or_default();
        let dns = self.dns();
        // Served from the first member's start on, until the network goes (a no-op when
        // served already); the network file's `dns` replaces the host's upstreams.
        if dns.listen_addrs(&network).is_empty() {
            dns.set_network_upstreams(
                &network,
                def.dns
                    .as_ref()
                    .map(|v| v.iter().map(|ip| SocketAddr::new(*ip, 53)).collect()),
            );
        }
        let gateways = std::iter::once(IpAddr::V4(def.gateway)).chain(
            def.gateway6
                .map(IpAddr::V6)
                .filter(|_| def.subnet6.is_some()),
        );
        for gw in gateways {
            dns.serve_network_now(&network, gw, 53, def.subnets())
                .map_err(|source| NetError::Dns {
                    network: network.clone(),
                    source,
                })?;
        }
        dns.set(&network, name, addrs.clone());
        for alias in aliases {
            dns.set(&network, alias, addrs.clone());
        }
        Ok(())
    }

    /// `unit`'s run is `pid`: its exit detaches the unit.
    pub fn launched(&mut self, unit: &str, pid: Pid) {
        self.cni.launched(unit, pid);
        if self.attached.contains_key(unit) {
            self.pids.insert(pid, unit.to_string());
        }
    }

    /// Process `pid` ended: if it was an attached unit's run, the unit is detached.
    pub fn exited(&mut self, pid: Pid) {
        self.cni.exited(pid);
        if let Some(unit) = self.pids.remove(&pid) {
            self.detach(&unit);
        }
    }

    /// Removes `unit`'s veth and namespace, if attached (its lease stays).
    pub fn detach(&mut self, unit: &str) {
        self.cni.detach(unit);
        self.pids.retain(|_, u| u != unit);
        let Some(a) = self.attached.remove(unit) else {
            return;
        };
        if let Some(d) = self.dns.as_mut() {
            d.remove(&a.network, unit);
            for alias in &a.aliases {
                d.remove(&a.network, alias);
            }
        }
        match self.firewall() {
            Ok(fw) => {
                if let Err(e) = fw.unpublish(unit) {
                    warn!(
                        unit,
                        "network {}: cannot remove its published ports: {e}", a.network
                    );
                }
            }
            Err(e) => warn!(
                unit,
                "network {}: cannot remove its published ports: {e}", a.network
            ),
        }
        // Closed: the host ports are free again.
        self.held.remove(unit);
        // The veth and the namespace go on a thread of their own (see `teardowns`).
        let slot = a.slot();
        self.finish_teardown(&slot);
        match bridge::detach_in_background(a.netns.clone(), a.veth.clone()) {
            Ok(thread) => {
                self.teardowns.insert(slot, (a.network.clone(), thread));
            }
            Err(e) => {
                // No thread: here, then.
                debug!(unit, "network {}: teardown thread: {e}", a.network);
                if let Err(e) = bridge::detach(a.netns.clone(), a.veth.clone()) {
                    warn!(
                        unit,
                        "network {}: cannot remove the veth or namespace: {e}", a.network
                    );
                }
            }
        }
        self.remove_if_unused(&a.network);
    }

    /// The name of `unit`'s namespace file, and what its veth's name is made from: the
    /// unit's name, or in the `second` slot the unit's name and `+1` (a unit's name has no
    /// `+`).
    fn slot(unit: &str, second: bool) -> String {
        if second {
            format!("{unit}+1")
        } else {
            unit.to_string()
        }
    }

    /// Waits for the teardown of the run in `slot`, if one is under way, and logs how it
    /// ended.
    fn finish_teardown(&mut self, slot: &str) {
        let Some((network, thread)) = self.teardowns.remove(slot) else {
            return;
        };
        let result = thread.join();
        Self::log_teardown(slot, &network, result);
    }

    /// Joins the teardowns that have ended (their results logged), so that the map holds
    /// only those under way.
    fn reap_teardowns(&mut self) {
        let ended: Vec<String> = self
            .teardowns
            .iter()
            .filter(|(_, (_, t))| t.is_finished())
            .map(|(u, _)| u.clone())
            .collect();
        for unit in ended {
            self.finish_teardown(&unit);
        }
    }

    fn log_teardown(unit: &str, network: &str, result: std::thread::Result<Result<(), LinkError>>) {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(
                unit,
                "network {network}: cannot remove the veth or namespace: {e}"
            ),
            Err(_) => warn!(
                unit,
                "network {network}: the thread removing the veth and namespace panicked"
            ),
        }
    }

    /// At the daemon's end: waits for every teardown under way (its veths and namespaces
    /// gone before kennel exits).
    pub fn finish_teardowns(&mut self) {
        let units: Vec<String> = self.teardowns.keys().cloned().collect();
        for unit in units {
            self.finish_teardown(&unit);
        }
    }

    /// The leases of units that are gone from the unit set (`exists` says which are
    /// not) and not attached are released.
    pub fn sweep(&mut self, exists: impl Fn(&str) -> bool) {
        let attached: BTreeSet<String> = self.attached.keys().cloned().collect();
        self.had_first.retain(|u| exists(u) || attached.contains(u));
        // Every network's leases, also those not read yet this run.
        for def in self.networks.iter().cloned().collect::<Vec<_>>() {
            if !Leases::path(&self.state_dir, &def.name).exists() {
                continue;
            }
            let state_dir = self.state_dir.clone();
            let Ok(l) = self.leases(&def.name) else {
                continue;
            };
            if l.retain(|u| exists(u) || attached.contains(u)) {
                if let Err(e) = l.save(&state_dir) {
                    warn!("{e}");
                }
            }
        }
    }

    /// What `unit` is attached with now.
    pub fn of(&self, unit: &str) -> Option<&Attached> {
        self.attached.get(unit)
    }

    /// Every network with its leases.
    pub fn infos(&mut self) -> Vec<NetworkInfo> {
        let names: Vec<String> = self.networks.names().map(str::to_string).collect();
        names.iter().filter_map(|n| self.info(n)).collect()
    }

    /// One network with its leases.
    pub fn info(&mut self, name: &str) -> Option<NetworkInfo> {
        let def = self.networks.get(name)?.clone();
        let attached: BTreeSet<String> = self.attached.keys().cloned().collect();
        let leases = match self.leases(name) {
            Ok(l) => l
                .all()
                .map(|(u, lease)| (u.to_string(), (lease.addrs(), attached.contains(u))))
                .collect(),
            Err(e) => {
                warn!("{e}");
                BTreeMap::new()
            }
        };
        Some(NetworkInfo { def, leases })
    }
}
