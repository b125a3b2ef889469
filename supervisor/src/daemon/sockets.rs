//! Sockets held for units (`[[socket]]`): bound once, kept open by the daemon across the
//! service's stops, restarts and crashes, and passed to each run (`LISTEN_FDS`). While the
//! service is down, connections wait in the listening socket's backlog (and datagrams in
//! its buffer) instead of being refused. For a socket-activated unit
//! (`service.activate = "socket"`), a task watches its sockets while it has no process and
//! tells the owner when the first connection or datagram arrives.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use kennel_units::{Listen, Socket, Unit, UnixKind};
use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, SockFlag, SockType};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::Input;

/// A socket that could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("{what} {listen}: {source}")]
pub struct SocketError {
    /// The step: `bind`, `listen`, `chown` ...
    what: &'static str,
    listen: Listen,
    #[source]
    source: io::Error,
}

/// The sockets of every unit that has some and was started (or is socket-activated).
#[derive(Default)]
pub struct HeldSockets {
    units: HashMap<String, Held>,
    /// Socket-activated units whose sockets could not be bound, with the configuration
    /// that failed (reported once).
    failed: HashMap<String, Vec<Socket>>,
}

/// One unit's sockets, as bound from `config`.
struct Held {
    config: Vec<Socket>,
    fds: Vec<OwnedFd>,
    /// The task watching them for a first connection (socket-activated units only).
    watch: Option<AbortHandle>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(w) = self.watch.take() {
            w.abort();
        }
        for s in &self.config {
            if let Listen::Unix { path, .. } = &s.listen {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl HeldSockets {
    /// The sockets of `unit` (bound now if they are not yet, or if its `[[socket]]`s
    /// changed), in its order; empty for a unit without sockets.
    pub fn of(&mut self, unit: &Unit) -> Result<&[OwnedFd], SocketError> {
        if unit.sockets.is_empty() {
            return Ok(&[]);
        }
        self.failed.remove(&unit.name);
        let current = self
            .units
            .get(&unit.name)
            .is_some_and(|h| h.config == unit.sockets);
        if !current {
            // The old ones first: the new ones may take the same addresses.
            self.units.remove(&unit.name);
            let fds = unit
                .sockets
                .iter()
                .map(bind)
                .collect::<Result<Vec<_>, _>>()?;
            self.units.insert(
                unit.name.clone(),
                Held {
                    config: unit.sockets.clone(),
                    fds,
                    watch: None,
                },
            );
        }
        Ok(self.units.get(&unit.name).map_or(&[], |h| &h.fds))
    }

    /// Lets go of the sockets of units that are gone or no longer have them (a reload).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &[Socket]) -> bool) {
        self.units.retain(|name, h| keep(name, &h.config));
    }

    /// Whether a task watches `unit`'s sockets.
    pub fn watched(&self, unit: &str) -> bool {
        self.units.get(unit).is_some_and(|h| h.watch.is_some())
    }

    /// Watch `unit`'s sockets (bound now if need be): the first connection or datagram on
    /// any sends [`Input::SocketActivity`]. Nothing is accepted or read: it is the
    /// service's, once started. A bind that failed is not tried again (nor reported again)
    /// until the unit's sockets change or it is started.
    pub fn watch(
        &mut self,
        unit: &Unit,
        tx: &mpsc::UnboundedSender<Input>,
    ) -> Result<(), SocketError> {
        if self.failed.get(&unit.name) == Some(&unit.sockets) {
            return Ok(());
        }
        let fds = match self.of(unit) {
            Ok(fds) => fds,
            Err(e) => {
                self.failed.insert(unit.name.clone(), unit.sockets.clone());
                return Err(e);
            }
        };
        let copies = fds
            .iter()
            .map(OwnedFd::try_clone)
            .collect::<io::Result<Vec<_>>>()
            .map_err(|source| SocketError {
                what: "watch",
                listen: unit.sockets[0].listen.clone(),
                source,
            })?;
        let tx = tx.clone();
        let name = unit.name.clone();
        let task = tokio::spawn(async move {
            let watched: Vec<AsyncFd<OwnedFd>> = match copies
                .into_iter()
                .map(|fd| {
                    // SAFETY: an OwnedFd stays open on the same description, and returns the
                    // same number, for as long as the AsyncFd that owns it.
                    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
                        .map_err(io::Error::from)
                })
                .collect::<io::Result<_>>()
            {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(unit = %name, "cannot watch the unit's sockets: {e}");
                    return;
                }
            };
            first_of(watched.iter().map(|w| Box::pin(w.readable()))).await;
            let _ = tx.send(Input::SocketActivity { unit: name });
        });
        if let Some(h) = self.units.get_mut(&unit.name) {
            if let Some(old) = h.watch.replace(task.abort_handle()) {
                old.abort();
            }
        }
        Ok(())
    }

    /// Stops watching `unit`'s sockets (it is starting, or its watch fired).
    pub fn unwatch(&mut self, unit: &str) {
        if let Some(w) = self.units.get_mut(unit).and_then(|h| h.watch.take()) {
            w.abort();
        }
    }

    /// Stops every watch (kennel is shutting down).
    pub fn unwatch_all(&mut self) {
        for h in self.units.values_mut() {
            if let Some(w) = h.watch.take() {
                w.abort();
            }
        }
    }

    /// Closes every socket (kennel is done).
    pub fn clear(&mut self) {
        self.units.clear();
    }
}

/// The first of `futures` to complete.
async fn first_of<F: std::future::Future + Unpin>(futures: impl Iterator<Item = F>) {
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(|cx| {
        for f in &mut futures {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Binds (and for a stream or seqpacket socket, listens on) one socket, close-on-exec and
/// blocking, as a service expects it.
fn bind(s: &Socket) -> Result<OwnedFd, SocketError> {
    let err = |what: &'static str| {
        let listen = s.listen.clone();
        move |e: nix::Error| SocketError {
            what,
            listen: listen.clone(),
            source: io::Error::from(e),
        }
    };
    let (family, ty) = match &s.listen {
        Listen::Tcp(a) | Listen::Udp(a) => (
            if a.is_ipv6() {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            },
            if matches!(s.listen, Listen::Tcp(_)) {
                SockType::Stream
            } else {
                SockType::Datagram
            },
        ),
        Listen::Unix { kind, .. } => (
            AddressFamily::Unix,
            match kind {
                UnixKind::Stream => SockType::Stream,
                UnixKind::Datagram => SockType::Datagram,
                UnixKind::Seqpacket => SockType::SeqPacket,
            },
        ),
    };
    let fd = socket::socket(family, ty, SockFlag::SOCK_CLOEXEC, None).map_err(err("socket"))?;
    match &s.listen {
        Listen::Tcp(a) | Listen::Udp(a) => {
            // As systemd does: a restarting kennel rebinds at once despite TIME_WAIT.
            socket::setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(err("SO_REUSEADDR"))?;
            if s.reuse_port {
                socket::setsockopt(&fd, sockopt::ReusePort, &true).map_err(err("SO_REUSEPORT"))?;
            }
            socket::bind(fd.as_raw_fd(), &socket::SockaddrStorage::from(*a))
                .map_err(err("bind"))?;
        }
        Listen::Unix { path, .. } => {
            if s.reuse_port {
                socket::setsockopt(&fd, sockopt::ReusePort, &true).map_err(err("SO_REUSEPORT"))?;
            }
            bind_unix(&fd, path, s).map_err(|(what, source)| SocketError {
                what,
                listen: s.listen.clone(),
                source,
            })?;
        }
    }
    if s.listen.listens() {
        let backlog =
            Backlog::new(i32::try_from(s.backlog).unwrap_or(i32::MAX)).unwrap_or(Backlog::MAXCONN);
        socket::listen(&fd, backlog).map_err(err("listen"))?;
    }
    Ok(fd)
}

/// A Unix socket's file: the directory made, a stale socket file replaced (never another
/// kind of file), then its mode and owner.
fn bind_unix(fd: &OwnedFd, path: &Path, s: &Socket) -> Result<(), (&'static str, io::Error)> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ("create the directory of", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| ("remove the stale", e))?
        }
        Ok(_) => {
            return Err((
                "bind",
                io::Error::other("the path exists and is not a socket"),
            ))
        }
        Err(_) => {}
    }
    let addr = socket::UnixAddr::new(path).map_err(|e| ("bind", io::Error::from(e)))?;
    socket::bind(fd.as_raw_fd(), &addr).map_err(|e| ("bind", io::Error::from(e)))?;
    let owner = |e: String| ("chown", io::Error::other(e));
    let uid = s.user.as_deref().map(|u| id_of(u, false));
    let gid = s.group.as_deref().map(|g| id_of(g, true));
    let (uid, gid) = (
        uid.transpose().map_err(owner)?,
        gid.transpose().map_err(owner)?,
    );
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::chown(path, uid, gid).map_err(|e| ("chown", e))?;
    }
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(s.mode))
        .map_err(|e| ("chmod", e))?;
    Ok(())
}

/// A numeric id, or the id of the user (`group`: the group) of that name.
fn id_of(name: &str, group: bool) -> Result<u32, String> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let what = if group { "group" } else { "user" };
    let found = if group {
        nix::unistd::Group::from_name(name).map(|g| g.map(|g| g.gid.as_raw()))
    } else {
        nix::unistd::User::from_name(name).map(|u| u.map(|u| u.uid.as_raw()))
    };
    match found {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(format!("no {what} {name:?}")),
        Err(e) => Err(format!("look up {what} {name:?}: {e}")),
    }
}
