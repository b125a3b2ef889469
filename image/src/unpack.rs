//! A layer tar -> an overlay-native layer directory: `.wh.NAME` becomes a 0/0 character
//! device, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on its directory, and no
//! entry is ever written outside the directory.
//!
//! The rules (the OCI layer spec, plus common sense):
//! - a path is relative and normalized (`./` and empty components dropped); an absolute
//!   path or a `..` component is refused;
//! - an entry is never written through a symlink: a parent that is a symlink is refused;
//! - a hardlink's target is a path of this same layer, already extracted, not through a
//!   symlink; a relative symlink may not climb above the layer's root;
//! - device nodes are refused (a 0/0 character device would be read as a whiteout), unless
//!   [`UnpackOptions::allow_devices`]; setuid/setgid bits are kept unless
//!   [`UnpackOptions::strip_setuid`];
//! - a whiteout hides only lower layers: a file of the same layer wins over it, whatever
//!   the order; an opaque marker applies to the lower layers only, so the order of the
//!   marker and its siblings does not matter;
//! - `trusted.overlay.*` xattrs in the tar are refused (they would steer overlayfs).

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use crate::error::{io, ImageError, Result};
pub use crate::fsops::{get_xattr, is_whiteout, set_xattr};
use crate::fsops::{mkdir, mknod, remove, set_mtime};

/// The xattr overlayfs reads to make a directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The whiteout prefix of the OCI layer format.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// The opaque-directory marker of the OCI layer format.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What an unpack may do beyond the safe default.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnpackOptions {
    /// Clear the setuid and setgid bits of every entry.
    pub strip_setuid: bool,
    /// Create device nodes (other than 0/0 character devices) instead of refusing them.
    pub allow_devices: bool,
}

/// What an unpack wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
}

/// Unpacks the tar stream `tar` into `dest`, an existing (normally empty) directory.
pub fn unpack<R: Read>(tar: R, dest: &Path, opts: &UnpackOptions) -> Result<UnpackStats> {
    let mut u = Unpacker {
        dest,
        opts,
        stats: UnpackStats::default(),
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(PadAtEof { inner: tar, pad: 0 });
    let entries = archive.entries().map_err(|source| ImageError::Tar {
        what: "entries".into(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| ImageError::Tar {
            what: format!("after {} entries", u.stats.entries),
            source,
        })?;
        u.entry(entry)?;
    }
    // Directory times last: creating their children changed them.
    for (path, mtime) in u.dir_times.iter().rev() {
        set_mtime(path, *mtime);
    }
    Ok(u.stats)
}

struct Unpacker<'a> {
    dest: &'a Path,
    opts: &'a UnpackOptions,
    stats: UnpackStats,
    dir_times: Vec<(PathBuf, u64)>,
}

/// The normalized components of a tar path, or why it is refused.
pub fn normalize(raw: &[u8]) -> std::result::Result<Vec<&OsStr>, &'static str> {
    if raw.starts_with(b"/") {
        return Err("absolute paths are refused");
    }
    let mut comps = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("a `..` component is refused"),
            c => comps.push(OsStr::from_bytes(c)),
        }
    }
    Ok(comps)
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let unsafe_entry = |reason: &str| ImageError::UnsafeEntry {
            entry: name.clone(),
            reason: reason.to_string(),
        };
        let bad = |reason: String| ImageError::BadEntry {
            entry: name.clone(),
            reason,
        };
        let comps = normalize(&raw).map_err(unsafe_entry)?;
        self.stats.entries += 1;
        let header = entry.header().clone();
        let mut mode = header.mode().map_err(|e| bad(format!("mode: {e}")))? & 0o7777;
        if self.opts.strip_setuid {
            mode &= !0o6000;
        }
        let uid = header.uid().map_err(|e| bad(format!("uid: {e}")))? as u32;
        let gid = header.gid().map_err(|e| bad(format!("gid: {e}")))? as u32;
        let mtime = header.mtime().unwrap_or(0);
        let xattrs = xattrs(&mut entry).map_err(|e| bad(format!("pax headers: {e}")))?;
        if xattrs
            .iter()
            .any(|(k, _)| k.starts_with("trusted.overlay."))
        {
            return Err(unsafe_entry("trusted.overlay.* xattrs are refused"));
        }

        let Some((last, parents)) = comps.split_last() else {
            // `./`: the layer's root directory itself.
            if !kind.is_dir() {
                return Err(unsafe_entry("the layer root must be a directory"));
            }
            self.attrs(self.dest, uid, gid, Some(mode), &xattrs)?;
            self.dir_times.push((self.dest.to_path_buf(), mtime));
            return Ok(());
        };
        let parent = self.parents(parents, &name)?;
        let last_bytes = last.as_bytes();

        // Whiteouts and opaque markers.
        if last_bytes == OPAQUE_MARKER.as_bytes() {
            set_xattr(&parent, OPAQUE_XATTR, b"y")?;
            self.stats.opaque_dirs += 1;
            return Ok(());
        }
        if let Some(hidden) = last_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
                return Ok(()); // `.wh..wh.*`: reserved (aufs metadata), ignored
            }
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(bad("a whiteout must name a file".into()));
            }
            let target = parent.join(OsStr::from_bytes(hidden));
            match fs::symlink_metadata(&target) {
                // The same layer's directory: it replaces the lower one, whatever the order.
                Ok(m) if m.is_dir() => {
                    set_xattr(&target, OPAQUE_XATTR, b"y")?;
                    return Ok(());
                }
                // The same layer's file wins over the whiteout (and hides the lower one).
                Ok(_) => return Ok(()),
                Err(_) => {}
            }
            mknod(&target, libc::S_IFCHR | 0o600, 0)?;
            self.stats.whiteouts += 1;
            return Ok(());
        }

        let path = parent.join(last);
        let existing = fs::symlink_metadata(&path).ok();
        let was_whiteout = existing.as_ref().is_some_and(is_whiteout);
        if kind.is_dir() {
            match &existing {
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    remove(&path)?;
                    mkdir(&path)?;
                }
                None => mkdir(&path)?,
            }
            if was_whiteout {
                // The layer deleted the lower directory and made a new one here.
                set_xattr(&path, OPAQUE_XATTR, b"y")?;
            }
            self.attrs(&path, uid, gid, Some(mode), &xattrs)?;
            self.dir_times.push((path, mtime));
            return Ok(());
        }
        if let Some(m) = &existing {
            if m.is_dir() {
                fs::remove_dir_all(&path).map_err(io("remove", &path))?;
            } else {
                remove(&path)?;
            }
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(io("create", &path))?;
                io::copy(&mut entry, &mut f).map_err(|source| ImageError::Tar {
                    what: format!("entry {name:?}"),
                    source,
                })?;
                self.attrs(&path, uid, gid, Some(mode), &xattrs)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("a symlink without a target".into()))?
                    .into_owned();
                if !target.starts_with(b"/") && climbs_out(parents.len(), &target) {
                    return Err(unsafe_entry(&format!(
                        "the symlink to {:?} points outside the layer",
                        String::from_utf8_lossy(&target)
                    )));
                }
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(io("symlink", &path))?;
                self.attrs(&path, uid, gid, None, &xattrs)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("a hardlink without a target".into()))?
                    .into_owned();
                let tcomps = normalize(&target)
                    .map_err(|r| unsafe_entry(&format!("hardlink target: {r}")))?;
                let src = self.existing_in_layer(&tcomps).map_err(|r| {
                    unsafe_entry(&format!(
                        "hardlink to {:?}: {r}",
                        String::from_utf8_lossy(&target)
                    ))
                })?;
                fs::hard_link(&src, &path).map_err(io("hardlink", &path))?;
            }
            EntryType::Fifo => {
                mknod(&path, libc::S_IFIFO | 0o600, 0)?;
                self.attrs(&path, uid, gid, Some(mode), &xattrs)?;
            }
            EntryType::Char | EntryType::Block => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let is_char = kind == EntryType::Char;
                if !self.opts.allow_devices || (is_char && major == 0 && minor == 0) {
                    return Err(unsafe_entry(&format!(
                        "device node ({} {major}:{minor}) refused: in a layer only whiteouts are device nodes",
                        if is_char { "char" } else { "block" }
                    )));
                }
                let t = if is_char {
                    libc::S_IFCHR
                } else {
                    libc::S_IFBLK
                };
                mknod(&path, t | 0o600, libc::makedev(major, minor))?;
                self.attrs(&path, uid, gid, Some(mode), &xattrs)?;
            }
            other => return Err(bad(format!("unsupported entry type {other:?}"))),
        }
        set_mtime(&path, mtime);
        Ok(())
    }

    /// Creates the missing parents of an entry (0755, root), refusing symlinks on the way;
    /// a whiteout in the way becomes an opaque directory.
    fn parents(&mut self, parents: &[&OsStr], name: &str) -> Result<PathBuf> {
        let mut dir = self.dest.to_path_buf();
        for c in parents {
            dir.push(c);
            match fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(ImageError::UnsafeEntry {
                        entry: name.to_string(),
                        reason: format!(
                        "its parent {} is a symlink; entries are never written through symlinks",
                        dir.strip_prefix(self.dest).unwrap_or(&dir).display()
                    ),
                    })
                }
                Ok(m) if is_whiteout(&m) => {
                    remove(&dir)?;
                    mkdir(&dir)?;
                    set_xattr(&dir, OPAQUE_XATTR, b"y")?;
                }
                Ok(_) => {
                    return Err(ImageError::BadEntry {
                        entry: name.to_string(),
                        reason: format!(
                            "its parent {} is not a directory",
                            dir.strip_prefix(self.dest).unwrap_or(&dir).display()
                        ),
                    })
                }
                Err(_) => {
                    mkdir(&dir)?;
                    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                        .map_err(io("chmod", &dir))?;
                }
            }
        }
        Ok(dir)
    }

    /// A file already extracted in this layer, reached without crossing a symlink.
    fn existing_in_layer(&self, comps: &[&OsStr]) -> std::result::Result<PathBuf, NoLinkTarget> {
        let mut p = self.dest.to_path_buf();
        for (i, c) in comps.iter().enumerate() {
            p.push(c);
            let m = fs::symlink_metadata(&p).map_err(|_| NoLinkTarget::Missing)?;
            let last = i + 1 == comps.len();
            if !last && !m.is_dir() {
                return Err(NoLinkTarget::ThroughNonDirectory);
            }
            if last && (m.is_dir() || is_whiteout(&m)) {
                return Err(NoLinkTarget::NotAFile);
            }
        }
        if comps.is_empty() {
            return Err(NoLinkTarget::LayerRoot);
        }
        Ok(p)
    }

    fn attrs(
        &self,
        path: &Path,
        uid: u32,
        gid: u32,
        mode: Option<u32>,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<()> {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io("chown", path))?;
        // After chown, which clears setuid bits.
        if let Some(mode) = mode {
            fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
                .map_err(io("chmod", path))?;
        }
        for (k, v) in xattrs {
            // Best effort: the filesystem may not take every namespace.
            let _ = set_xattr(path, k, v);
        }
        Ok(())
    }
}

/// Some writers (umoci 0.4 `insert`) end a layer without the last entry's padding and the
/// end-of-archive blocks; the tar reader then fails on a valid layer. At the end of the
/// stream, this reader supplies up to two blocks of zeros. (What is hashed is the stream
/// itself, below this reader; a truncated entry is still an error past the padding.)
struct PadAtEof<R> {
    inner: R,
    pad: usize,
}

const MAX_PAD: usize = 1024;

impl<R: Read> Read for PadAtEof<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pad == 0 {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
        }
        let n = buf.len().min(MAX_PAD - self.pad);
        buf[..n].fill(0);
        self.pad += n;
        Ok(n)
    }
}

/// Whether a relative symlink target, from a link `depth` directories below the root,
/// climbs above the root.
fn climbs_out(depth: usize, target: &[u8]) -> bool {
    let mut level = depth as i64;
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                level -= 1;
                if level < 0 {
                    return true;
                }
            }
            _ => level += 1,
        }
    }
    false
}

/// `SCHILY.xattr.NAME` PAX records.
fn xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;

/// Why a hardlink's target is not a file already extracted in the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum NoLinkTarget {
    #[error("not in this layer")]
    Missing,
    #[error("goes through a symlink or a file")]
    ThroughNonDirectory,
    #[error("not a file")]
    NotAFile,
    #[error("the layer root")]
    LayerRoot,
}
