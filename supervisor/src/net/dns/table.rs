//! One network's names: what the owner edits and publishes as an immutable snapshot that
//! the network's server tasks read (no lock: each query reads the snapshot it was given).

use std::collections::HashMap;
use std::net::IpAddr;

/// The names of one network and the subnets its clients come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// The network's subnets: a client outside all of them is refused.
    subnets: Vec<(IpAddr, u8)>,
    /// Lowercased name (a unit name or an alias) -> its addresses.
    names: HashMap<String, Entry>,
    /// Hands out [`Entry::since`].
    next: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    addrs: Vec<IpAddr>,
    /// When the name was first set (a sequence number): a reverse lookup answers with the
    /// address's oldest name, which is the unit's own when the daemon sets it before the
    /// aliases.
    since: u64,
}

impl Table {
    pub fn set_subnets(&mut self, subnets: Vec<(IpAddr, u8)>) {
        self.subnets = subnets;
    }

    /// Replaces NAME's addresses; no address removes the name.
    pub fn set(&mut self, name: &str, addrs: Vec<IpAddr>) {
        let key = normalize(name);
        if addrs.is_empty() {
            self.names.remove(&key);
            return;
        }
        match self.names.get_mut(&key) {
            Some(e) => e.addrs = addrs,
            None => {
                self.next += 1;
                self.names.insert(
                    key,
                    Entry {
                        addrs,
                        since: self.next,
                    },
                );
            }
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.names.remove(&normalize(name));
    }

    /// The addresses of a lowercased single-label name.
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.names.get(name).map(|e| e.addrs.as_slice())
    }

    /// The oldest name that has `addr`.
    pub fn reverse(&self, addr: IpAddr) -> Option<&str> {
        self.names
            .iter()
            .filter(|(_, e)| e.addrs.contains(&addr))
            .min_by_key(|(_, e)| e.since)
            .map(|(n, _)| n.as_str())
    }

    /// Whether `ip` is in one of the network's subnets.
    pub fn in_subnets(&self, ip: IpAddr) -> bool {
        self.subnets
            .iter()
            .any(|&(net, len)| contains(net, len, ip))
    }
}

/// A name as the table keys it: lowercase, no trailing dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `ip` is in `net/len` (never across families; IPv4-mapped IPv6 counts as IPv4).
pub fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let len = u32::from(len.min(32));
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let len = u32::from(len.min(128));
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_contain_their_addresses_only() {
        assert!(contains(ip("10.89.0.0"), 16, ip("10.89.255.1")));
        assert!(!contains(ip("10.89.0.0"), 16, ip("10.90.0.1")));
        assert!(contains(ip("0.0.0.0"), 0, ip("1.2.3.4")));
        assert!(contains(ip("10.1.2.3"), 32, ip("10.1.2.3")));
        assert!(!contains(ip("10.1.2.3"), 32, ip("10.1.2.4")));
        assert!(contains(ip("fd00:89::"), 64, ip("fd00:89::7")));
        assert!(!contains(ip("fd00:89::"), 64, ip("fd00:90::7")));
        assert!(!contains(ip("10.89.0.0"), 16, ip("fd00::1")));
        assert!(contains(ip("10.89.0.0"), 16, ip("::ffff:10.89.0.9")));
    }

    #[test]
    fn names_are_case_insensitive_and_replaced_whole() {
        let mut t = Table::default();
        t.set("Web", vec![ip("10.0.0.2"), ip("fd00::2")]);
        assert_eq!(t.lookup("web"), Some(&[ip("10.0.0.2"), ip("fd00::2")][..]));
        t.set("WEB.", vec![ip("10.0.0.3")]);
        assert_eq!(t.lookup("web"), Some(&[ip("10.0.0.3")][..]));
        t.set("web", vec![]);
        assert_eq!(t.lookup("web"), None);
    }

    #[test]
    fn reverse_answers_the_oldest_name() {
        let mut t = Table::default();
        t.set("db", vec![ip("10.0.0.5")]);
        t.set("postgres", vec![ip("10.0.0.5")]);
        t.set("db", vec![ip("10.0.0.5")]);
        assert_eq!(t.reverse(ip("10.0.0.5")), Some("db"));
        t.remove("db");
        assert_eq!(t.reverse(ip("10.0.0.5")), Some("postgres"));
        assert_eq!(t.reverse(ip("10.0.0.6")), None);
    }
}
