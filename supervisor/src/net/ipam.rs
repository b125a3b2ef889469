//! Address allocation on a bridge network: one lease per unit, kept in
//! `STATE/networks/NAME/leases.json` so that a unit keeps its address across its restarts
//! and kennel's, never two units with the same address, static addresses (`address = ..`)
//! honoured and kept out of the dynamic pool. [`Leases`] is pure; [`Leases::load`] and
//! [`Leases::save`] are its only I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use kennel_units::NetworkDef;
use serde::{Deserialize, Serialize};

/// Why no address could be given, or the leases not read or written.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("network {network}: no free address left in {subnet}")]
    Exhausted { network: String, subnet: String },
    #[error("network {network}: {addr} is not an address of the network")]
    Outside { network: String, addr: IpAddr },
    #[error("network {network}: {addr} is unit {holder}'s, which is running; stop it or pick another address")]
    Taken {
        network: String,
        addr: Ipv4Addr,
        holder: String,
    },
    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {source} (move the file away to start with no leases)", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
}

/// What the leases file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct File {
    /// unit -> its IPv4 address.
    leases: BTreeMap<String, Ipv4Addr>,
    /// The offset in the subnet the next dynamic allocation starts looking at: addresses
    /// are not reused at once after a release (a peer's ARP cache, a stale DNS answer).
    #[serde(default)]
    next: u32,
    /// The network's bridge, for removing it once the network's file is gone (maybe while
    /// kennel was stopped).
    #[serde(default)]
    bridge: Option<String>,
}

/// The addresses a unit gets on a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub v4: Ipv4Addr,
    /// With `subnet6`: the address at the same offset in it.
    pub v6: Option<Ipv6Addr>,
}

impl Lease {
    pub fn addrs(&self) -> Vec<IpAddr> {
        let mut v = vec![IpAddr::V4(self.v4)];
        v.extend(self.v6.map(IpAddr::V6));
        v
    }
}

/// The leases of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leases {
    def: NetworkDef,
    file: File,
}

impl Leases {
    /// No leases yet.
    #[cfg(test)]
    pub fn new(def: NetworkDef) -> Leases {
        let mut l = Leases {
            def: def.clone(),
            file: File::default(),
        };
        l.set_def(def);
        l
    }

    /// The bridge recorded in the leases file of network `network`, if there is one.
    pub fn recorded_bridge(state_dir: &Path, network: &str) -> Option<String> {
        let bytes = std::fs::read(Leases::path(state_dir, network)).ok()?;
        serde_json::from_slice::<File>(&bytes).ok()?.bridge
    }

    /// `STATE/networks/NAME/leases.json`.
    pub fn path(state_dir: &Path, network: &str) -> PathBuf {
        state_dir.join("networks").join(network).join("leases.json")
    }

    /// Reads the leases file of `def` (none yet: no leases). Leases outside the network
    /// (its subnet was changed) are dropped.
    pub fn load(state_dir: &Path, def: NetworkDef) -> Result<Leases, IpamError> {
        let path = Leases::path(state_dir, &def.name);
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| IpamError::Parse { path, source })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => File::default(),
            Err(source) => return Err(IpamError::Read { path, source }),
        };
        let mut l = Leases { def, file };
        l.set_def(l.def.clone());
        Ok(l)
    }

    /// Writes the leases file (atomically: a temporary file renamed over it).
    pub fn save(&self, state_dir: &Path) -> Result<(), IpamError> {
        let path = Leases::path(state_dir, &self.def.name);
        let write = || -> io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("json.tmp");
            let text = serde_json::to_vec_pretty(&self.file).map_err(io::Error::other)?;
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|source| IpamError::Write {
            path: path.clone(),
            source,
        })
    }

    /// The network changed (a reload): leases no longer in it are dropped.
    pub fn set_def(&mut self, def: NetworkDef) {
        self.file
            .leases
            .retain(|_, a| def.assignable(IpAddr::V4(*a)));
        self.file.bridge = Some(def.bridge.clone());
        self.def = def;
    }

    pub fn def(&self) -> &NetworkDef {
        &self.def
    }

    /// The lease of `unit`, if it has one.
    #[cfg(test)]
    pub fn get(&self, unit: &str) -> Option<Lease> {
        self.file.leases.get(unit).map(|a| self.with_v6(*a))
    }

    /// Every lease: unit -> addresses.
    pub fn all(&self) -> impl Iterator<Item = (&str, Lease)> {
        self.file
            .leases
            .iter()
            .map(|(u, a)| (u.as_str(), self.with_v6(*a)))
    }

    fn with_v6(&self, v4: Ipv4Addr) -> Lease {
        let v6 = self.def.subnet6.map(|s| s.nth(self.def.subnet.offset(v4)));
        Lease {
            v4,
            v6: v6.filter(|a| self.def.assignable(IpAddr::V6(*a))),
        }
    }

    /// The address of `unit`: `wanted` (its static `address`) if given, else its lease
    /// if it has one that is not `reserved` (other units' static addresses), else the
    /// next free address. A static address leased to another unit is taken from it unless
    /// `running(holder)`. Returns whether the leases changed (to be saved).
    pub fn lease(
        &mut self,
        unit: &str,
        wanted: Option<IpAddr>,
        reserved: &BTreeSet<Ipv4Addr>,
        running: impl Fn(&str) -> bool,
    ) -> Result<(Lease, bool), IpamError> {
        let network = self.def.name.clone();
        if let Some(addr) = wanted {
            let IpAddr::V4(v4) = addr else {
                // A static IPv6 address: the v4 one is still allocated.
                return Err(IpamError::Outside { network, addr });
            };
            if !self.def.assignable(addr) {
                return Err(IpamError::Outside { network, addr });
            }
            let holder = self
                .file
                .leases
                .iter()
                .find(|(u, a)| **a == v4 && u.as_str() != unit)
                .map(|(u, _)| u.clone());
            if let Some(holder) = holder {
                if running(&holder) {
                    return Err(IpamError::Taken {
                        network,
                        addr: v4,
                        holder,
                    });
                }
                self.file.leases.remove(&holder);
            }
            let changed = self.file.leases.insert(unit.to_string(), v4) != Some(v4);
            return Ok((self.with_v6(v4), changed));
        }
        if let Some(a) = self.file.leases.get(unit) {
            if !reserved.contains(a) {
                return Ok((self.with_v6(*a), false));
            }
        }
        let taken: BTreeSet<Ipv4Addr> = self
            .file
            .leases
            .iter()
            .filter(|(u, _)| u.as_str() != unit)
            .map(|(_, a)| *a)
            .collect();
        let size = self.def.subnet.size();
        let start = self.file.next.clamp(2, size.saturating_sub(2).max(2));
        for i in 0..size {
            let off = 2 + (start - 2 + i) % size.saturating_sub(2).max(1);
            let a = self.def.subnet.nth(off);
            if self.def.assignable(IpAddr::V4(a)) && !taken.contains(&a) && !reserved.contains(&a) {
                self.file.leases.insert(unit.to_string(), a);
                self.file.next = off + 1;
                return Ok((self.with_v6(a), true));
            }
        }
        Err(IpamError::Exhausted {
            network,
            subnet: self.def.subnet.to_string(),
        })
    }

    /// Drops the leases of units `keep` says are gone. Returns whether any was dropped.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) -> bool {
        let before = self.file.leases.len();
        self.file.leases.retain(|u, _| keep(u));
        before != self.file.leases.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(subnet: &str) -> NetworkDef {
        kennel_units::network::parse_network(
            "t",
            Path::new("t.toml"),
            &format!("subnet = \"{subnet}\"\nsubnet6 = \"fd00:1::/64\"\n"),
        )
        .unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_stable_and_distinct_addresses() {
        let mut l = Leases::new(net("10.1.0.0/24"));
        let none = BTreeSet::new();
        let (a, changed) = l.lease("a", None, &none, |_| false).unwrap();
        assert!(changed);
        assert_eq!(a.v4, ip("10.1.0.2"));
        assert_eq!(a.v6, Some("fd00:1::2".parse().unwrap()));
        let (b, _) = l.lease("b", None, &none, |_| false).unwrap();
        assert_eq!(b.v4, ip("10.1.0.3"));
        // Stable: asking again gives the same, unchanged.
        assert_eq!(l.lease("a", None, &none, |_| false).unwrap(), (a, false));
        // A release is not reused at once.
        assert!(l.retain(|u| u != "a"));
        let (c, _) = l.lease("c", None, &none, |_| false).unwrap();
        assert_eq!(c.v4, ip("10.1.0.4"));
    }

    #[test]
    fn static_addresses_are_honoured_and_reserved() {
        let mut l = Leases::new(net("10.1.0.0/24"));
        let reserved = BTreeSet::from([ip("10.1.0.2")]);
        let (a, _) = l.lease("a", None, &reserved, |_| false).unwrap();
        assert_eq!(a.v4, ip("10.1.0.3"));
        let (s, _) = l
            .lease("s", Some("10.1.0.2".parse().unwrap()), &reserved, |_| false)
            .unwrap();
        assert_eq!(s.v4, ip("10.1.0.2"));
        // A static address held by a running unit is refused; by a stopped one, taken.
        let err = l
            .lease("t", Some("10.1.0.3".parse().unwrap()), &reserved, |u| {
                u == "a"
            })
            .unwrap_err();
        assert!(err.to_string().contains("is unit a's"), "{err}");
        l.lease("t", Some("10.1.0.3".parse().unwrap()), &reserved, |_| false)
            .unwrap();
        assert_eq!(l.get("a"), None);
        // A lease that became another unit's static address moves.
        let reserved = BTreeSet::from([ip("10.1.0.2"), ip("10.1.0.3"), ip("10.1.0.4")]);
        let mut l2 = Leases::new(net("10.1.0.0/24"));
        l2.lease("x", None, &BTreeSet::new(), |_| false).unwrap();
        let (x, changed) = l2.lease("x", None, &reserved, |_| false).unwrap();
        assert!(changed);
        assert_eq!(x.v4, ip("10.1.0.5"));
        assert!(l
            .lease("o", Some("10.2.0.3".parse().unwrap()), &reserved, |_| false)
            .is_err());
    }

    #[test]
    fn exhaustion_and_wraparound() {
        // A /29: .1 gateway, .2 to .6 for units, .7 broadcast.
        let mut l = Leases::new(net("10.1.0.0/29"));
        let none = BTreeSet::new();
        for u in ["a", "b", "c", "d", "e"] {
            l.lease(u, None, &none, |_| false).unwrap();
        }
        let err = l.lease("f", None, &none, |_| false).unwrap_err();
        assert!(err.to_string().contains("no free address"), "{err}");
        l.retain(|u| u != "b");
        let (f, _) = l.lease("f", None, &none, |_| false).unwrap();
        assert_eq!(f.v4, ip("10.1.0.3"));
        let all: BTreeSet<Ipv4Addr> = l.all().map(|(_, a)| a.v4).collect();
        assert_eq!(all.len(), 5);
    }

    #[test]
    fn persisted_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Leases::load(dir.path(), net("10.1.0.0/24")).unwrap();
        let (a, _) = l.lease("a", None, &BTreeSet::new(), |_| false).unwrap();
        l.save(dir.path()).unwrap();
        let mut again = Leases::load(dir.path(), net("10.1.0.0/24")).unwrap();
        assert_eq!(again.get("a"), Some(a));
        let (b, _) = again.lease("b", None, &BTreeSet::new(), |_| false).unwrap();
        assert_ne!(a.v4, b.v4);
        // The subnet changed: the old leases go.
        let moved = Leases::load(dir.path(), net("10.2.0.0/24")).unwrap();
        assert_eq!(moved.get("a"), None);
        std::fs::write(Leases::path(dir.path(), "t"), "{").unwrap();
        let err = Leases::load(dir.path(), net("10.1.0.0/24")).unwrap_err();
        assert!(err.to_string().contains("move the file away"), "{err}");
    }
}
