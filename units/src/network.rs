//! Networks: `NETWORKS_DIR/NAME.toml` files (the bridge networks containers join with
//! `network = "bridge:NAME"`), the built-in default network `kennel`, and the syntax of
//! a unit's `ports` entries.
//!
//! ```toml
//! # /etc/kennel/networks/backend.toml
//! subnet = "10.90.0.0/24"     # required (the built-in "kennel": 10.89.0.0/16)
//! subnet6 = "fd89:90::/64"    # optional
//! gateway = "10.90.0.1"       # default: the subnet's first address
//! gateway6 = "fd89:90::1"     # default: subnet6's first address
//! bridge = "kbr-backend"      # default: derived from the name, 15 characters at most
//! internal = false            # true: no route out of the host
//! mtu = 1500                  # default: the kernel's (1500)
//! dns = ["192.0.2.53"]        # upstreams of kennel's DNS server for this network;
//!                             # default: the host's /etc/resolv.conf name servers
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml_edit::ImDocument;

use crate::diag::{sort_diagnostics, Diagnostic};
use crate::name::check_unit_name;
use crate::parse::value::{describe_value, Ctx};

/// The built-in default network (`network = "bridge"`).
pub const DEFAULT_NETWORK: &str = "kennel";
/// Its subnet, unless `NETWORKS_DIR/kennel.toml` says otherwise (podman's is 10.88.0.0/16).
pub const DEFAULT_SUBNET: &str = "10.89.0.0/16";
/// The longest Linux interface name.
pub const IFNAMSIZ_MAX: usize = 15;

const NETWORK_KEYS: &[&str] = &[
    "subnet", "subnet6", "gateway", "gateway6", "bridge", "internal", "mtu", "dns",
];

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet4 {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet4 {
    /// `"10.89.0.0/16"`; host bits must be zero, prefix 8..=30.
    pub fn parse(s: &str) -> Result<Subnet4, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| {
            format!("invalid subnet {s:?}: expected ADDRESS/PREFIX such as \"10.89.0.0/24\"")
        })?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("invalid subnet {s:?}: {a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("invalid subnet {s:?}: the prefix must be 8..=30"))?;
        let net = Subnet4 { addr, prefix };
        if net.network() != addr {
            return Err(format!(
                "invalid subnet {s:?}: host bits are set; did you mean \"{}/{prefix}\"?",
                net.network()
            ));
        }
        Ok(net)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// Whether `a` is in the subnet.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr)
    }

    /// Whether `a` can be a host's address: in the subnet, neither the network nor the
    /// broadcast address.
    pub fn is_host(&self, a: Ipv4Addr) -> bool {
        let off = u32::from(a).wrapping_sub(u32::from(self.addr));
        self.contains(a) && off != 0 && off != self.size() - 1
    }

    /// How many addresses it has.
    pub fn size(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix))
    }

    /// The address at offset `off` from the network address.
    pub fn nth(&self, off: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + off)
    }

    /// The offset of `a` from the network address.
    pub fn offset(&self, a: Ipv4Addr) -> u32 {
        u32::from(a).wrapping_sub(u32::from(self.addr))
    }
}

impl std::fmt::Display for Subnet4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An IPv6 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl Subnet6 {
    /// `"fd89::/64"`; host bits zero, prefix 8..=112.
    pub fn parse(s: &str) -> Result<Subnet6, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| {
            format!("invalid subnet {s:?}: expected ADDRESS/PREFIX such as \"fd89::/64\"")
        })?;
        let addr: Ipv6Addr = a
            .parse()
            .map_err(|_| format!("invalid subnet {s:?}: {a:?} is not an IPv6 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| (8..=112).contains(p))
            .ok_or_else(|| format!("invalid subnet {s:?}: the prefix must be 8..=112"))?;
        let net = Subnet6 { addr, prefix };
        if u128::from(addr) & !net.mask() != 0 {
            return Err(format!("invalid subnet {s:?}: host bits are set"));
        }
        Ok(net)
    }

    fn mask(&self) -> u128 {
        u128::MAX << (128 - u32::from(self.prefix))
    }

    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & self.mask() == u128::from(self.addr)
    }

    /// The address at offset `off`.
    pub fn nth(&self, off: u32) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) + u128::from(off))
    }

    pub fn offset(&self, a: Ipv6Addr) -> u128 {
        u128::from(a).wrapping_sub(u128::from(self.addr))
    }
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One bridge network, every default applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDef {
    /// The file stem (`kennel` for the built-in one).
    pub name: String,
    /// The file it was read from; `None` for the built-in default.
    pub path: Option<PathBuf>,
    pub subnet: Subnet4,
    pub subnet6: Option<Subnet6>,
    pub gateway: Ipv4Addr,
    pub gateway6: Option<Ipv6Addr>,
    pub bridge: String,
    pub internal: bool,
    pub mtu: Option<u32>,
    /// Upstream name servers of kennel's DNS server on this network; `None`: the host's.
    pub dns: Option<Vec<IpAddr>>,
}

impl NetworkDef {
    /// The built-in `kennel` network: 10.89.0.0/16, gateway 10.89.0.1, bridge `kennel0`.
    pub fn builtin() -> NetworkDef {
        let subnet = Subnet4 {
            addr: Ipv4Addr::new(10, 89, 0, 0),
            prefix: 16,
        };
        NetworkDef {
            name: DEFAULT_NETWORK.to_string(),
            path: None,
            subnet,
            subnet6: None,
            gateway: subnet.nth(1),
            gateway6: None,
            bridge: "kennel0".to_string(),
            internal: false,
            mtu: None,
            dns: None,
        }
    }

    /// The subnets as (network address, prefix), IPv4 first: what the firewall's
    /// `NetworkRules.subnets` and the DNS server's `serve_network` take.
    pub fn subnets(&self) -> Vec<(IpAddr, u8)> {
        let mut v = vec![(IpAddr::V4(self.subnet.addr), self.subnet.prefix)];
        v.extend(self.subnet6.map(|s| (IpAddr::V6(s.addr), s.prefix)));
        v
    }

    /// Whether `a` is an address of this network a container may have: a host address of
    /// a subnet, not a gateway.
    pub fn assignable(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => self.subnet.is_host(a) && a != self.gateway,
            IpAddr::V6(a) => self
                .subnet6
                .is_some_and(|s| s.contains(a) && s.offset(a) != 0 && Some(a) != self.gateway6),
        }
    }
}

/// The default bridge name of network `name`: `kbr-NAME` when it fits in 15 characters,
/// else `kbr-` + NAME's first 6 characters + 5 hex digits of a hash of NAME.
pub fn default_bridge(name: &str) -> String {
    let full = format!("kbr-{name}");
    if full.len() <= IFNAMSIZ_MAX {
        return full;
    }
    // FNV-1a: stable across builds and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let head: String = name.chars().take(6).collect();
    format!("kbr-{head}{:05x}", h & 0xf_ffff)
}

/// Every network: the built-in `kennel` (unless a file replaces it) and those of the
/// networks directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Networks {
    map: BTreeMap<String, NetworkDef>,
}

impl Default for Networks {
    fn default() -> Self {
        Networks::builtin()
    }
}

impl Networks {
    /// Only the built-in `kennel` network.
    pub fn builtin() -> Networks {
        let d = NetworkDef::builtin();
        Networks {
            map: BTreeMap::from([(d.name.clone(), d)]),
        }
    }

    pub fn get(&self, name: &str) -> Option<&NetworkDef> {
        self.map.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &NetworkDef> {
        self.map.values()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Reads every `*.toml` of `dir` (a missing directory: the built-in network only).
    /// Returns every problem of every file, sorted.
    pub fn load(dir: &Path) -> Result<Networks, Vec<Diagnostic>> {
        let (nets, diags) = Networks::load_partial(dir);
        if diags.is_empty() {
            Ok(nets)
        } else {
            Err(diags)
        }
    }

    /// What [`Networks::load`] reads, with the valid networks even when other files have
    /// problems (for `kennel check`, which then still checks units against them).
    pub fn load_partial(dir: &Path) -> (Networks, Vec<Diagnostic>) {
        let mut nets = Networks::builtin();
        let mut diags = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (nets, diags),
            Err(e) => {
                let d =
                    Diagnostic::at_start(dir, format!("cannot read the networks directory: {e}"));
                return (nets, vec![d]);
            }
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && !p.is_dir())
            .collect();
        files.sort();
        let mut bridges: BTreeMap<String, String> = BTreeMap::new();
        for path in files {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            if let Err(e) = check_unit_name(&name) {
                diags.push(Diagnostic::at_start(
                    &path,
                    e.to_string().replace("unit name", "network name"),
                ));
                continue;
            }
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    diags.push(Diagnostic::at_start(
                        &path,
                        format!("cannot read the file: {e}"),
                    ));
                    continue;
                }
            };
            match parse_network(&name, &path, &text) {
                Ok(def) => {
                    if let Some(other) = bridges.insert(def.bridge.clone(), name.clone()) {
                        diags.push(Diagnostic::at_start(
                            &path,
                            format!(
                                "bridge {:?} is also network {other:?}'s; set a bridge of its own",
                                def.bridge
                            ),
                        ));
                    }
                    nets.map.insert(name, def);
                }
                Err(mut d) => diags.append(&mut d),
            }
        }
        if let Some(k) = nets.map.get(DEFAULT_NETWORK) {
            if k.path.is_none() && bridges.contains_key(&k.bridge) {
                diags.push(Diagnostic::at_start(
                    dir,
                    format!("bridge {:?} is the built-in network kennel's", k.bridge),
                ));
            }
        }
        sort_diagnostics(&mut diags);
        (nets, diags)
    }
}

/// One network file's text -> its definition, or every problem in it.
pub fn parse_network(name: &str, path: &Path, text: &str) -> Result<NetworkDef, Vec<Diagnostic>> {
    let mut cx = Ctx::new(path, text);
    let doc = match ImDocument::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            cx.error(e.span(), format!("invalid TOML: {}", e.message().trim()));
            return Err(cx.diags);
        }
    };
    let root = doc.as_table();
    cx.check_keys(root, None, NETWORK_KEYS);
    let mut def = NetworkDef::builtin();
    def.name = name.to_string();
    def.path = Some(path.to_path_buf());
    if name != DEFAULT_NETWORK {
        def.bridge = default_bridge(name);
    }
    match root.get("subnet") {
        Some(item) => {
            if let Some(s) = cx.string("subnet", item, "a subnet such as \"10.90.0.0/24\"") {
                match Subnet4::parse(&s) {
                    Ok(n) => {
                        def.subnet = n;
                        def.gateway = n.nth(1);
                    }
                    Err(e) => cx.error(item.span(), format!("subnet: {e}")),
                }
            }
        }
        None if name == DEFAULT_NETWORK => {}
        None => cx.error(None, "subnet is required, e.g. subnet = \"10.90.0.0/24\""),
    }
    if let Some(item) = root.get("subnet6") {
        if let Some(s) = cx.string("subnet6", item, "a subnet such as \"fd89:90::/64\"") {
            match Subnet6::parse(&s) {
                Ok(n) => {
                    def.subnet6 = Some(n);
                    def.gateway6 = Some(n.nth(1));
                }
                Err(e) => cx.error(item.span(), format!("subnet6: {e}")),
            }
        }
    }
    if let Some(item) = root.get("gateway") {
        if let Some(s) = cx.string("gateway", item, "an IPv4 address") {
            match s.parse::<Ipv4Addr>() {
                Ok(a) if def.subnet.is_host(a) => def.gateway = a,
                Ok(a) => cx.error(
                    item.span(),
                    format!(
                        "gateway: {a} is not a host address of the subnet {}",
                        def.subnet
                    ),
                ),
                Err(_) => cx.error(item.span(), format!("gateway: invalid IPv4 address {s:?}")),
            }
        }
    }
    if let Some(item) = root.get("gateway6") {
        if let Some(s) = cx.string("gateway6", item, "an IPv6 address") {
            match (s.parse::<Ipv6Addr>(), def.subnet6) {
                (Ok(a), Some(n)) if n.contains(a) && n.offset(a) != 0 => def.gateway6 = Some(a),
                (Ok(a), Some(n)) => cx.error(
                    item.span(),
                    format!("gateway6: {a} is not a host address of subnet6 {n}"),
                ),
                (Ok(_), None) => cx.error(item.span(), "gateway6: needs subnet6"),
                (Err(_), _) => {
                    cx.error(item.span(), format!("gateway6: invalid IPv6 address {s:?}"))
                }
            }
        }
    }
    if let Some(item) = root.get("bridge") {
        if let Some(s) = cx.text("bridge", item, "an interface name") {
            let ok = s.len() <= IFNAMSIZ_MAX
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                && !s.starts_with("kv-");
            if ok {
                def.bridge = s;
            } else {
                cx.error(
                    item.span(),
                    format!("bridge: invalid interface name {s:?}: use at most 15 letters, digits, -, _ or ., not starting with \"kv-\" (kennel's veths)"),
                );
            }
        }
    }
    if let Some(item) = root.get("internal") {
        def.internal = cx.boolean("internal", item).unwrap_or(false);
    }
    if let Some(item) = root.get("mtu") {
        def.mtu = cx.int("mtu", item, 576, 65535).map(|n| n as u32);
    }
    if let Some(item) = root.get("dns") {
        if let Some(values) = cx.array(
            "dns",
            item,
            "an array of IP addresses such as [\"192.0.2.53\"]",
        ) {
            let mut servers = Vec::new();
            for (i, v) in values.iter().enumerate() {
                match v.as_str().map(|s| (s, s.parse::<IpAddr>())) {
                    Some((_, Ok(a))) => servers.push(a),
                    Some((s, Err(_))) => {
                        cx.error(v.span(), format!("dns[{i}]: invalid IP address {s:?}"))
                    }
                    None => cx.error(
                        v.span(),
                        format!(
                            "dns[{i}]: expected an IP address string, found {}",
                            describe_value(v)
                        ),
                    ),
                }
            }
            def.dns = Some(servers);
        }
    }
    if cx.diags.is_empty() {
        Ok(def)
    } else {
        sort_diagnostics(&mut cx.diags);
        Err(cx.diags)
    }
}

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One `ports` entry: host ports `host_port .. host_port + count` (on `host_ip`, or every
/// host address) to container ports `container_port ..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMap {
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    /// At least 1.
    pub count: u16,
}

impl PortMap {
    /// `"[HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|/udp]"`; an IPv6 host address
    /// in brackets (`"[::1]:8080:80"`).
    pub fn parse(s: &str) -> Result<PortMap, String> {
        let bad = |why: &str| format!("invalid port mapping {s:?}: {why}");
        let (spec, proto) = match s.rsplit_once('/') {
            Some((spec, "tcp")) => (spec, Proto::Tcp),
            Some((spec, "udp")) => (spec, Proto::Udp),
            Some((_, p)) => return Err(bad(&format!("unknown protocol {p:?}: use /tcp or /udp"))),
            None => (s, Proto::Tcp),
        };
        let (host_ip, rest) = if let Some(r) = spec.strip_prefix('[') {
            let (ip, rest) = r
                .split_once("]:")
                .ok_or_else(|| bad("expected [IPv6]:HOST:CONTAINER"))?;
            let ip: Ipv6Addr = ip
                .parse()
                .map_err(|_| bad(&format!("{ip:?} is not an IPv6 address")))?;
            (Some(IpAddr::V6(ip)), rest)
        } else {
            let parts: Vec<&str> = spec.split(':').collect();
            match parts.len() {
                2 => (None, spec),
                3 => {
                    let ip: Ipv4Addr = parts[0].parse().map_err(|_| {
                        bad(&format!(
                            "{:?} is not an IPv4 address (an IPv6 one goes in brackets)",
                            parts[0]
                        ))
                    })?;
                    (Some(IpAddr::V4(ip)), &spec[parts[0].len() + 1..])
                }
                _ => return Err(bad(
                    "expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|/udp], such as \"8080:80\"",
                )),
            }
        };
        let (h, c) = rest
            .split_once(':')
            .ok_or_else(|| bad("expected HOST_PORT:CONTAINER_PORT"))?;
        let range = |r: &str| -> Result<(u16, u16), String> {
            let port = |p: &str| -> Result<u16, String> {
                p.parse::<u16>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(&format!("{p:?} is not a port (1..=65535)")))
            };
            match r.split_once('-') {
                None => port(r).map(|p| (p, p)),
                Some((a, b)) => {
                    let (a, b) = (port(a)?, port(b)?);
                    if a > b {
                        return Err(bad(&format!("the range {a}-{b} is reversed")));
                    }
                    Ok((a, b))
                }
            }
        };
        let (h0, h1) = range(h)?;
        let (c0, c1) = range(c)?;
        if h1 - h0 != c1 - c0 {
            return Err(bad(&format!(
                "the host range has {} ports and the container range {}; make them the same length",
                h1 - h0 + 1,
                c1 - c0 + 1
            )));
        }
        Ok(PortMap {
            proto,
            host_ip,
            host_port: h0,
            container_port: c0,
            count: h1 - h0 + 1,
        })
    }

    /// Whether this and `other` publish a host port twice: the same protocol, host ranges
    /// that meet, and the same host address (or either on every address).
    pub fn clashes(&self, other: &PortMap) -> bool {
        let ip = match (self.host_ip, other.host_ip) {
            (Some(a), Some(b)) => a == b || a.is_unspecified() || b.is_unspecified(),
            _ => true,
        };
        let (a0, a1) = (
            u32::from(self.host_port),
            u32::from(self.host_port) + u32::from(self.count),
        );
        let (b0, b1) = (
            u32::from(other.host_port),
            u32::from(other.host_port) + u32::from(other.count),
        );
        self.proto == other.proto && ip && a0 < b1 && b0 < a1
    }
}

impl std::fmt::Display for PortMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        let end = |p: u16| p + (self.count - 1);
        if self.count == 1 {
            write!(f, "{}:{}", self.host_port, self.container_port)?;
        } else {
            write!(
                f,
                "{}-{}:{}-{}",
                self.host_port,
                end(self.host_port),
                self.container_port,
                end(self.container_port)
            )?;
        }
        write!(f, "/{}", self.proto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_maps() {
        let p = PortMap::parse("8080:80").unwrap();
        assert_eq!(
            (p.proto, p.host_ip, p.host_port, p.container_port, p.count),
            (Proto::Tcp, None, 8080, 80, 1)
        );
        let p = PortMap::parse("127.0.0.1:5353:53/udp").unwrap();
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p.proto, Proto::Udp);
        let p = PortMap::parse("9000-9003:9100-9103").unwrap();
        assert_eq!((p.host_port, p.container_port, p.count), (9000, 9100, 4));
        assert_eq!(p.to_string(), "9000-9003:9100-9103/tcp");
        let p = PortMap::parse("[::1]:8080:80/tcp").unwrap();
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        assert_eq!(p.to_string(), "[::1]:8080:80/tcp");
        for bad in [
            "80",
            "0:80",
            "9003-9000:1-4",
            "9000-9003:1-2",
            "x:80",
            "1:2:3:4",
            "8080:80/sctp",
            "::1:8080:80",
            "65536:1",
        ] {
            assert!(PortMap::parse(bad).is_err(), "{bad}");
        }
        assert!(PortMap::parse("9000-9003:1-2")
            .unwrap_err()
            .contains("same length"));
    }

    #[test]
    fn clashes() {
        let p = |s| PortMap::parse(s).unwrap();
        assert!(p("8080:80").clashes(&p("8080:81")));
        assert!(p("9000-9003:1-4").clashes(&p("9003:80")));
        assert!(!p("9000-9003:1-4").clashes(&p("9004:80")));
        assert!(!p("8080:80").clashes(&p("8080:80/udp")));
        assert!(!p("127.0.0.1:8080:80").clashes(&p("127.0.0.2:8080:80")));
        assert!(p("127.0.0.1:8080:80").clashes(&p("8080:80")));
    }

    #[test]
    fn subnets_and_bridges() {
        let n = Subnet4::parse("10.90.0.0/24").unwrap();
        assert!(n.is_host("10.90.0.254".parse().unwrap()));
        assert!(!n.is_host("10.90.0.255".parse().unwrap()));
        assert!(!n.is_host("10.90.0.0".parse().unwrap()));
        assert!(Subnet4::parse("10.90.0.1/24")
            .unwrap_err()
            .contains("10.90.0.0/24"));
        assert_eq!(default_bridge("web"), "kbr-web");
        let long = default_bridge("a-very-long-network");
        assert!(long.len() <= 15 && long.starts_with("kbr-a-very"), "{long}");
        assert_ne!(long, default_bridge("a-very-long-network2"));
    }

    #[test]
    fn network_files() {
        let p = Path::new("n.toml");
        let d = parse_network(
            "back",
            p,
            "subnet = \"10.90.0.0/24\"\nsubnet6 = \"fd89:90::/64\"\n",
        )
        .unwrap();
        assert_eq!(d.gateway, "10.90.0.1".parse::<Ipv4Addr>().unwrap());
        assert_eq!(d.gateway6, Some("fd89:90::1".parse().unwrap()));
        assert_eq!(d.bridge, "kbr-back");
        assert_eq!(
            d.subnets(),
            [
                ("10.90.0.0".parse().unwrap(), 24),
                ("fd89:90::".parse().unwrap(), 64)
            ]
        );
        let e = parse_network(
            "back",
            p,
            "subnet = \"10.90.0.0/24\"\ngateway = \"10.91.0.1\"\nmtu = 10\nbogus = 1\n",
        )
        .unwrap_err();
        let text: Vec<String> = e.iter().map(|d| d.to_string()).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with("n.toml:2:11: gateway: 10.91.0.1 is not"),
            "{text:?}"
        );
        assert!(text[1].starts_with("n.toml:3:7: mtu"), "{text:?}");
        assert!(
            text[2].starts_with("n.toml:4:1: unknown key \"bogus\""),
            "{text:?}"
        );
        assert!(parse_network("back", p, "").unwrap_err()[0]
            .message
            .contains("subnet is required"));
        // The default network can be redefined without a subnet (its own default).
        assert_eq!(
            parse_network("kennel", p, "mtu = 1400").unwrap().subnet,
            NetworkDef::builtin().subnet
        );
    }
}
