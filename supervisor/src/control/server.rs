//! The daemon side of the control socket: accept, check the peer is root, read one JSON
//! request per line, hand it to the state-owning task and write its reply back.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::protocol::{
    ErrorKind, ProtoError, Reply, ReplyBody, Request, RequestBody, MAX_REQUEST_BYTES,
    PROTOCOL_VERSION,
};

/// A request on its way to the state-owning task, with the channel its reply goes back on.
pub struct ControlRequest {
    pub body: RequestBody,
    /// Dropped without a send only if the daemon is going away; the client then sees EOF.
    pub reply: oneshot::Sender<Answer>,
}

/// What the owner answers: a reply line, or an exec session to hand over.
pub enum Answer {
    Reply(Reply),
    /// A reply already encoded, with its newline (a status listing, see
    /// [`super::protocol::StatusEncoder`]).
    Encoded(Vec<u8>),
    Exec(ExecSession),
}

impl From<Reply> for Answer {
    fn from(r: Reply) -> Self {
        Answer::Reply(r)
    }
}

/// A started `exec`: the client's ends of its stdio, and where its end is announced.
pub struct ExecSession {
    /// The helper's pid (its own process group): SIGHUP goes there if the client leaves.
    pub pid: i32,
    pub fds: Vec<OwnedFd>,
    /// Resolves to `ExecExited` when the process has ended.
    pub done: oneshot::Receiver<ReplyBody>,
}

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("create socket directory {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("another kennel is already listening on {0}; stop it first or use --socket")]
    InUse(PathBuf),
    #[error("bind control socket {path}: {source}")]
    Bind { path: PathBuf, source: io::Error },
}

/// Bind the socket at `path` (mode 0600, or 0660 owned by `group`; parent created 0755).
/// A stale socket file left by a dead daemon is replaced; a live one is an error.
pub fn bind(path: &Path, group: Option<u32>) -> Result<UnixListener, ServerError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ServerError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ServerError::InUse(path.to_path_buf()));
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path).map_err(|source| ServerError::Bind {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    let bind_err = |source| ServerError::Bind {
        path: path.to_path_buf(),
        source,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(bind_err)?;
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(bind_err)?;
    }
    Ok(listener)
}

/// Accept connections until the task is dropped; each connection runs in its own task and
/// holds a clone of `alive`, so that the owner can wait (for the receiver to see `None`)
/// until every reply has been written.
pub async fn serve(
    listener: UnixListener,
    to_owner: mpsc::Sender<ControlRequest>,
    alive: mpsc::Sender<()>,
    group: Option<u32>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let alive = alive.clone();
                let to_owner = to_owner.clone();
                tokio::spawn(async move {
                    connection(stream, to_owner, group).await;
                    drop(alive);
                });
            }
            Err(e) => {
                warn!("control socket accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Whether a peer may use the socket: root, or a process of `--socket-group` (its group,
/// or one of its supplementary groups as the kernel has them: what let it open the 0660
/// socket file in the first place). Nothing here blocks the event loop: the groups come
/// with the connection (`SO_PEERGROUPS`); only on kernels without it (before 4.13) are
/// the user's groups looked up (NSS, which may go to the network), on the blocking pool.
async fn allowed(stream: &UnixStream, uid: u32, gid: u32, group: Option<u32>) -> bool {
    if uid == 0 {
        return true;
    }
    let Some(g) = group else { return false };
    if gid == g {
        return true;
    }
    match peer_groups(stream) {
        Ok(groups) => groups.contains(&g),
        Err(e) => {
            debug!("control socket: SO_PEERGROUPS: {e}; looking up uid {uid}'s groups");
            tokio::task::spawn_blocking(move || user_in_group(uid, g))
                .await
                .unwrap_or(false)
        }
    }
}

/// The supplementary groups of the process at the other end (`SO_PEERGROUPS`).
fn peer_groups(stream: &UnixStream) -> io::Result<Vec<u32>> {
    const GID: usize = std::mem::size_of::<libc::gid_t>();
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * GID) as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `groups`, which holds that many.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let len = len as usize / GID;
        if rc == 0 {
            groups.truncate(len);
            return Ok(groups);
        }
        let e = io::Error::last_os_error();
        // ERANGE: `len` is what it takes.
        if e.raw_os_error() == Some(libc::ERANGE) && len > groups.len() {
            groups.resize(len, 0);
            continue;
        }
        return Err(e);
    }
}

/// Whether user `uid` is in group `g` by the user and group databases (NSS: blocking).
fn user_in_group(uid: u32, g: u32) -> bool {
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    nix::unistd::getgrouplist(&name, user.gid)
        .map(|gs| gs.iter().any(|x| x.as_raw() == g))
        .unwrap_or(false)
}

async fn connection(
    stream: UnixStream,
    to_owner: mpsc::Sender<ControlRequest>,
    group: Option<u32>,
) {
    let (uid, gid, pid) = match stream.peer_cred() {
        Ok(c) => (c.uid(), c.gid(), c.pid().unwrap_or(0)),
        Err(e) => {
            warn!("control socket: cannot read peer credentials: {e}");
            return;
        }
    };
    let admitted = allowed(&stream, uid, gid, group).await;
    let (read, mut write) = stream.into_split();
    if !admitted {
        warn!(
            uid,
            pid, "control socket: refused a client that is not root"
        );
        let err = ProtoError::new(
            ErrorKind::PermissionDenied,
            match group {
                None => format!("kennel's control socket is root-only; uid {uid} is refused"),
                Some(g) => format!(
                    "kennel's control socket is for root and group {g}; uid {uid} is refused"
                ),
            },
        );
        let _ = send(&mut write, &Reply::Error(err)).await;
        return;
    }
    let mut reader = BufReader::new(read);
    loop {
        let mut line = Vec::new();
        let limit = MAX_REQUEST_BYTES as u64 + 1;
        match (&mut reader).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                debug!("control socket read: {e}");
                return;
            }
        }
        if line.len() > MAX_REQUEST_BYTES {
            let err = ProtoError::new(
                ErrorKind::TooLarge,
                format!("request longer than {MAX_REQUEST_BYTES} bytes"),
            );
            let _ = send(&mut write, &Reply::Error(err)).await;
            return;
        }
        let reply = match parse(&line) {
            Ok(body) => {
                if !matches!(
                    body,
                    RequestBody::Status { .. }
                        | RequestBody::LogPath { .. }
                        | RequestBody::Paths
                        | RequestBody::Networks { .. }
                ) {
                    info!(uid, pid, "control request: {body}");
                }
                let (tx, rx) = oneshot::channel();
                if to_owner
                    .send(ControlRequest { body, reply: tx })
                    .await
                    .is_err()
                {
                    return;
                }
                match rx.await {
                    Ok(Answer::Reply(reply)) => reply,
                    Ok(Answer::Encoded(bytes)) => {
                        if write.write_all(&bytes).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Ok(Answer::Exec(session)) => {
                        exec_session(&mut reader, &mut write, session).await;
                        return;
                    }
                    Err(_) => return,
                }
            }
            Err(e) => Reply::Error(e),
        };
        if send(&mut write, &reply).await.is_err() {
            return;
        }
    }
}

fn parse(line: &[u8]) -> Result<RequestBody, ProtoError> {
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| ProtoError::new(ErrorKind::BadRequest, format!("not JSON: {e}")))?;
    let version = value.get("version").and_then(|v| v.as_u64());
    if version != Some(u64::from(PROTOCOL_VERSION)) {
        return Err(ProtoError::new(
            ErrorKind::Version,
            format!(
                "protocol version {} is not supported; this kennel speaks version {PROTOCOL_VERSION}",
                version.map_or("missing".to_string(), |v| v.to_string())
            ),
        ));
    }
    serde_json::from_value::<Request>(value)
        .map(|r| r.body)
        .map_err(|e| ProtoError::new(ErrorKind::BadRequest, format!("bad request: {e}")))
}

/// Hand the stdio over, then wait for the end of the process, or of the client (which
/// ends the session with SIGHUP).
async fn exec_session(
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    session: ExecSession,
) {
    let started = Reply::Ok(ReplyBody::ExecStarted { pid: session.pid });
    if let Err(e) = send_with_fds(write, &started, &session.fds).await {
        debug!("exec: handing the stdio to the client: {e}");
        hangup(session.pid);
    }
    drop(session.fds);
    let mut done = session.done;
    let mut client_gone = false;
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            end = &mut done => {
                let body = end.unwrap_or(ReplyBody::ExecExited {
                    code: 125,
                    error: Some("kennel lost track of the session".into()),
                });
                if !client_gone {
                    let _ = send(write, &Reply::Ok(body)).await;
                }
                return;
            }
            n = reader.read(&mut buf), if !client_gone => {
                if matches!(n, Ok(0) | Err(_)) {
                    client_gone = true;
                    hangup(session.pid);
                }
            }
        }
    }
}

fn hangup(pid: i32) {
    // SAFETY: kill(2) on the exec session's process group.
    unsafe {
        libc::kill(-pid, libc::SIGHUP);
        libc::kill(-pid, libc::SIGCONT);
    }
}

async fn send_with_fds(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &Reply,
    fds: &[OwnedFd],
) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let mut bytes = serde_json::to_vec(reply).map_err(io::Error::other)?;
    bytes.push(b'\n');
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let stream: &UnixStream = write.as_ref();
    let mut sent = 0;
    while sent < bytes.len() {
        stream.writable().await?;
        let res = stream.try_io(tokio::io::Interest::WRITABLE, || {
            let iov = [std::io::IoSlice::new(&bytes[sent..])];
            let cmsg = [ControlMessage::ScmRights(&raw)];
            let cmsgs: &[ControlMessage] = if sent == 0 { &cmsg } else { &[] };
            sendmsg::<()>(
                stream.as_raw_fd(),
                &iov,
                cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map_err(io::Error::from)
        });
        match res {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(reply).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_rejects_bad_input() {
        assert_eq!(parse(b"{nope").unwrap_err().kind, ErrorKind::BadRequest);
        assert_eq!(
            parse(br#"{"cmd":"status"}"#).unwrap_err().kind,
            ErrorKind::Version
        );
        assert_eq!(
            parse(br#"{"version":7,"cmd":"status"}"#).unwrap_err().kind,
            ErrorKind::Version
        );
        assert_eq!(
            parse(br#"{"version":1,"cmd":"explode"}"#).unwrap_err().kind,
            ErrorKind::BadRequest
        );
        assert!(matches!(
            parse(br#"{"version":1,"cmd":"status","unit":null}"#),
            Ok(RequestBody::Status { unit: None })
        ));
    }
}
