//! Where an import reads from: a directory, or a tar read in place (an index of its
//! entries, then reads at their offsets: no extraction); and layer decompression by magic
//! number (gzip, zstd, or none).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{io, ImageError, Result};
use crate::unpack::normalize;

/// An image on disk: a directory or a tar file.
pub enum Source {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        /// Normalized entry path -> (offset of the content, size).
        index: HashMap<String, (u64, u64)>,
    },
}

impl Source {
    /// Opens `path`: a directory as is, a file as a tar (indexed).
    pub fn open(path: &Path) -> Result<Source> {
        let m = std::fs::metadata(path).map_err(io("open", path))?;
        if m.is_dir() {
            return Ok(Source::Dir(path.to_path_buf()));
        }
        let f = File::open(path).map_err(io("open", path))?;
        let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 16, f));
        let mut index = HashMap::new();
        let entries = archive.entries().map_err(|source| ImageError::Tar {
            what: path.display().to_string(),
            source,
        })?;
        for e in entries {
            let e = e.map_err(|source| ImageError::Tar {
                what: path.display().to_string(),
                source,
            })?;
            let kind = e.header().entry_type();
            if !(kind.is_file() || kind.is_hard_link() || kind.is_symlink()) {
                continue;
            }
            let raw = e.path_bytes().into_owned();
            let Ok(comps) = normalize(&raw) else { continue };
            let key = comps
                .iter()
                .map(|c| c.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            if kind.is_file() {
                index.insert(key, (e.raw_file_position(), e.size()));
            } else if let Some(target) = e.link_name_bytes() {
                // docker-archive links identical layers (`ID/layer.tar -> ../HEX.tar`):
                // resolve lexically against what was indexed.
                let base = if kind.is_symlink() {
                    key.rsplit_once('/').map_or("", |(d, _)| d).to_string()
                } else {
                    String::new()
                };
                if let Some(t) = lexical_join(&base, &String::from_utf8_lossy(&target)) {
                    if let Some(v) = index.get(&t).copied() {
                        index.insert(key, v);
                    }
                }
            }
        }
        Ok(Source::Tar {
            path: path.to_path_buf(),
            index,
        })
    }

    /// The path for messages.
    pub fn path(&self) -> &Path {
        match self {
            Source::Dir(p) | Source::Tar { path: p, .. } => p,
        }
    }

    pub fn exists(&self, rel: &str) -> bool {
        match self {
            Source::Dir(d) => d.join(rel).is_file(),
            Source::Tar { index, .. } => index.contains_key(rel),
        }
    }

    /// The size of `rel`.
    pub fn size(&self, rel: &str) -> Result<u64> {
        match self {
            Source::Dir(d) => Ok(std::fs::metadata(d.join(rel))
                .map_err(io("stat", d.join(rel)))?
                .len()),
            Source::Tar { index, .. } => {
                index.get(rel).map(|v| v.1).ok_or_else(|| self.missing(rel))
            }
        }
    }

    /// Reads `rel`.
    pub fn open_file(&self, rel: &str) -> Result<Box<dyn Read + Send>> {
        match self {
            Source::Dir(d) => {
                let p = d.join(rel);
                if rel.split('/').any(|c| c == "..") {
                    return Err(self.missing(rel));
                }
                Ok(Box::new(File::open(&p).map_err(io("open", &p))?))
            }
            Source::Tar { path, index } => {
                let (off, size) = *index.get(rel).ok_or_else(|| self.missing(rel))?;
                let mut f = File::open(path).map_err(io("open", path))?;
                f.seek(SeekFrom::Start(off)).map_err(io("seek in", path))?;
                Ok(Box::new(f.take(size)))
            }
        }
    }

    /// Reads `rel` whole (small files: manifests, configs), at most 64 MiB.
    pub fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open_file(rel)?
            .take(64 << 20)
            .read_to_end(&mut buf)
            .map_err(io("read", self.path().join(rel)))?;
        Ok(buf)
    }

    fn missing(&self, rel: &str) -> ImageError {
        ImageError::Format {
            path: self.path().to_path_buf(),
            reason: format!("{rel} is missing"),
        }
    }
}

/// `base/rel` with `.` and `..` resolved, or `None` when it climbs above the root.
fn lexical_join(base: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = if rel.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|c| !c.is_empty()).collect()
    };
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

/// The compression of a layer blob, found by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// `r`, decompressed according to its magic number.
pub fn decompress<'a, R: Read + 'a>(r: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut b = BufReader::with_capacity(1 << 17, r);
    let head = b.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok((
            Compression::Gzip,
            Box::new(flate2::bufread::MultiGzDecoder::new(b)),
        ))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok((
            Compression::Zstd,
            Box::new(zstd::stream::read::Decoder::with_buffer(b)?),
        ))
    } else {
        Ok((Compression::None, Box::new(b)))
    }
}
