//! Putting an address and a default route on an interface (for a static configuration and
//! for a DHCP lease alike), and resolv.conf; each step one console line.

use std::net::Ipv4Addr;
use std::path::Path;

use rtnetlink::packet_route::route::RouteProtocol;

use super::cidr::Cidr;
use super::link::{Link, Netlink, NetlinkError};
use super::resolv;

/// Where kennel writes the name servers.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// What `configure` found.
#[derive(Debug, PartialEq, Eq)]
pub struct Configured {
    /// The interface had this address before (the initramfs configured it, say for an NFS
    /// root, or this is a DHCP renewal).
    pub already: bool,
}

/// Link up, `address` on it, and the default route via `gateway`.
pub fn configure(
    nl: &Netlink,
    link: &Link,
    address: Cidr,
    gateway: Option<Ipv4Addr>,
    protocol: RouteProtocol,
) -> Result<Configured, NetlinkError> {
    nl.set_up(link)?;
    let already = nl.addresses(link)?.contains(&address);
    nl.add_address(link, address)?;
    if let Some(gw) = gateway {
        nl.default_route(link, gw, protocol)?;
    }
    Ok(Configured { already })
}

/// `net eth0: 10.0.2.15/24 via 10.0.2.2 (FROM)`.
pub fn describe(link: &str, address: Cidr, gateway: Option<Ipv4Addr>, from: &str) -> String {
    match gateway {
        Some(gw) => format!("net {link}: {address} via {gw} ({from})"),
        None => format!("net {link}: {address}, no gateway ({from})"),
    }
}

/// Write the name servers to /etc/resolv.conf; the console line saying what happened, if
/// anything did.
pub fn resolv_conf(dns: &[Ipv4Addr], search: Option<&str>, from: &str) -> Option<String> {
    if dns.is_empty() {
        return None;
    }
    let list = dns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let text = resolv::render(dns, search, from);
    Some(match resolv::write(Path::new(RESOLV_CONF), &text) {
        Ok(resolv::Written::Written) => format!("net: {RESOLV_CONF}: nameserver {list}"),
        Ok(resolv::Written::Unchanged) => {
            format!("net: {RESOLV_CONF}: nameserver {list} (unchanged)")
        }
        Err(e) => format!("net: name servers {list} not written: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let a: Cidr = "10.0.2.15/24".parse().unwrap();
        assert_eq!(
            describe(
                "eth0",
                a,
                Some(Ipv4Addr::new(10, 0, 2, 2)),
                "ip= on the command line"
            ),
            "net eth0: 10.0.2.15/24 via 10.0.2.2 (ip= on the command line)"
        );
        assert_eq!(
            describe("eth1", a, None, "/etc/kennel/boot.toml"),
            "net eth1: 10.0.2.15/24, no gateway (/etc/kennel/boot.toml)"
        );
        assert_eq!(resolv_conf(&[], None, "x"), None);
    }
}
