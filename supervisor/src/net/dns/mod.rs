//! The name server of kennel's networks (Docker's 127.0.0.11, podman's aardvark-dns): on
//! each network's gateway address it answers the names of the units on that network (unit
//! names and aliases, bare or under `dns.kennel`, A and AAAA, PTR for their addresses) and
//! forwards everything else to the host's resolvers.
//!
//! [`Dns`] is owned by the daemon's one state-owning task; it keeps each network's table
//! and publishes an immutable snapshot (`Arc<Table>`) through a `tokio::sync::watch` at
//! each change, which the network's server tasks read per query: no lock, and an update is
//! seen by the next query.
//!
//! ```ignore
//! let mut dns = Dns::new(upstreams_from_resolv_conf(Path::new("/etc/resolv.conf"))?);
//! dns.serve_network("backend", gateway, 53, vec![(subnet, 24)]).await?;
//! dns.set("backend", "web", vec![addr]);
//! ```

mod answer;
mod bind;
mod forward;
mod server;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use forward::{upstreams_from_resolv_conf, DEFAULT_TIMEOUT};

use forward::Forwarder;
use server::Snapshots;
use table::Table;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("dns for network {network}: bind {proto} {addr}: {source}")]
    Bind {
        network: String,
        proto: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("read {path}: {source}")]
    ResolvConf {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The DNS servers of all of kennel's networks.
pub struct Dns {
    /// The upstreams and their timeout, published to every network's tasks.
    forwarder: watch::Sender<Arc<Forwarder>>,
    networks: HashMap<String, Network>,
    /// Tasks of stopped networks, aborted but maybe not yet dropped (an abort takes effect
    /// at the runtime's next turn): the next bind waits for them, so that their sockets
    /// are closed and the same address can be served again at once.
    stopping: Vec<JoinHandle<()>>,
}

/// One network: the owner's copy of its table, the channel its tasks read the published
/// copy from, and the listen addresses it is served on.
struct Network {
    table: Table,
    published: watch::Sender<Arc<Table>>,
    listeners: Vec<Listener>,
    /// Upstreams of this network's own (its file's `dns`), instead of the common ones.
    forwarder: Option<watch::Sender<Arc<Forwarder>>>,
}

/// The UDP and TCP tasks of one listen address; dropping it stops them (and the
/// forwards and TCP clients they hold).
struct Listener {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Dns {
    /// A server that forwards other names to `upstreams` (tried in order, each for
    /// [`DEFAULT_TIMEOUT`]).
    pub fn new(upstreams: Vec<SocketAddr>) -> Dns {
        let (forwarder, _) = watch::channel(Arc::new(Forwarder {
            upstreams,
            timeout: DEFAULT_TIMEOUT,
        }));
        Dns {
            forwarder,
            networks: HashMap::new(),
            stopping: Vec::new(),
        }
    }

    /// Replaces the upstreams (the host's resolv.conf changed); seen by the next query.
    // The daemon reads the upstreams once and serves through serve_network_now; the
    // tests use these.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn set_upstreams(&mut self, upstreams: Vec<SocketAddr>) {
        self.forwarder.send_modify(|f| {
            *f = Arc::new(Forwarder {
                upstreams,
                timeout: f.timeout,
            })
        });
    }

    /// How long each upstream gets before the next is asked (SERVFAIL after the last).
    // The daemon reads the upstreams once and serves through serve_network_now; the
    // tests use these.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.forwarder.send_modify(|f| {
            *f = Arc::new(Forwarder {
                upstreams: f.upstreams.clone(),
                timeout,
            })
        });
    }

    /// Binds UDP and TCP on listen:port for one network and serves it (tasks spawned on
    /// the current runtime). The address need not be assigned yet (IP_FREEBIND): queries
    /// are answered once it is. A network may be served on several addresses (its IPv4 and
    /// IPv6 gateways); serving an address again only replaces the subnets. `subnets` are
    /// all of the network's (they replace those of an earlier call, for every address):
    /// clients from outside them are refused.
    // The daemon reads the upstreams once and serves through serve_network_now; the
    // tests use these.
    #[cfg_attr(not(test), allow(dead_code))]
    pub async fn serve_network(
        &mut self,
        network: &str,
        listen: IpAddr,
        port: u16,
        subnets: Vec<(IpAddr, u8)>,
    ) -> Result<(), DnsError> {
        for task in self.stopping.drain(..) {
            // Cancelled: the error says so, nothing else to learn from it.
            let _ = task.await;
        }
        self.serve_network_now(network, listen, port, subnets)
    }

    /// [`Dns::serve_network`] for a caller that cannot await (the daemon's synchronous
    /// start path): the same, except that the tasks of a network stopped just before are
    /// not waited for (their sockets close at the runtime's next turn; serving the same
    /// address again at once can then fail to bind). Must be called within the runtime.
    pub fn serve_network_now(
        &mut self,
        network: &str,
        listen: IpAddr,
        port: u16,
        subnets: Vec<(IpAddr, u8)>,
    ) -> Result<(), DnsError> {
        let addr = SocketAddr::new(listen, port);
        self.stopping.retain(|t| !t.is_finished());
        let common = self.forwarder.subscribe();
        let net = self.network(network);
        let forwarder = match &net.forwarder {
            Some(own) => own.subscribe(),
            None => common,
        };
        net.table.set_subnets(subnets);
        net.publish();
        if net.listeners.iter().any(|l| l.addr == addr) {
            return Ok(());
        }
        let bind_err = |proto, source| DnsError::Bind {
            network: network.to_owned(),
            proto,
            addr,
            source,
        };
        let udp = bind::udp(addr).map_err(|e| bind_err("udp", e))?;
        // Port 0 (tests): TCP on the port UDP got.
        let addr = udp.local_addr().map_err(|e| bind_err("udp", e))?;
        let tcp = bind::tcp(addr).map_err(|e| bind_err("tcp", e))?;
        let snap = Snapshots {
            table: net.published.subscribe(),
            forwarder,
        };
        let tasks = vec![
            tokio::spawn(server::serve_udp(udp, snap.clone())),
            tokio::spawn(server::serve_tcp(tcp, snap)),
        ];
        tracing::debug!(network, %addr, "dns: serving");
        net.listeners.push(Listener { addr, tasks });
        Ok(())
    }

    /// The addresses a network is served on (with the port each got).
    pub fn listen_addrs(&self, network: &str) -> Vec<SocketAddr> {
        self.networks
            .get(network)
            .map(|n| n.listeners.iter().map(|l| l.addr).collect())
            .unwrap_or_default()
    }

    /// Gives `network` upstreams of its own (`Some`) or the common ones (`None`), with the
    /// common timeout. Applies to the addresses it is served on from then on: call it
    /// before [`Dns::serve_network`].
    pub fn set_network_upstreams(&mut self, network: &str, upstreams: Option<Vec<SocketAddr>>) {
        let timeout = self.forwarder.borrow().timeout;
        self.network(network).forwarder =
            upstreams.map(|upstreams| watch::channel(Arc::new(Forwarder { upstreams, timeout })).0);
    }

    /// Stops serving a network and forgets its names.
    pub fn stop_network(&mut self, network: &str) {
        let Some(mut net) = self.networks.remove(network) else {
            return;
        };
        for listener in &mut net.listeners {
            for task in listener.tasks.drain(..) {
                task.abort();
                self.stopping.push(task);
            }
        }
        tracing::debug!(network, "dns: stopped");
    }

    /// Replaces NAME's addresses on that network (unit names and aliases); no address
    /// removes it. Seen by the next query.
    pub fn set(&mut self, network: &str, name: &str, addrs: Vec<IpAddr>) {
        let net = self.network(network);
        net.table.set(name, addrs);
        net.publish();
    }

    pub fn remove(&mut self, network: &str, name: &str) {
        if let Some(net) = self.networks.get_mut(network) {
            net.table.remove(name);
            net.publish();
        }
    }

    fn network(&mut self, name: &str) -> &mut Network {
        self.networks.entry(name.to_owned()).or_insert_with(|| {
            let table = Table::default();
            let (published, _) = watch::channel(Arc::new(table.clone()));
            Network {
                table,
                published,
                listeners: Vec::new(),
                forwarder: None,
            }
        })
    }
}

impl Network {
    fn publish(&self) {
        self.published.send_replace(Arc::new(self.table.clone()));
    }
}
