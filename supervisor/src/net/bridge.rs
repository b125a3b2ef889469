//! A bridge network's links, through rtnetlink (no `ip` process): the bridge with the
//! gateway addresses, up; per container a veth pair, the host end `kv-...` on the bridge,
//! the peer made right inside the container's namespace as `eth0` with its addresses and
//! the default route via the gateway. Synchronous: each [`Netlink`] owns a current-thread
//! runtime, so these run on a thread of their own, never on the daemon's runtime thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc;

use futures_util::stream::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth,
    RouteMessageBuilder,
};

use super::netns::{self, NetnsError};

/// The prefix of the host end of every container's veth (`kv-` + 12 hex digits).
pub const VETH_PREFIX: &str = "kv-";

/// A netlink request that failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("open a netlink socket: {0}")]
    Open(io::Error),
    #[error("{what}: {source}")]
    Request { what: String, source: io::Error },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

impl LinkError {
    fn errno(&self) -> Option<i32> {
        match self {
            LinkError::Request { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn request(what: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let what = what.into();
    move |e| LinkError::Request {
        what,
        source: match e {
            rtnetlink::Error::NetlinkError(m) => m.to_io(),
            other => io::Error::other(other.to_string()),
        },
    }
}

/// The host end's name of `unit`'s veth: `kv-` and 12 hex digits of a hash of the name
/// (stable, so that a crash's leftover is found by name too).
pub fn veth_name(unit: &str) -> String {
    // FNV-1a 64.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in unit.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{VETH_PREFIX}{:012x}", h & 0xffff_ffff_ffff)
}

/// What the bridge of a network is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: String,
    pub gateway: (Ipv4Addr, u8),
    pub gateway6: Option<(Ipv6Addr, u8)>,
    pub mtu: Option<u32>,
}

impl BridgeSpec {
    pub fn of(def: &kennel_units::NetworkDef) -> BridgeSpec {
        BridgeSpec {
            name: def.bridge.clone(),
            gateway: (def.gateway, def.subnet.prefix),
            gateway6: def.gateway6.zip(def.subnet6.map(|s| s.prefix)),
            mtu: def.mtu,
        }
    }
}

/// One container's attachment: its namespace, its veth, its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachSpec {
    pub netns: PathBuf,
    pub veth: String,
    pub bridge: BridgeSpec,
    pub addr: (Ipv4Addr, u8),
    pub addr6: Option<(Ipv6Addr, u8)>,
    /// The bridge's index when it was made or checked by an earlier attach: it is not
    /// checked again (if it is gone, the veth cannot join it, and it is made again).
    pub bridge_index: Option<u32>,
}

/// What [`attach`] found of the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attachment {
    /// The bridge's index.
    pub bridge: u32,
    /// Whether the bridge was checked (made if missing) by this attach, rather than
    /// taken from [`AttachSpec::bridge_index`].
    pub checked: bool,
}

/// A netlink connection in the namespace of the thread that opened it, and the runtime
/// its requests run on.
pub struct Netlink {
    rt: Rc<tokio::runtime::Runtime>,
    handle: Handle,
}

impl Netlink {
    /// A connection in the calling thread's network namespace (a socket stays in the
    /// namespace it was made in, whatever its thread joins later).
    pub fn open() -> Result<Netlink, LinkError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(LinkError::Open)?;
        let handle = rt.block_on(async {
            let (conn, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(conn);
            Ok::<_, io::Error>(handle)
        });
        Ok(Netlink {
            handle: handle.map_err(LinkError::Open)?,
            rt: Rc::new(rt),
        })
    }

    /// A second connection on the same runtime, in the calling thread's network namespace
    /// now, and the task that drives it ([`Netlink::close`] ends it).
    fn another(&self) -> Result<(Netlink, tokio::task::JoinHandle<()>), LinkError> {
        let _in_rt = self.rt.enter();
        let (conn, handle, _) = rtnetlink::new_connection().map_err(LinkError::Open)?;
        let task = self.rt.spawn(conn);
        Ok((
            Netlink {
                rt: self.rt.clone(),
                handle,
            },
            task,
        ))
    }

    /// Ends a connection made by [`Netlink::another`]: its socket is closed on return.
    fn close(self, task: tokio::task::JoinHandle<()>) {
        task.abort();
        let _ = self.rt.block_on(task);
    }

    /// The index of link `name`, if it exists.
    pub fn index(&self, name: &str) -> Result<Option<u32>, LinkError> {
        let found: Result<Vec<LinkMessage>, _> = self.rt.block_on(
            self.handle
                .link()
                .get()
                .match_name(name.to_string())
                .execute()
                .try_collect(),
        );
        match found {
            Ok(msgs) => Ok(msgs.first().map(|m| m.header.index)),
            Err(rtnetlink::Error::NetlinkError(m))
                if m.to_io().raw_os_error() == Some(libc::ENODEV) =>
            {
                Ok(None)
            }
            Err(e) => Err(request(format!("find link {name}"))(e)),
        }
    }

    fn set_up(&self, index: u32, what: &str) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.rt
            .block_on(self.handle.link().set(msg).execute())
            .map_err(request(format!("bring {what} up")))
    }

    /// `ip addr replace`; an IPv6 address without duplicate address detection (`nodad`:
    /// kennel hands out each address once, and DAD would leave it tentative, unusable, for
    /// a second or more after the start).
    fn add_address(
        &self,
        index: u32,
        addr: IpAddr,
        prefix: u8,
        what: &str,
    ) -> Result<(), LinkError> {
        let mut req = self.handle.address().add(index, addr, prefix).replace();
        if addr.is_ipv6() {
            req.message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        self.rt
            .block_on(req.execute())
            .map_err(request(format!("add {addr}/{prefix} to {what}")))
    }

    /// Makes the bridge if it is missing, with its gateway addresses (replaced: no error if
    /// there) and mtu, and brings it up. Returns its index.
    pub fn ensure_bridge(&self, b: &BridgeSpec) -> Result<u32, LinkError> {
        let index = match self.index(&b.name)? {
            Some(i) => i,
            None => {
                // A MAC address of its own: a bridge without one takes the lowest of its
                // ports', so a container attached later with a lower one would change the
                // gateway's MAC under the neighbours' ARP caches (their packets to the
                // gateway, DNS included, lost until the entry goes stale).
                let mut msg = LinkBridge::new(&b.name).address(bridge_mac(&b.name).to_vec());
                if let Some(mtu) = b.mtu {
                    msg = msg.mtu(mtu);
                }
                let added = self
                    .rt
                    .block_on(self.handle.link().add(msg.build()).execute())
                    .map_err(request(format!("create bridge {}", b.name)));
                match added {
                    Err(e) if e.errno() == Some(libc::EEXIST) => {}
                    other => other?,
                }
                self.index(&b.name)?.ok_or_else(|| LinkError::Request {
                    what: format!("find bridge {} just made", b.name),
                    source: io::Error::from_raw_os_error(libc::ENODEV),
                })?
            }
        };
        self.add_address(index, IpAddr::V4(b.gateway.0), b.gateway.1, &b.name)?;
        if let Some((g6, p6)) = b.gateway6 {
            self.add_address(index, IpAddr::V6(g6), p6, &b.name)?;
        }
        self.set_up(index, &b.name)?;
        Ok(index)
    }

    /// Deletes link `name`; nothing when it is not there.
    pub fn delete(&self, name: &str) -> Result<(), LinkError> {
        let Some(index) = self.index(name)? else {
            return Ok(());
        };
        match self
            .rt
            .block_on(self.handle.link().del(index).execute())
            .map_err(request(format!("delete link {name}")))
        {
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }
}

/// The thread, kept from the first attach to the daemon's end, that makes the containers'
/// namespaces and veths, with its netlink connection in the daemon's namespace: one thread
/// and one socket for every attach, rather than a thread, a runtime and a socket each. It
/// moves into each new namespace only to pin it and open a socket there, and comes back
/// (`setns`); should it not come back, it ends and the next attach starts another.
#[derive(Default)]
pub struct Links {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Job = Box<dyn FnOnce(&Worker) + Send>;

fn thread_gone() -> LinkError {
    LinkError::Open(io::Error::other("the netlink thread ended"))
}

impl Links {
    /// Makes `a.netns`, the bridge if missing (or not known yet: [`AttachSpec::bridge_index`]),
    /// and the veth pair, and configures `eth0` inside: addresses, up, default route(s) via
    /// the gateway. On failure, what it made is removed again.
    pub fn attach(&mut self, a: AttachSpec) -> Result<Attachment, LinkError> {
        let spec = a.clone();
        let done = self.run(move |w| w.attach(&spec)).and_then(|r| r);
        if done.is_err() {
            let _ = detach(a.netns.clone(), a.veth.clone());
        }
        done
    }

    /// Runs `f` on the thread (started if need be) and waits for its result.
    fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&Worker) -> T + Send + 'static,
    ) -> Result<T, LinkError> {
        let (tx, rx) = mpsc::channel();
        let mut job: Job = Box::new(move |w| {
            let _ = tx.send(f(w));
        });
        for _ in 0..2 {
            match self.jobs()?.send(job) {
                Ok(()) => return rx.recv().map_err(|_| thread_gone()),
                // The thread ended (it could not come back to the daemon's namespace): a
                // new one.
                Err(mpsc::SendError(back)) => {
                    job = back;
                    self.stop();
                }
            }
        }
        Err(thread_gone())
    }

    fn jobs(&mut self) -> Result<&mpsc::Sender<Job>, LinkError> {
        if self.jobs.is_none() {
            let (tx, rx) = mpsc::channel::<Job>();
            let (opened_tx, opened_rx) = mpsc::channel();
            let thread = netns::spawn_thread(move || {
                let worker = match Worker::open() {
                    Ok(w) => {
                        let _ = opened_tx.send(Ok(()));
                        w
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    job(&worker);
                    if worker.lost.get() {
                        return;
                    }
                }
            })?;
            opened_rx.recv().map_err(|_| thread_gone())??;
            self.thread = Some(thread);
            self.jobs = Some(tx);
        }
        self.jobs.as_ref().ok_or_else(thread_gone)
    }

    fn stop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The state of the [`Links`] thread.
struct Worker {
    host: Netlink,
    /// The daemon's network namespace, to come back to.
    home: std::fs::File,
    /// Set when the thread could not come back: it ends.
    lost: std::cell::Cell<bool>,
}

impl Worker {
    fn open() -> Result<Worker, LinkError> {
        let path = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
        let home = std::fs::File::open(&path).map_err(|source| LinkError::Request {
            what: format!("open {path}"),
            source,
        })?;
        Ok(Worker {
            host: Netlink::open()?,
            home,
            lost: std::cell::Cell::new(false),
        })
    }

    /// Makes and pins a namespace at `path` and opens a connection in it; the thread is
    /// back in the daemon's namespace on return, whatever happened.
    fn new_netns(&self, path: &Path) -> Result<(Netlink, tokio::task::JoinHandle<()>), LinkError> {
        let made = netns::create_here(path)
            .map_err(LinkError::from)
            .and_then(|()| self.host.another());
        if let Err(e) = nix::sched::setns(&self.home, nix::sched::CloneFlags::CLONE_NEWNET) {
            self.lost.set(true);
            return Err(LinkError::Request {
                what: "come back to the daemon's network namespace".into(),
                source: e.into(),
            });
        }
        made
    }

    fn attach(&self, a: &AttachSpec) -> Result<Attachment, LinkError> {
        let (inner, task) = self.new_netns(&a.netns)?;
        let done = self.configure(a, &inner);
        inner.close(task);
        done
    }

    /// [`Links::attach`] once the namespace is made, `inner` a connection in it.
    fn configure(&self, a: &AttachSpec, inner: &Netlink) -> Result<Attachment, LinkError> {
        let t0 = std::time::Instant::now();
        let host = &self.host;
        let mut found = match a.bridge_index {
            Some(bridge) => Attachment {
                bridge,
                checked: false,
            },
            None => Attachment {
                bridge: host.ensure_bridge(&a.bridge)?,
                checked: true,
            },
        };
        let t1 = std::time::Instant::now();
        inner.set_up(1, "lo")?;
        let ns = std::fs::File::open(&a.netns).map_err(|source| LinkError::Request {
            what: format!("open {}", a.netns.display()),
            source,
        })?;
        let add_veth = |bridge: u32| {
            let mut peer = LinkMessageBuilder::<LinkUnspec>::new()
                .name("eth0".to_string())
                .append_extra_attribute(LinkAttribute::NetNsFd(ns.as_raw_fd()));
            if let Some(mtu) = a.bridge.mtu {
                peer = peer.mtu(mtu);
            }
            let mut veth = LinkVeth::new(&a.veth, "eth0")
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
                .controller(bridge)
                .up();
            if let Some(mtu) = a.bridge.mtu {
                veth = veth.mtu(mtu);
            }
            host.rt
                .block_on(host.handle.link().add(veth.build()).execute())
                .map_err(request(format!(
                    "create veth {} on {}",
                    a.veth, a.bridge.name
                )))
        };
        let mut added = add_veth(found.bridge);
        // A leftover of a run whose stop never finished (a crash): removed, then again.
        if matches!(&added, Err(e) if e.errno() == Some(libc::EEXIST)) {
            host.delete(&a.veth)?;
            added = add_veth(found.bridge);
        }
        // The bridge known from an earlier attach is gone (removed by hand): made again.
        if added.is_err() && !found.checked {
            found = Attachment {
                bridge: host.ensure_bridge(&a.bridge)?,
                checked: true,
            };
            added = add_veth(found.bridge);
        }
        added?;
        drop(ns);
        // Hairpin mode on the veth's bridge port: with br_netfilter, a container reaching its
        // own published port through a host address gets its packets back through the port
        // they came in by, which a bridge does not do otherwise (as Docker without its proxy).
        // Sent as RTM_NEWLINK (`change`, what `ip link set DEV type bridge_slave hairpin on`
        // sends): the kernel applies a port's IFLA_INFO_SLAVE_DATA only there; an RTM_SETLINK
        // (rtnetlink's `set`) is acknowledged but leaves the port's options as they were.
        let port = host.index(&a.veth)?.ok_or_else(|| LinkError::Request {
            what: format!("find veth {} just made", a.veth),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })?;
        host.rt
            .block_on(
                host.handle
                    .link()
                    .change(LinkBridgePort::new(port).hairpin(true).build())
                    .execute(),
            )
            .map_err(request(format!("set hairpin mode on {}", a.veth)))?;
        let eth0 = inner.index("eth0")?.ok_or_else(|| LinkError::Request {
            what: format!("find eth0 in {}", a.netns.display()),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })?;
        inner.add_address(eth0, IpAddr::V4(a.addr.0), a.addr.1, "eth0")?;
        if let Some((v6, p6)) = a.addr6 {
            inner.add_address(eth0, IpAddr::V6(v6), p6, "eth0")?;
        }
        inner.set_up(eth0, "eth0")?;
        let gw = a.bridge.gateway.0;
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gw)
            .output_interface(eth0)
            .build();
        inner
            .rt
            .block_on(inner.handle.route().add(route).replace().execute())
            .map_err(request(format!("default route via {gw}")))?;
        if let (Some(_), Some((g6, _))) = (a.addr6, a.bridge.gateway6) {
            let route = RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(g6)
                .output_interface(eth0)
                .build();
            inner
                .rt
                .block_on(inner.handle.route().add(route).replace().execute())
                .map_err(request(format!("default route via {g6}")))?;
        }
        tracing::debug!(
            "{}: bridge {:?}, veth and eth0 {:?}",
            a.veth,
            t1 - t0,
            t1.elapsed()
        );
        Ok(found)
    }
}

/// A pinned namespace at `netns_path` with `lo` up and nothing else (a CNI unit's: the
/// plugins configure it). One left by a crash is replaced.
pub fn create_netns(netns_path: PathBuf) -> Result<(), LinkError> {
    netns::on_thread(move || -> Result<(), LinkError> {
        netns::remove(&netns_path)?;
        netns::create_here(&netns_path)?;
        Netlink::open()?.set_up(1, "lo")
    })?
}

/// Removes a container's veth (both ends go) and its pinned namespace. Either may be gone
/// already.
pub fn detach(netns_path: PathBuf, veth: String) -> Result<(), LinkError> {
    netns::on_thread(move || detach_here(&netns_path, &veth))?
}

/// [`detach`] on a thread of its own, not waited for: the caller joins the handle later
/// (deleting a netdevice waits for RCU grace periods in the kernel, milliseconds).
pub fn detach_in_background(
    netns_path: PathBuf,
    veth: String,
) -> Result<std::thread::JoinHandle<Result<(), LinkError>>, LinkError> {
    Ok(netns::spawn_thread(move || {
        detach_here(&netns_path, &veth)
    })?)
}

fn detach_here(netns_path: &Path, veth: &str) -> Result<(), LinkError> {
    let t0 = std::time::Instant::now();
    let host = Netlink::open()?;
    let deleted = host.delete(veth);
    let t1 = std::time::Instant::now();
    netns::remove(netns_path)?;
    tracing::debug!(
        "{veth}: veth deleted in {:?}, netns removed in {:?}",
        t1 - t0,
        t1.elapsed()
    );
    deleted
}

/// Deletes link `name` (a bridge of a network that is gone); nothing when it is not there.
pub fn delete_link(name: String) -> Result<(), LinkError> {
    netns::on_thread(move || Netlink::open()?.delete(&name))?
}

/// Removes what crashed runs left: each pinned namespace under `netns_dir` whose unit is
/// not in `keep` (units attached now), and that unit's veth. Only veths of units with a
/// namespace file here are touched (a namespace file is made before its veth): the veths
/// of another kennel in the same network namespace, with another state directory, are
/// not. Returns what was removed, for the log.
pub fn remove_leftovers(netns_dir: &Path, keep: &[String]) -> Result<Vec<String>, LinkError> {
    let dir = netns_dir.to_path_buf();
    let keep = keep.to_vec();
    netns::on_thread(move || -> Result<Vec<String>, LinkError> {
        let host = Netlink::open()?;
        let mut removed = Vec::new();
        for unit in netns::list(&dir) {
            if keep.contains(&unit) {
                continue;
            }
            let veth = veth_name(&unit);
            if host.index(&veth)?.is_some() {
                host.delete(&veth)?;
                removed.push(format!("veth {veth}"));
            }
            netns::remove(&dir.join(&unit))?;
            removed.push(format!("netns {unit}"));
        }
        Ok(removed)
    })?
}

/// The fixed MAC address of the bridge `name`: locally administered, unicast, the same
/// for the same name (FNV-1a of the name).
pub fn bridge_mac(name: &str) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let x = h.to_be_bytes();
    [0x02, x[3], x[4], x[5], x[6], x[7]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_and_differ() {
        // Fixed: integration/networks.rs computes it too, and a crash's leftover is found by it.
        assert_eq!(veth_name("ghost"), "kv-bff88ee6fed0");
        assert_eq!(veth_name("ghost+1"), "kv-7453b50db710");
        let a = veth_name("web");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("kv-"));
        assert_eq!(a, veth_name("web"));
        assert_ne!(a, veth_name("web2"));
    }

    #[test]
    fn a_bridge_mac_is_local_unicast_and_stable_per_name() {
        let a = bridge_mac("kennel0");
        assert_eq!(a[0] & 0x03, 0x02, "locally administered, unicast: {a:02x?}");
        assert_eq!(a, bridge_mac("kennel0"));
        assert_ne!(a, bridge_mac("kbr-back"));
    }
}
