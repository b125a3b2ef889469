//! /etc/resolv.conf from the name servers kennel knows (the command line's `ip=`, boot.toml,
//! a DHCP lease), written carefully: a symlink (resolvconf, systemd-resolved, a container
//! runtime's) is left alone and said, a read-only root is said; neither fails the boot.

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// What became of the file.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Written,
    /// It already said exactly this.
    Unchanged,
}

/// Why the file was not written.
#[derive(Debug, thiserror::Error)]
pub enum ResolvError {
    #[error("{} is a symlink to {}: left alone (whatever manages it writes it)", path.display(), target.display())]
    Symlink { path: PathBuf, target: PathBuf },
    #[error("{}: the file system is read-only: not written", path.display())]
    ReadOnly { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// The text of resolv.conf: a comment saying where it comes from, `search`, `nameserver`s.
pub fn render(dns: &[Ipv4Addr], search: Option<&str>, from: &str) -> String {
    let mut s = format!("# written by kennel at boot ({from})\n");
    if let Some(domain) = search.filter(|d| !d.trim().is_empty()) {
        s.push_str(&format!("search {}\n", domain.trim()));
    }
    for d in dns {
        s.push_str(&format!("nameserver {d}\n"));
    }
    s
}

/// Write `text` to `path`: a temporary file beside it renamed over it (readers never see
/// half a file), or in place when `path` is a mount point (a bind-mounted file: the rename
/// gives EBUSY).
pub fn write(path: &Path, text: &str) -> Result<Written, ResolvError> {
    let io_err = |source: io::Error| {
        if source.raw_os_error() == Some(libc::EROFS) {
            ResolvError::ReadOnly {
                path: path.to_path_buf(),
            }
        } else {
            ResolvError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(ResolvError::Symlink {
                path: path.to_path_buf(),
                target: std::fs::read_link(path).unwrap_or_default(),
            })
        }
        Ok(_) => {
            if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
                return Ok(Written::Unchanged);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.kennel-{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(io_err)?;
    match std::fs::rename(&tmp, path) {
        Ok(()) => Ok(Written::Written),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            if e.raw_os_error() == Some(libc::EBUSY) {
                std::fs::write(path, text).map_err(io_err)?;
                Ok(Written::Written)
            } else {
                Err(io_err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_search_and_servers() {
        assert_eq!(
            render(
                &[Ipv4Addr::new(10, 0, 2, 3), Ipv4Addr::new(1, 1, 1, 1)],
                Some("example.org"),
                "DHCP on eth0"
            ),
            "# written by kennel at boot (DHCP on eth0)\nsearch example.org\nnameserver 10.0.2.3\nnameserver 1.1.1.1\n"
        );
        assert_eq!(
            render(&[Ipv4Addr::new(9, 9, 9, 9)], Some(" "), "x"),
            "# written by kennel at boot (x)\nnameserver 9.9.9.9\n"
        );
    }

    #[test]
    fn writes_replaces_and_leaves_symlinks_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("resolv.conf");
        assert_eq!(write(&p, "a\n").unwrap(), Written::Written);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a\n");
        assert_eq!(write(&p, "a\n").unwrap(), Written::Unchanged);
        assert_eq!(write(&p, "b\n").unwrap(), Written::Written);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b\n");
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let link = dir.path().join("link.conf");
        std::os::unix::fs::symlink("/run/systemd/resolve/stub-resolv.conf", &link).unwrap();
        let e = write(&link, "c\n").unwrap_err();
        assert!(matches!(e, ResolvError::Symlink { .. }));
        assert_eq!(
            e.to_string(),
            format!(
                "{} is a symlink to /run/systemd/resolve/stub-resolv.conf: left alone (whatever manages it writes it)",
                link.display()
            )
        );
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
