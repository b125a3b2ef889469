//! The listening sockets of a network's server, bound with IP_FREEBIND: the gateway address
//! may not be usable yet when the server starts (an IPv6 address is "tentative" until
//! duplicate address detection ends, a bridge may get its address just after), and the
//! kernel then delivers to the socket as soon as it is.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrStorage};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};

pub fn udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket::socket(
        family,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    // IP_FREEBIND is honoured by IPv6 sockets too.
    socket::setsockopt(&fd, sockopt::IpFreebind, &true)?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    UdpSocket::from_std(std::net::UdpSocket::from(fd))
}

pub fn tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    socket::setsockopt(&sock, sockopt::IpFreebind, &true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}
