//! The tasks that serve one network's listen address: a UDP loop and a TCP accept loop.
//! Each reads the latest published table and forwarder per query (an `Arc` clone from a
//! `watch`), answers kennel's names inline and forwards the rest in tasks of its own, held
//! in a `JoinSet` so that stopping the loop stops them too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use simple_dns::RCODE;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::answer::{error_reply, respond, Outcome, Transport};
use super::forward::{read_message, Forwarder};
use super::table::Table;

/// Forwarded UDP queries in flight per listen address; more are answered SERVFAIL at
/// once rather than piling up behind a slow upstream.
const MAX_FORWARDS: usize = 256;
/// TCP clients served at once per listen address.
const MAX_TCP_CLIENTS: usize = 64;
/// A TCP client that sends nothing for this long is closed (RFC 7766 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);

/// What a server task reads: the owner publishes, the tasks only borrow the latest.
#[derive(Clone)]
pub struct Snapshots {
    /// The network's names and subnets, replaced whole on each change.
    pub table: watch::Receiver<Arc<Table>>,
    /// The upstreams, shared by all networks.
    pub forwarder: watch::Receiver<Arc<Forwarder>>,
}

impl Snapshots {
    fn table(&self) -> Arc<Table> {
        self.table.borrow().clone()
    }
    fn forwarder(&self) -> Arc<Forwarder> {
        self.forwarder.borrow().clone()
    }
}

/// Serves UDP queries on `sock` until the task is aborted.
pub async fn serve_udp(sock: UdpSocket, snap: Snapshots) {
    let sock = Arc::new(sock);
    let mut forwards = JoinSet::new();
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, src) = tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("dns: receive on {:?}: {e}", sock.local_addr().ok());
                    continue;
                }
            },
            Some(_) = forwards.join_next(), if !forwards.is_empty() => continue,
        };
        let query = &buf[..n];
        let reply = match respond(&snap.table(), src.ip(), query, Transport::Udp) {
            Outcome::Reply(r) => r,
            Outcome::Drop => continue,
            Outcome::Forward { .. } if forwards.len() >= MAX_FORWARDS => {
                error_reply(query, RCODE::ServerFailure)
            }
            Outcome::Forward { udp_limit } => {
                let (sock, fwd, query) = (sock.clone(), snap.forwarder(), query.to_vec());
                forwards.spawn(async move {
                    let reply = match fwd.udp(&query, udp_limit).await {
                        Some(r) => r,
                        None => error_reply(&query, RCODE::ServerFailure),
                    };
                    send(&sock, &reply, src).await;
                });
                continue;
            }
        };
        send(&sock, &reply, src).await;
    }
}

async fn send(sock: &UdpSocket, reply: &[u8], to: SocketAddr) {
    if let Err(e) = sock.send_to(reply, to).await {
        tracing::debug!(%to, "dns: reply: {e}");
    }
}

/// Accepts TCP clients on `listener` until the task is aborted.
pub async fn serve_tcp(listener: TcpListener, snap: Snapshots) {
    let mut clients = JoinSet::new();
    loop {
        let (conn, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("dns: accept on {:?}: {e}", listener.local_addr().ok());
                    // EMFILE and the like: give the system a moment rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = clients.join_next(), if !clients.is_empty() => continue,
        };
        if clients.len() >= MAX_TCP_CLIENTS {
            tracing::debug!(%peer, "dns: too many tcp clients; closing");
            continue;
        }
        clients.spawn(serve_tcp_client(conn, peer, snap.clone()));
    }
}

/// Answers the queries of one TCP client in order until it closes or idles.
async fn serve_tcp_client(mut conn: TcpStream, peer: SocketAddr, snap: Snapshots) {
    loop {
        let query = match tokio::time::timeout(TCP_IDLE, read_message(&mut conn)).await {
            Ok(Ok(q)) => q,
            _ => return,
        };
        let reply = match respond(&snap.table(), peer.ip(), &query, Transport::Tcp) {
            Outcome::Reply(r) => r,
            Outcome::Drop => return,
            Outcome::Forward { .. } => match snap.forwarder().tcp(&query).await {
                Some(r) => r,
                None => error_reply(&query, RCODE::ServerFailure),
            },
        };
        let Ok(len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut msg = Vec::with_capacity(reply.len() + 2);
        msg.extend_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(&reply);
        if conn.write_all(&msg).await.is_err() {
            return;
        }
    }
}
