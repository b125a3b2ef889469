//! sd_notify readiness: a datagram socket per unit start whose `READY=1` marks the unit
//! up, and kennel's own notification to a supervisor above it (systemd `Type=notify`).

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixDatagram;

/// A bound notify socket for one start of one unit.
pub struct NotifySocket {
    pub path: PathBuf,
    socket: UnixDatagram,
}

impl NotifySocket {
    /// Bind `dir/UNIT` afresh (an old socket of the unit, and whatever was queued on it, is
    /// discarded), owned by `owner` (the unit's uid) with mode 0600.
    pub fn bind(dir: &Path, unit: &str, owner: Option<u32>) -> io::Result<NotifySocket> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(unit);
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&path, Some(uid), None)?;
        }
        Ok(NotifySocket { path, socket })
    }

    /// The lines of the next datagram (`READY=1`, `STATUS=...`).
    pub async fn recv(&self) -> io::Result<Vec<String>> {
        let mut buf = vec![0u8; 4096];
        let n = self.socket.recv(&mut buf).await?;
        Ok(buf[..n]
            .split(|b| *b == b'\n')
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect())
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Tell the process that started kennel (if it asked, via `NOTIFY_SOCKET`) that kennel is
/// ready: every unit of the initial set is up.
pub fn notify_parent_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sock = match std::os::unix::net::UnixDatagram::unbound() {
        Ok(s) => s,
        Err(_) => return,
    };
    let bytes = path.as_encoded_bytes();
    let res = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(b"READY=1\n", &a))
    } else {
        sock.send_to(b"READY=1\n", Path::new(&path))
    };
    if let Err(e) = res {
        tracing::warn!("notifying {} of readiness: {e}", path.to_string_lossy());
    }
}
