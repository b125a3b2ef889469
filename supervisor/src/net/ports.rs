//! Holding published host ports, as podman's conmon does: while a unit runs, kennel keeps
//! a socket bound on each host port, address and protocol it publishes. Binding it finds a
//! port that is taken already (the start then fails), and holding it keeps anyone else
//! from taking it later. The sockets never receive anything published: the DNAT of
//! published ports (prerouting / output) happens before local delivery. TCP sockets are
//! bound, not listening.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};

/// A port that could not be held.
#[derive(Debug, thiserror::Error)]
#[error("{proto} {addr}: {source}")]
pub struct PortError {
    pub proto: &'static str,
    pub addr: SocketAddr,
    #[source]
    pub source: io::Error,
}

impl PortError {
    /// The port is someone else's (bound or listened on).
    pub fn in_use(&self) -> bool {
        self.source.raw_os_error() == Some(libc::EADDRINUSE)
    }
}

/// One host port to hold: where (None: every address of the family), which, which protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPort {
    pub udp: bool,
    pub ip: Option<IpAddr>,
    pub v6: bool,
    pub port: u16,
}

/// Binds a socket on each of `ports` (in the calling thread's network namespace); all or
/// none: on the first failure, those bound already are closed.
pub fn hold(ports: &[HostPort]) -> Result<Vec<OwnedFd>, PortError> {
    ports.iter().map(hold_one).collect()
}

fn hold_one(p: &HostPort) -> Result<OwnedFd, PortError> {
    let ip = p.ip.unwrap_or(if p.v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    let addr = SocketAddr::new(ip, p.port);
    let proto = if p.udp { "udp" } else { "tcp" };
    let err = |e: nix::Error| PortError {
        proto,
        addr,
        source: io::Error::from(e),
    };
    let family = if ip.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let ty = if p.udp {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let fd = socket::socket(family, ty, SockFlag::SOCK_CLOEXEC, None).map_err(err)?;
    if ip.is_ipv6() {
        // [::] holds the IPv6 port only; IPv4 is held by its own socket.
        socket::setsockopt(&fd, sockopt::Ipv6V6Only, &true).map_err(err)?;
    }
    socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )
    .map_err(err)?;
    Ok(fd)
}

// The tests' skip reporting, as net::dns's tests load it too.
#[cfg(test)]
#[allow(clippy::duplicate_mod)]
#[path = "../../../integration/skip.rs"]
mod skip;

#[cfg(test)]
mod tests {
    use super::*;

    /// In a network namespace of the test's own (a thread that unshares it).
    #[test]
    fn a_held_port_is_found_taken_and_released_when_dropped() {
        if !super::skip::need_root() {
            return;
        }
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let p = HostPort {
                udp: false,
                ip: None,
                v6: false,
                port: 8080,
            };
            let held = hold(&[p]).unwrap();
            let e = hold(&[p]).unwrap_err();
            assert!(e.in_use(), "{e}");
            assert!(e.to_string().starts_with("tcp 0.0.0.0:8080: "), "{e}");
            // Nobody else can listen there either.
            assert!(std::net::TcpListener::bind(("0.0.0.0", 8080)).is_err());
            drop(held);
            drop(hold(&[p]).unwrap());
            // UDP is separate from TCP, IPv6 from IPv4; all or none.
            let u = HostPort { udp: true, ..p };
            let u6 = HostPort { v6: true, ..u };
            let _t = hold(&[p]).unwrap();
            let _u = hold(&[u, u6]).unwrap();
            assert!(hold(&[u]).unwrap_err().in_use());
            let free = HostPort { port: 8081, ..p };
            assert!(hold(&[free, p]).is_err());
            drop(hold(&[free]).unwrap());
        })
        .join()
        .unwrap();
    }
}
