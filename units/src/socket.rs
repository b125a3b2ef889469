//! Sockets kennel binds for a unit (`[[socket]]`, or a systemd `.socket` file) and passes
//! to its service as `LISTEN_FDS`: the model, and the syntax of a `listen` address.
//!
//! ```toml
//! [[socket]]
//! listen = "tcp:127.0.0.1:8080"   # tcp:HOST:PORT, udp:HOST:PORT, unix:/PATH
//! name = "http"                   # LISTEN_FDNAMES; default: the unit's name
//! backlog = 128                   # default 4096
//! reuse_port = false              # SO_REUSEPORT
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// At most this many sockets per unit (the descriptors go with the spawn spec in one
/// message; the kernel takes at most 253 per message).
pub const MAX_SOCKETS: usize = 64;

/// The backlog of a listening socket unless set (systemd's default, `SOMAXCONN`).
pub const DEFAULT_BACKLOG: u32 = 4096;

/// The mode of a Unix socket's file unless set.
pub const DEFAULT_MODE: u32 = 0o666;

/// One `[[socket]]`: bound by kennel when the unit set is loaded, held across the service's
/// runs, passed to each as a descriptor from 3 on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Socket {
    /// `listen`: what to bind.
    pub listen: Listen,
    /// `name`: its name in `LISTEN_FDNAMES`; default the unit's name.
    pub name: String,
    /// `backlog`: of a stream or seqpacket socket; default [`DEFAULT_BACKLOG`].
    pub backlog: u32,
    /// `reuse_port`: `SO_REUSEPORT`; default false.
    pub reuse_port: bool,
    /// `mode`: of a Unix socket's file; default [`DEFAULT_MODE`].
    pub mode: u32,
    /// `user`: owner of a Unix socket's file (name or uid); default kennel's user.
    pub user: Option<String>,
    /// `group`: group of a Unix socket's file (name or gid); default kennel's group.
    pub group: Option<String>,
}

/// Where a socket listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listen {
    /// `tcp:HOST:PORT`: a listening TCP socket.
    Tcp(SocketAddr),
    /// `udp:HOST:PORT`: a bound UDP socket.
    Udp(SocketAddr),
    /// `unix:/PATH`: a Unix socket of the given kind, its file created by kennel.
    Unix { path: PathBuf, kind: UnixKind },
}

/// `kind` of a Unix socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnixKind {
    /// `SOCK_STREAM`, listening (systemd's `ListenStream=`).
    #[default]
    Stream,
    /// `SOCK_DGRAM` (`ListenDatagram=`).
    Datagram,
    /// `SOCK_SEQPACKET`, listening (`ListenSequentialPacket=`).
    Seqpacket,
}

impl UnixKind {
    /// The names `kind` takes.
    pub const NAMES: &'static [&'static str] = &["stream", "datagram", "seqpacket"];

    pub fn from_name(name: &str) -> Option<UnixKind> {
        match name {
            "stream" => Some(UnixKind::Stream),
            "datagram" => Some(UnixKind::Datagram),
            "seqpacket" => Some(UnixKind::Seqpacket),
            _ => None,
        }
    }
}

impl Listen {
    /// Parses `tcp:HOST:PORT`, `udp:HOST:PORT` (HOST an IPv4 address or a bracketed IPv6
    /// one, PORT 1..=65535) or `unix:/PATH` (a stream socket; see [`UnixKind`]).
    pub fn parse(s: &str) -> Result<Listen, String> {
        let bad = |why: &str| format!("invalid address {s:?}: {why}");
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| bad("expected tcp:HOST:PORT, udp:HOST:PORT or unix:/PATH"))?;
        match scheme {
            "tcp" => Ok(Listen::Tcp(parse_inet(rest).map_err(|e| bad(&e))?)),
            "udp" => Ok(Listen::Udp(parse_inet(rest).map_err(|e| bad(&e))?)),
            "unix" => Ok(Listen::Unix {
                path: unix_path(rest).map_err(|e| bad(&e))?,
                kind: UnixKind::Stream,
            }),
            other => Err(bad(&format!(
                "unknown kind {other:?}: expected tcp:HOST:PORT, udp:HOST:PORT or unix:/PATH"
            ))),
        }
    }

    /// Whether binding both would clash: the same protocol and port with the same
    /// address or a wildcard one, or the same Unix path.
    pub fn clashes(&self, other: &Listen) -> bool {
        let inet = |a: &SocketAddr, b: &SocketAddr| {
            a.port() == b.port()
                && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
        };
        match (self, other) {
            (Listen::Tcp(a), Listen::Tcp(b)) | (Listen::Udp(a), Listen::Udp(b)) => inet(a, b),
            (Listen::Unix { path: a, .. }, Listen::Unix { path: b, .. }) => a == b,
            _ => false,
        }
    }

    /// Whether it is a stream (or seqpacket) socket, which listens with a backlog.
    pub fn listens(&self) -> bool {
        !matches!(
            self,
            Listen::Udp(_)
                | Listen::Unix {
                    kind: UnixKind::Datagram,
                    ..
                }
        )
    }
}

impl Listen {
    /// The `listen` string: `tcp:HOST:PORT`, `udp:HOST:PORT`, `unix:/PATH` (a Unix
    /// socket's kind is a key of its own).
    pub fn address(&self) -> String {
        match self {
            Listen::Tcp(a) => format!("tcp:{a}"),
            Listen::Udp(a) => format!("udp:{a}"),
            Listen::Unix { path, .. } => format!("unix:{}", path.display()),
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())?;
        match self {
            Listen::Tcp(_) | Listen::Udp(_) => Ok(()),
            Listen::Unix { kind, .. } => match kind {
                UnixKind::Stream => Ok(()),
                UnixKind::Datagram => write!(f, " (datagram)"),
                UnixKind::Seqpacket => write!(f, " (seqpacket)"),
            },
        }
    }
}

/// `HOST:PORT`, HOST an IP address (IPv6 in brackets).
fn parse_inet(s: &str) -> Result<SocketAddr, String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or("expected HOST:PORT after the kind")?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("port {port:?} is not in 1..=65535"))?;
    let ip: IpAddr = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?,
        None if host.contains(':') => {
            return Err(format!("the IPv6 address {host:?} must be in brackets"))
        }
        None => host
            .parse::<std::net::Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| {
                format!("{host:?} is not an IP address (names are not resolved; 0.0.0.0 or [::] for every address)")
            })?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// An absolute path a Unix socket's address can hold (107 bytes at most).
fn unix_path(s: &str) -> Result<PathBuf, String> {
    if !s.starts_with('/') {
        return Err("a Unix socket's path must be absolute".into());
    }
    if s.len() > 107 {
        return Err(format!(
            "the path is {} bytes long; a Unix socket's is 107 at most",
            s.len()
        ));
    }
    if s.contains('\0') {
        return Err("the path contains a NUL character".into());
    }
    Ok(PathBuf::from(s))
}

/// Why a name is not valid in `LISTEN_FDNAMES` (systemd's rule: 1 to 255 printable ASCII
/// characters, no `:`), if it is not.
pub fn fd_name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 255 {
        Some(format!("{name:?} must be 1 to 255 characters long"))
    } else if !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        Some(format!(
            "{name:?} may hold only printable ASCII characters other than ':' and space"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            Listen::parse("tcp:127.0.0.1:8080").unwrap(),
            Listen::Tcp("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            Listen::parse("udp:[::]:53").unwrap(),
            Listen::Udp("[::]:53".parse().unwrap())
        );
        assert_eq!(
            Listen::parse("unix:/run/x.sock").unwrap(),
            Listen::Unix {
                path: "/run/x.sock".into(),
                kind: UnixKind::Stream
            }
        );
        for (bad, why) in [
            ("127.0.0.1:80", "unknown kind \"127.0.0.1\""),
            ("tcp:localhost:80", "is not an IP address"),
            ("tcp:::1:80", "must be in brackets"),
            ("tcp:1.2.3.4:0", "not in 1..=65535"),
            ("tcp:1.2.3.4:70000", "not in 1..=65535"),
            ("tcp:1.2.3.4", "expected HOST:PORT"),
            ("unix:run/x", "must be absolute"),
            ("sctp:1.2.3.4:5", "unknown kind \"sctp\""),
        ] {
            let e = Listen::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn clashes() {
        let p = |s| Listen::parse(s).unwrap();
        assert!(p("tcp:0.0.0.0:80").clashes(&p("tcp:127.0.0.1:80")));
        assert!(!p("tcp:127.0.0.2:80").clashes(&p("tcp:127.0.0.1:80")));
        assert!(!p("udp:127.0.0.1:80").clashes(&p("tcp:127.0.0.1:80")));
        assert!(p("unix:/a").clashes(&p("unix:/a")));
        assert_eq!(p("tcp:[::1]:80").to_string(), "tcp:[::1]:80");
    }

    #[test]
    fn fd_names() {
        assert!(fd_name_problem("http").is_none());
        assert!(fd_name_problem("a:b").is_some());
        assert!(fd_name_problem("a b").is_some());
        assert!(fd_name_problem("").is_some());
    }
}
