//! The kernel's network configuration through rtnetlink (links, addresses, the default
//! route), behind a small synchronous face: boot and the DHCP script are not async, so each
//! call runs to its end on a current-thread tokio runtime that this type owns.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures_util::stream::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};
use rtnetlink::packet_route::route::RouteProtocol;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use super::cidr::Cidr;

/// A netlink request the kernel refused, or a socket that could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("open a netlink socket: {0}")]
    Open(io::Error),
    #[error("{what}: {source}")]
    Request { what: String, source: io::Error },
    #[error("{0}: no such interface")]
    NoLink(String),
}

impl NetlinkError {
    /// The errno of a refused request, if that is what this is.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Request { source, .. } | NetlinkError::Open(source) => {
                source.raw_os_error()
            }
            NetlinkError::NoLink(_) => None,
        }
    }
}

fn request(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let what = what.into();
    move |e| NetlinkError::Request {
        what,
        source: match e {
            rtnetlink::Error::NetlinkError(m) => m.to_io(),
            other => io::Error::other(other.to_string()),
        },
    }
}

/// An interface, as boot needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// An Ethernet interface (what an `ip=` without a device picks); not loopback, not a tunnel.
    pub ether: bool,
}

/// A netlink connection and the runtime its requests run on.
pub struct Netlink {
    rt: tokio::runtime::Runtime,
    handle: Handle,
}

impl Netlink {
    pub fn open() -> Result<Netlink, NetlinkError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(NetlinkError::Open)?;
        let handle = rt.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            Ok::<_, io::Error>(handle)
        });
        Ok(Netlink {
            handle: handle.map_err(NetlinkError::Open)?,
            rt,
        })
    }

    /// Every interface, in index order.
    pub fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        let msgs: Vec<LinkMessage> = self
            .rt
            .block_on(self.handle.link().get().execute().try_collect())
            .map_err(request("list interfaces"))?;
        let mut links: Vec<Link> = msgs
            .iter()
            .map(|m| Link {
                index: m.header.index,
                name: m
                    .attributes
                    .iter()
                    .find_map(|a| match a {
                        LinkAttribute::IfName(n) => Some(n.clone()),
                        _ => None,
                    })
                    .unwrap_or_default(),
                ether: m.header.link_layer_type == LinkLayerType::Ether,
            })
            .collect();
        links.sort_by_key(|l| l.index);
        Ok(links)
    }

    /// Wait, up to `deadline`, for the interface `name` (or, with `None`, for the first
    /// Ethernet interface) to exist: a driver may still be loading (modules, udev).
    pub fn wait_link(&self, name: Option<&str>, deadline: Instant) -> Result<Link, NetlinkError> {
        loop {
            let found = self.links()?.into_iter().find(|l| match name {
                Some(n) => l.name == n,
                None => l.ether,
            });
            if let Some(l) = found {
                return Ok(l);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(NetlinkError::NoLink(
                    name.unwrap_or("an Ethernet interface").to_string(),
                ));
            }
            std::thread::sleep(Duration::from_millis(50).min(deadline - now));
        }
    }

    /// `ip link set LINK up`.
    pub fn set_up(&self, link: &Link) -> Result<(), NetlinkError> {
        let msg = LinkUnspec::new_with_index(link.index).up().build();
        self.rt
            .block_on(self.handle.link().set(msg).execute())
            .map_err(request(format!("bring {} up", link.name)))
    }

    fn address_messages(&self, link: &Link) -> Result<Vec<AddressMessage>, NetlinkError> {
        let msgs: Vec<AddressMessage> = self
            .rt
            .block_on(
                self.handle
                    .address()
                    .get()
                    .set_link_index_filter(link.index)
                    .execute()
                    .try_collect(),
            )
            .map_err(request(format!("list the addresses of {}", link.name)))?;
        Ok(msgs
            .into_iter()
            .filter(|m| m.header.index == link.index && m.header.family == AddressFamily::Inet)
            .collect())
    }

    /// The interface's IPv4 addresses.
    pub fn addresses(&self, link: &Link) -> Result<Vec<Cidr>, NetlinkError> {
        Ok(self
            .address_messages(link)?
            .iter()
            .filter_map(|m| {
                let local = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(IpAddr::V4(a)) => Some(*a),
                    _ => None,
                });
                let addr = local.or_else(|| {
                    m.attributes.iter().find_map(|a| match a {
                        AddressAttribute::Address(IpAddr::V4(a)) => Some(*a),
                        _ => None,
                    })
                })?;
                Some(Cidr {
                    addr,
                    prefix: m.header.prefix_len,
                })
            })
            .collect())
    }

    /// `ip addr replace ADDRESS dev LINK` (no error when it is there already).
    pub fn add_address(&self, link: &Link, address: Cidr) -> Result<(), NetlinkError> {
        self.rt
            .block_on(
                self.handle
                    .address()
                    .add(link.index, IpAddr::V4(address.addr), address.prefix)
                    .replace()
                    .execute(),
            )
            .map_err(request(format!("add {address} to {}", link.name)))
    }

    /// `ip addr del ADDRESS dev LINK`; nothing when it is not there.
    pub fn del_address(&self, link: &Link, address: Cidr) -> Result<(), NetlinkError> {
        for m in self.address_messages(link)? {
            let matches = m.header.prefix_len == address.prefix
                && m.attributes.iter().any(
                    |a| matches!(a, AddressAttribute::Local(IpAddr::V4(x)) if *x == address.addr),
                );
            if matches {
                self.rt
                    .block_on(self.handle.address().del(m).execute())
                    .map_err(request(format!("remove {address} from {}", link.name)))?;
            }
        }
        Ok(())
    }

    /// `ip route replace default via GATEWAY dev LINK`; a gateway outside the interface's
    /// networks is reached on the link (`onlink`), as the kernel's `ip=` does.
    pub fn default_route(
        &self,
        link: &Link,
        gateway: Ipv4Addr,
        protocol: RouteProtocol,
    ) -> Result<(), NetlinkError> {
        let build = |onlink: bool| {
            let b = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gateway)
                .output_interface(link.index)
                .protocol(protocol);
            if onlink { b.onlink() } else { b }.build()
        };
        let what = format!("default route via {gateway} dev {}", link.name);
        let first = self
            .rt
            .block_on(self.handle.route().add(build(false)).replace().execute())
            .map_err(request(what.clone()));
        match first {
            // No route to the gateway ("Nexthop has invalid gateway"): on the link, as a
            // gateway outside a /32 (clouds) is; if that fails too, the first error says more.
            Err(e) if matches!(e.errno(), Some(libc::ENETUNREACH | libc::EINVAL)) => self
                .rt
                .block_on(self.handle.route().add(build(true)).replace().execute())
                .map_err(|_| e),
            other => other,
        }
    }
}
