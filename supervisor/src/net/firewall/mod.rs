//! kennel's nftables rules, through netlink (no `nft` process): masquerade out of each
//! network, isolation between networks, `internal` networks without a way out, and the
//! DNAT of published ports (from other hosts, from the host itself including 127.0.0.1,
//! and hairpin). Everything lives in kennel's own table, `table inet kennel`; no other
//! table is read, changed or flushed. Each rule carries a comment naming its network or
//! unit (`kennel network=NAME`, `kennel unit=NAME`), which is how kennel finds its rules
//! again after a crash. See docs/networking.md, "Firewall rules".
//!
//! A [`Firewall`] acts on the network namespace of the thread that opened it, and must be
//! used from a thread in that namespace (the sysctls it writes are per namespace and
//! resolved through the writing thread); any other use fails with
//! [`FirewallError::OtherNamespace`].
//!
//! ```ignore
//! let mut fw = Firewall::open()?;
//! fw.ensure_network(&NetworkRules { name: "kennel".into(), bridge: "kbr-kennel".into(),
//!     subnets: vec![("10.89.0.0".parse()?, 16)], internal: false })?;
//! fw.publish("web", "kennel", &[PortRule { proto: Proto::Tcp, host_ip: None,
//!     host_port: 8080, count: 1, container_ip: "10.89.0.2".parse()?, container_port: 80 }])?;
//! ```

mod expr;
mod netlink;
mod rules;
mod sysctl;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;

use tracing::{debug, warn};

use netlink::{Nl, Op};
use rules::{RuleSpec, Tag, CHAINS};

pub use rules::TABLE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

/// One network's part of the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRules {
    pub name: String,
    /// The bridge's interface name (at most 15 bytes); it must exist.
    pub bridge: String,
    /// The network's subnets (address, prefix length), IPv4 and/or IPv6.
    pub subnets: Vec<(IpAddr, u8)>,
    /// No way out of the host nor to other networks, and nothing in from outside the
    /// bridge is forwarded in (published ports included); containers on it still reach
    /// each other, and the host itself reaches them.
    pub internal: bool,
}

/// One published port or range of a unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRule {
    pub proto: Proto,
    /// Only traffic to this host address (None, 0.0.0.0 or ::: every local address).
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    /// A range: host_port..host_port+count, onto container_port..container_port+count.
    pub count: u16,
    /// The container's address; its family chooses IPv4 or IPv6 (publish both by giving
    /// one rule per address).
    pub container_ip: IpAddr,
    pub container_port: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nftables (netlink): {0}")]
    Netlink(String),
    #[error("nftables table inet {TABLE}: {0}")]
    Apply(String),
    #[error("{0}")]
    Invalid(String),
    #[error("not supported: {0}")]
    NotSupported(String),
    #[error("name too long for an nftables rule comment (255 bytes): {0:?}")]
    NameTooLong(String),
    #[error("sysctl {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the firewall was opened in another network namespace than this thread's: use it from the thread that opened it")]
    OtherNamespace,
    #[error("reading this thread's network namespace: {0}")]
    Namespace(#[source] std::io::Error),
}

impl From<netlink_socket2::ReplyError> for FirewallError {
    fn from(e: netlink_socket2::ReplyError) -> Self {
        FirewallError::Netlink(e.to_string())
    }
}

impl From<netlink_bindings::utils::ErrorContext> for FirewallError {
    fn from(e: netlink_bindings::utils::ErrorContext) -> Self {
        FirewallError::Netlink(e.to_string())
    }
}

/// kennel's nftables rules in one network namespace (the opening thread's).
pub struct Firewall {
    /// In a RefCell so that the read-only calls (`published`, `networks`) take `&self`
    /// while a dump still needs the socket mutably.
    nl: RefCell<Nl>,
    /// (dev, inode) of the namespace the socket belongs to.
    netns: (u64, u64),
}

fn thread_netns() -> Result<(u64, u64), FirewallError> {
    let m = std::fs::metadata("/proc/thread-self/ns/net").map_err(FirewallError::Namespace)?;
    Ok((m.dev(), m.ino()))
}

impl Firewall {
    /// Opens a netlink socket in the calling thread's network namespace; changes nothing.
    pub fn open() -> Result<Firewall, FirewallError> {
        let netns = thread_netns()?;
        let nl = RefCell::new(Nl::open()?);
        Ok(Firewall { nl, netns })
    }

    fn check_ns(&self) -> Result<(), FirewallError> {
        if thread_netns()? != self.netns {
            return Err(FirewallError::OtherNamespace);
        }
        Ok(())
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), FirewallError> {
        self.nl
            .get_mut()
            .apply(ops)
            .map(|_| ())
            .map_err(|e| FirewallError::Apply(e.to_string()))
    }

    /// The table and its fixed chains and rules, in front of `ops` when the table is new.
    fn with_skeleton<'a>(
        &mut self,
        base: &'a [RuleSpec],
        ops: Vec<Op<'a>>,
    ) -> Result<Vec<Op<'a>>, FirewallError> {
        if self.nl.get_mut().table_exists()? {
            return Ok(ops);
        }
        let mut all = vec![Op::NewTable];
        all.extend(CHAINS.iter().map(Op::NewChain));
        all.extend(base.iter().map(Op::NewRule));
        all.extend(ops);
        Ok(all)
    }

    /// Deletions of the rules tagged `tag`.
    fn delete_tagged(&mut self, tag: &Tag) -> Result<Vec<(String, u64)>, FirewallError> {
        Ok(self
            .nl
            .get_mut()
            .rules()?
            .into_iter()
            .filter(|r| r.tag.as_ref() == Some(tag))
            .map(|r| (r.chain, r.handle))
            .collect())
    }

    /// Idempotent: masquerade of the subnets' outbound traffic (unless internal),
    /// isolation from other kennel networks, forwarding accepted for the bridge, and the
    /// sysctls this needs (net.ipv4.ip_forward, route_localnet on the bridge for 127.0.0.1
    /// publishing, IPv6 forwarding when a v6 subnet is given). Replaces the network's
    /// earlier rules in one transaction.
    pub fn ensure_network(&mut self, n: &NetworkRules) -> Result<(), FirewallError> {
        self.check_ns()?;
        let rules = rules::network_rules(n)?;
        sysctl::for_network(&n.bridge, n.subnets.iter().any(|(ip, _)| ip.is_ipv6()))?;
        let old = self.delete_tagged(&Tag::Network(n.name.clone()))?;
        let mut ops: Vec<Op> = old
            .iter()
            .map(|(c, h)| Op::DelRule {
                chain: c,
                handle: *h,
            })
            .collect();
        ops.extend(rules.iter().map(Op::NewRule));
        let base = rules::base_rules();
        let ops = self.with_skeleton(&base, ops)?;
        debug!(network = %n.name, rules = rules.len(), replaced = old.len(), "firewall: network rules");
        self.apply(&ops)
    }

    /// Removes the network's rules (not its units' published ports). No error if it has none.
    pub fn remove_network(&mut self, name: &str) -> Result<(), FirewallError> {
        self.check_ns()?;
        let old = self.delete_tagged(&Tag::Network(name.to_string()))?;
        let ops: Vec<Op> = old
            .iter()
            .map(|(c, h)| Op::DelRule {
                chain: c,
                handle: *h,
            })
            .collect();
        self.apply(&ops)
    }

    /// Replaces the unit's earlier rules: DNAT from other hosts, from the host itself
    /// (incl. 127.0.0.1: output chain + route_localnet + masquerade), hairpin (a container
    /// reaching itself or a neighbour through the host address). `network` is the network
    /// the container addresses are on; its rules (ensure_network) must exist. One
    /// transaction up to 100 changes (old rules deleted + new ones; a shifted range is a
    /// rule a port), several beyond; on an error the unit is left with no rules.
    pub fn publish(
        &mut self,
        unit: &str,
        network: &str,
        ports: &[PortRule],
    ) -> Result<(), FirewallError> {
        self.check_ns()?;
        let rules = rules::port_rules(unit, ports)?;
        let listed = self.nl.get_mut().rules()?;
        if !rules.is_empty()
            && !listed
                .iter()
                .any(|r| r.tag == Some(Tag::Network(network.to_string())))
        {
            return Err(FirewallError::Invalid(format!(
                "{unit}: publishing on network {network:?}, which has no firewall rules (ensure_network first)"
            )));
        }
        let unit_tag = Tag::Unit(unit.to_string());
        let mut ops: Vec<Op> = listed
            .iter()
            .filter(|r| r.tag.as_ref() == Some(&unit_tag))
            .map(|r| Op::DelRule {
                chain: &r.chain,
                handle: r.handle,
            })
            .collect();
        let replaced = ops.len();
        ops.extend(rules.iter().map(Op::NewRule));
        debug!(
            unit,
            network,
            rules = rules.len(),
            replaced,
            "firewall: published ports"
        );
        let result = self.apply(&ops);
        drop(ops);
        if result.is_err() {
            // Several transactions (a large range) may have half-succeeded: leave the unit
            // with no rules rather than some.
            if let Err(e) = self.unpublish(unit) {
                warn!(unit, error = %e, "firewall: removing a half-published unit's rules");
            }
        }
        result
    }

    /// Removes exactly the unit's rules. No error if it has none.
    pub fn unpublish(&mut self, unit: &str) -> Result<(), FirewallError> {
        self.check_ns()?;
        let old = self.delete_tagged(&Tag::Unit(unit.to_string()))?;
        let ops: Vec<Op> = old
            .iter()
            .map(|(c, h)| Op::DelRule {
                chain: c,
                handle: *h,
            })
            .collect();
        self.apply(&ops)
    }

    /// For cleanup after a crash: the units that have rules now (sorted).
    pub fn published(&self) -> Result<Vec<String>, FirewallError> {
        self.tagged(|t| match t {
            Tag::Unit(u) => Some(u),
            _ => None,
        })
    }

    /// The networks that have rules now (sorted).
    pub fn networks(&self) -> Result<Vec<String>, FirewallError> {
        self.tagged(|t| match t {
            Tag::Network(n) => Some(n),
            _ => None,
        })
    }

    fn tagged(&self, pick: impl Fn(Tag) -> Option<String>) -> Result<Vec<String>, FirewallError> {
        self.check_ns()?;
        let names: BTreeSet<String> = self
            .nl
            .borrow_mut()
            .rules()?
            .into_iter()
            .filter_map(|r| r.tag.and_then(&pick))
            .collect();
        Ok(names.into_iter().collect())
    }

    /// Deletes kennel's table (and so all of kennel's rules); no other table is touched.
    /// No error if there is none.
    // For the tests and by-hand cleanup; the daemon removes per network and unit.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn remove_all(&mut self) -> Result<(), FirewallError> {
        self.check_ns()?;
        if self.nl.get_mut().table_exists()? {
            self.apply(&[Op::DelTable])?;
        }
        Ok(())
    }
}
