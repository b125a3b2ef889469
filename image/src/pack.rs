//! An overlay-native directory (a layer, or a container's writable layer) -> an OCI layer
//! tar: a 0/0 character device becomes an empty `.wh.NAME` file, an opaque directory gets
//! a `.wh..wh..opq` entry after its own. Entries are sorted by name, so the same
//! directory always gives the same tar (and the same digest).

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::error::{io, Result};
use crate::unpack::{get_xattr, is_whiteout, OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX};

/// What to leave out of the tar.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// Paths relative to the directory (`etc/hosts`), left out with everything under them.
    pub exclude: Vec<PathBuf>,
}

/// Writes `dir` as a layer tar to `out` (and finishes the archive); returns `out`.
pub fn pack<W: Write>(dir: &Path, out: W, opts: &PackOptions) -> Result<W> {
    let mut p = Packer {
        opts,
        builder: tar::Builder::new(out),
        links: HashMap::new(),
    };
    p.dir(dir, Path::new(""))?;
    p.builder.into_inner().map_err(io("write tar of", dir))
}

struct Packer<'a, W: Write> {
    opts: &'a PackOptions,
    builder: tar::Builder<W>,
    /// (dev, ino) -> the first path of a file with several links.
    links: HashMap<(u64, u64), PathBuf>,
}

impl<W: Write> Packer<'_, W> {
    fn dir(&mut self, abs: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<OsString> = fs::read_dir(abs)
            .map_err(io("read directory", abs))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(io("read directory", abs))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let rel = rel.join(&name);
            if self.opts.exclude.iter().any(|x| rel.starts_with(x)) {
                continue;
            }
            let abs = abs.join(&name);
            self.entry(&abs, &rel)?;
        }
        Ok(())
    }

    fn entry(&mut self, abs: &Path, rel: &Path) -> Result<()> {
        let m = fs::symlink_metadata(abs).map_err(io("stat", abs))?;
        let ft = m.file_type();
        let mut h = Header::new_gnu();
        h.set_mode(m.mode() & 0o7777);
        h.set_uid(m.uid() as u64);
        h.set_gid(m.gid() as u64);
        h.set_mtime(m.mtime().max(0) as u64);
        h.set_size(0);
        let tar_err = |e| io("write tar entry", rel)(e);
        if is_whiteout(&m) {
            let mut name = OsString::from(WHITEOUT_PREFIX);
            name.push(rel.file_name().unwrap_or_default());
            let wh = rel.with_file_name(name);
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0o644);
            self.builder
                .append_data(&mut h, wh, std::io::empty())
                .map_err(tar_err)?;
        } else if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            self.builder
                .append_data(&mut h, rel, std::io::empty())
                .map_err(tar_err)?;
            if get_xattr(abs, OPAQUE_XATTR).as_deref() == Some(b"y") {
                let mut o = Header::new_gnu();
                o.set_entry_type(EntryType::Regular);
                o.set_mode(0o644);
                o.set_uid(0);
                o.set_gid(0);
                o.set_size(0);
                o.set_mtime(m.mtime().max(0) as u64);
                self.builder
                    .append_data(&mut o, rel.join(OPAQUE_MARKER), std::io::empty())
                    .map_err(tar_err)?;
            }
            self.dir(abs, rel)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(abs).map_err(io("readlink", abs))?;
            h.set_entry_type(EntryType::Symlink);
            self.builder
                .append_link(&mut h, rel, target)
                .map_err(tar_err)?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                    h.set_entry_type(EntryType::Link);
                    let first = first.clone();
                    return self
                        .builder
                        .append_link(&mut h, rel, first)
                        .map_err(tar_err);
                }
                self.links.insert((m.dev(), m.ino()), rel.to_path_buf());
            }
            h.set_entry_type(EntryType::Regular);
            h.set_size(m.len());
            let f = fs::File::open(abs).map_err(io("open", abs))?;
            // A file that changes size while read would corrupt the tar: take exactly len.
            let reader = std::io::Read::take(f, m.len());
            self.builder
                .append_data(&mut h, rel, reader)
                .map_err(tar_err)?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            h.set_entry_type(if ft.is_fifo() {
                EntryType::Fifo
            } else if ft.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            });
            if !ft.is_fifo() {
                let rdev = m.rdev();
                h.set_device_major(libc::major(rdev)).map_err(tar_err)?;
                h.set_device_minor(libc::minor(rdev)).map_err(tar_err)?;
            }
            self.builder
                .append_data(&mut h, rel, std::io::empty())
                .map_err(tar_err)?;
        } else {
            // Sockets do not go into images.
            return Ok(());
        }
        Ok(())
    }
}

/// The size on disk of a directory tree (bytes of regular files).
pub fn tree_size(dir: &Path) -> u64 {
    fn walk(p: &Path, total: &mut u64) {
        let Ok(rd) = fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                walk(&e.path(), total);
            } else if m.is_file() {
                *total += m.len();
            }
        }
    }
    let mut total = 0;
    walk(dir, &mut total);
    total
}
