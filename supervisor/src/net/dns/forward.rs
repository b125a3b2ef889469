//! Relaying the queries that are not kennel's to the host's resolvers: UDP from a fresh
//! socket (a random source port) per query, the next upstream on a timeout or an error, TCP
//! when the answer came truncated or the client asked over TCP.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

use super::DnsError;

/// How long one upstream gets to answer before the next one is asked.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The upstream resolvers and how long each gets; immutable once published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forwarder {
    pub upstreams: Vec<SocketAddr>,
    pub timeout: Duration,
}

impl Forwarder {
    /// The first upstream's answer to `query` over UDP, or None when none answered in time.
    /// A truncated answer is asked again over TCP from the same upstream and relayed when it
    /// fits `udp_limit`; otherwise the truncated one goes to the client, which retries over
    /// TCP itself.
    pub async fn udp(&self, query: &[u8], udp_limit: usize) -> Option<Vec<u8>> {
        for &upstream in &self.upstreams {
            match self.udp_one(upstream, query).await {
                Ok(reply) if truncated(&reply) => {
                    return Some(match self.tcp_one(upstream, query).await {
                        Ok(full) if full.len() <= udp_limit => full,
                        Ok(_) => reply,
                        Err(e) => {
                            tracing::debug!(%upstream, "dns: tcp after a truncated answer: {e}");
                            reply
                        }
                    });
                }
                Ok(reply) => return Some(reply),
                Err(e) => tracing::debug!(%upstream, "dns: upstream over udp: {e}"),
            }
        }
        None
    }

    /// The first upstream's answer to `query` over TCP, or None.
    pub async fn tcp(&self, query: &[u8]) -> Option<Vec<u8>> {
        for &upstream in &self.upstreams {
            match self.tcp_one(upstream, query).await {
                Ok(reply) => return Some(reply),
                Err(e) => tracing::debug!(%upstream, "dns: upstream over tcp: {e}"),
            }
        }
        None
    }

    async fn udp_one(&self, upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
        let deadline = Instant::now() + self.timeout;
        let local: SocketAddr = match upstream {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(local).await?;
        // Connected: the kernel drops datagrams from anyone but the upstream.
        sock.connect(upstream).await?;
        sock.send(query).await?;
        let mut buf = vec![0u8; 65535];
        loop {
            let n = timeout_at(deadline, sock.recv(&mut buf))
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
            if answers(query, &buf[..n]) {
                buf.truncate(n);
                return Ok(buf);
            }
        }
    }

    async fn tcp_one(&self, upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
        let deadline = Instant::now() + self.timeout;
        let exchange = async {
            let mut conn = TcpStream::connect(upstream).await?;
            let len = u16::try_from(query.len())
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            let mut msg = Vec::with_capacity(query.len() + 2);
            msg.extend_from_slice(&len.to_be_bytes());
            msg.extend_from_slice(query);
            conn.write_all(&msg).await?;
            let reply = read_message(&mut conn).await?;
            if answers(query, &reply) {
                Ok(reply)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "reply does not match the query",
                ))
            }
        };
        timeout_at(deadline, exchange)
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
    }
}

/// One length-prefixed DNS message of a TCP stream (RFC 1035 4.2.2).
pub async fn read_message<R: AsyncReadExt + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut msg).await?;
    Ok(msg)
}

/// Whether `reply` is a response to `query` (same id, QR set).
fn answers(query: &[u8], reply: &[u8]) -> bool {
    reply.len() >= 12 && reply[..2] == query[..2] && reply[2] & 0x80 != 0
}

fn truncated(reply: &[u8]) -> bool {
    reply[2] & 0x02 != 0
}

/// The name servers of a resolv.conf (`nameserver ADDR` lines, port 53, a `%scope` on a
/// link-local IPv6 address), as glibc reads them: a missing file or one without a
/// nameserver means 127.0.0.1. The daemon runs in the host's network namespace, so a
/// local stub resolver (systemd-resolved's 127.0.0.53) is a fine upstream.
pub fn upstreams_from_resolv_conf(path: &Path) -> Result<Vec<SocketAddr>, DnsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(DnsError::ResolvConf {
                path: path.to_owned(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next() else { continue };
        match parse_nameserver(addr) {
            Some(a) => out.push(a),
            None => {
                tracing::warn!(path = %path.display(), "dns: ignoring nameserver {addr:?}: not an address")
            }
        }
    }
    if out.is_empty() {
        out.push((Ipv4Addr::LOCALHOST, 53).into());
    }
    Ok(out)
}

fn parse_nameserver(s: &str) -> Option<SocketAddr> {
    let (addr, scope) = match s.split_once('%') {
        Some((a, scope)) => (a, Some(scope)),
        None => (s, None),
    };
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some((a, 53).into()),
        IpAddr::V6(a) => {
            let scope_id = match scope {
                None => 0,
                Some(s) => match s.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => {
                        let name = std::ffi::CString::new(s).ok()?;
                        // SAFETY: a valid NUL-terminated string; no other precondition.
                        match unsafe { libc::if_nametoindex(name.as_ptr()) } {
                            0 => return None,
                            n => n,
                        }
                    }
                },
            };
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                a, 53, 0, scope_id,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(
            &path,
            "# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver  fd00::1\n\
             nameserver fe80::1%1\nnameserver bogus\noptions edns0\n",
        )
        .unwrap();
        let got = upstreams_from_resolv_conf(&path).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], "127.0.0.53:53".parse().unwrap());
        assert_eq!(got[1], "[fd00::1]:53".parse().unwrap());
        assert_eq!(got[2], "[fe80::1%1]:53".parse().unwrap());
        std::fs::write(&path, "search x\n").unwrap();
        assert_eq!(
            upstreams_from_resolv_conf(&path).unwrap(),
            vec!["127.0.0.1:53".parse().unwrap()]
        );
        assert_eq!(
            upstreams_from_resolv_conf(&dir.path().join("missing")).unwrap(),
            vec!["127.0.0.1:53".parse().unwrap()]
        );
    }
}
