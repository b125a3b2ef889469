//! The store on disk: `STATE/layers/` (overlay-native layers, `sha256-<hex>` by the digest
//! of their uncompressed tar, plus names: plain directories or symlinks to a digest
//! layer) and `STATE/images/` (one JSON record per `NAME:TAG`).
//!
//! Nothing half-written is ever visible: a layer is unpacked into `layers/.tmp-*` and
//! renamed when verified; an image record is written to `images/.tmp-*` and renamed.
//! Imports and commits hold the store lock (`flock` of `layers/.lock`) shared; `gc` and
//! `rm` hold it exclusive, and whoever holds it exclusive removes what crashed writers
//! left.

use std::fs::{self, File};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use kennel_units::ImageRef;
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashReader};
use crate::error::{io, ImageError, Result};
use crate::unpack::{unpack, UnpackOptions, UnpackStats};

/// What the store knows of a layer besides its content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerMeta {
    /// The sha256 of the layer's uncompressed tar.
    pub diff_id: String,
    /// The size of that tar.
    pub size: u64,
}

/// An image: its layers (names in `STATE/layers`, bottom first) and its OCI config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    pub tag: String,
    pub layers: Vec<String>,
    /// The OCI image config as imported or committed (its `rootfs.diff_ids` match
    /// `layers`).
    pub config: serde_json::Value,
}

impl Image {
    pub fn reference(&self) -> ImageRef {
        ImageRef {
            name: self.name.clone(),
            tag: self.tag.clone(),
        }
    }
}

/// The layer and image store under a state directory.
#[derive(Debug, Clone)]
pub struct Store {
    state: PathBuf,
    layers: PathBuf,
    images: PathBuf,
}

/// The store lock, released on drop.
pub struct StoreLock(#[allow(dead_code)] File);

/// A layer unpacked under a temporary name, not yet visible. Dropping it removes it.
pub struct PendingLayer {
    dir: PathBuf,
    layers: PathBuf,
    /// The digest of the tar that was unpacked.
    pub diff_id: Digest,
    /// Its size.
    pub size: u64,
    pub stats: UnpackStats,
    done: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other writer uses: pid, time and a counter.
pub(crate) fn temp_name(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{t}-{n}", std::process::id())
}

fn flock(f: &File, op: libc::c_int) -> bool {
    // SAFETY: flock on an fd we own.
    unsafe { libc::flock(f.as_raw_fd(), op) == 0 }
}

impl Store {
    /// The store of `state` (`--state-dir`); creates its directories.
    pub fn open(state: &Path) -> Result<Store> {
        let s = Store {
            state: state.to_path_buf(),
            layers: state.join("layers"),
            images: state.join("images"),
        };
        for d in [&s.layers, &s.images, &s.layers.join(".meta")] {
            fs::create_dir_all(d).map_err(io("create", d))?;
        }
        Ok(s)
    }

    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// `STATE/layers/NAME`.
    pub fn layer_path(&self, name: &str) -> PathBuf {
        self.layers.join(name)
    }

    /// The store lock: shared for writers that add, exclusive for those that remove.
    /// Under the exclusive lock no writer is at work, so the temporary files there are
    /// were left by crashed writers: they are removed. A writer that finds no other one
    /// at work (it gets the exclusive lock at once) cleans up too, then holds it shared.
    pub fn lock(&self, exclusive: bool) -> Result<StoreLock> {
        let path = self.layers.join(".lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open", &path))?;
        if flock(&f, libc::LOCK_EX | libc::LOCK_NB) {
            self.clean_stale();
            if exclusive {
                return Ok(StoreLock(f));
            }
        }
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        if !flock(&f, op) {
            return Err(io("lock", &path)(std::io::Error::last_os_error()));
        }
        if exclusive {
            self.clean_stale();
        }
        Ok(StoreLock(f))
    }

    /// Whether the layer of this diff_id is in the store.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layers.join(diff_id.dir_name()).is_dir()
    }

    /// Unpacks a layer tar into a temporary directory, hashing the tar on the way. The
    /// caller holds the store lock (shared).
    pub fn unpack_layer<R: Read>(&self, tar: R, opts: &UnpackOptions) -> Result<PendingLayer> {
        let dir = self.layers.join(temp_name(".tmp-"));
        fs::create_dir(&dir).map_err(io("create", &dir))?;
        let mut pending = PendingLayer {
            dir,
            layers: self.layers.clone(),
            diff_id: Digest::of(b""),
            size: 0,
            stats: UnpackStats::default(),
            done: false,
        };
        let mut reader = HashReader::new(tar);
        pending.stats = unpack(&mut reader, &pending.dir, opts)?;
        let (diff_id, size) = reader.finish().map_err(|source| ImageError::Tar {
            what: "the end of the layer".into(),
            source,
        })?;
        pending.diff_id = diff_id;
        pending.size = size;
        Ok(pending)
    }

    /// Removes what crashed writers left (`.tmp-*` in `layers/`, `layers/.meta/` and
    /// `images/`). Only under the exclusive store lock.
    fn clean_stale(&self) {
        for dir in [&self.layers, &self.layers.join(".meta"), &self.images] {
            let Ok(rd) = fs::read_dir(dir) else { continue };
            for e in rd.flatten() {
                if !e.file_name().to_string_lossy().starts_with(".tmp-") {
                    continue;
                }
                let p = e.path();
                if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                    let _ = fs::remove_dir_all(&p);
                } else {
                    let _ = fs::remove_file(&p);
                }
            }
        }
    }

    /// The metadata of a layer (for a name, that of the layer it points to).
    pub fn meta(&self, name: &str) -> Option<LayerMeta> {
        let target = self.resolve_name(name);
        let p = self.layers.join(".meta").join(format!("{target}.json"));
        serde_json::from_slice(&fs::read(p).ok()?).ok()
    }

    /// A named layer's target (`busybox` -> `sha256-...`), or the name itself.
    pub fn resolve_name(&self, name: &str) -> String {
        match fs::read_link(self.layers.join(name)) {
            Ok(t) => t
                .file_name()
                .map_or(name.to_string(), |f| f.to_string_lossy().into_owned()),
            Err(_) => name.to_string(),
        }
    }

    /// Gives the digest layer `diff_id` the name `name` (a symlink `STATE/layers/NAME`).
    pub fn name_layer(&self, name: &str, diff_id: &Digest) -> Result<()> {
        kennel_units::check_unit_name(name)
            .map_err(|e| ImageError::InvalidName(format!("layer name {name:?}: {e}")))?;
        if name.starts_with("sha256-") {
            return Err(ImageError::InvalidName(format!(
                "layer name {name:?}: sha256-* names are the store's own"
            )));
        }
        let link = self.layers.join(name);
        if let Ok(m) = fs::symlink_metadata(&link) {
            if !m.file_type().is_symlink() {
                return Err(ImageError::Refused(format!(
                    "layer {name:?} exists as a directory ({}); remove it first",
                    link.display()
                )));
            }
        }
        let tmp = self.layers.join(temp_name(".tmp-link-"));
        std::os::unix::fs::symlink(diff_id.dir_name(), &tmp).map_err(io("symlink", &tmp))?;
        fs::rename(&tmp, &link).map_err(io("rename to", &link))
    }

    fn image_path(&self, r: &ImageRef) -> PathBuf {
        self.images
            .join(format!("{}:{}.json", r.name.replace('/', "%2F"), r.tag))
    }

    /// Saves an image record (replacing the one of the same `NAME:TAG`).
    pub fn save_image(&self, img: &Image) -> Result<()> {
        for l in &img.layers {
            if !self.layers.join(l).is_dir() {
                return Err(ImageError::LayerNotFound(l.clone()));
            }
        }
        let bytes = serde_json::to_vec_pretty(img).map_err(|source| ImageError::Json {
            what: "image record".into(),
            source,
        })?;
        let tmp = self.images.join(temp_name(".tmp-"));
        write_synced(&tmp, &bytes)?;
        let path = self.image_path(&img.reference());
        fs::rename(&tmp, &path).map_err(io("rename to", &path))
    }

    /// The image `r`.
    pub fn image(&self, r: &ImageRef) -> Result<Image> {
        let path = self.image_path(r);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ImageError::ImageNotFound(r.to_string()))
            }
            Err(e) => return Err(io("read", &path)(e)),
        };
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            what: path.display().to_string(),
            source,
        })
    }

    /// Every image, by name and tag.
    pub fn images(&self) -> Result<Vec<Image>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.images)
            .map_err(io("read", &self.images))?
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            if let Ok(img) =
                serde_json::from_slice::<Image>(&fs::read(e.path()).unwrap_or_default())
            {
                out.push(img);
            }
        }
        out.sort_by(|a, b| (&a.name, &a.tag).cmp(&(&b.name, &b.tag)));
        Ok(out)
    }

    /// Removes the image record `r` (its layers stay until `gc`).
    pub fn remove_image(&self, r: &ImageRef) -> Result<()> {
        let _lock = self.lock(true)?;
        let path = self.image_path(r);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ImageError::ImageNotFound(r.to_string()))
            }
            Err(e) => Err(io("remove", &path)(e)),
        }
    }

    /// Every entry of `STATE/layers` (names and digest layers), sorted.
    pub fn layer_names(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = fs::read_dir(&self.layers)
            .map_err(io("read", &self.layers))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        out.sort();
        Ok(out)
    }
}

impl PendingLayer {
    /// Makes the layer visible as `STATE/layers/sha256-<hex>` (or, when another writer
    /// got there first, drops this copy). Returns the directory name.
    pub fn commit(mut self) -> Result<String> {
        let name = self.diff_id.dir_name();
        let meta = LayerMeta {
            diff_id: self.diff_id.to_string(),
            size: self.size,
        };
        let meta_path = self.layers.join(".meta").join(format!("{name}.json"));
        let bytes = serde_json::to_vec(&meta).unwrap_or_default();
        let tmp = self.layers.join(".meta").join(temp_name(".tmp-"));
        write_synced(&tmp, &bytes)?;
        fs::rename(&tmp, &meta_path).map_err(io("rename to", &meta_path))?;
        let dest = self.layers.join(&name);
        if !dest.exists() {
            sync_tree(&self.dir);
            if fs::rename(&self.dir, &dest).is_ok() {
                self.done = true;
                return Ok(name);
            }
            if !dest.is_dir() {
                return Err(io("rename to", &dest)(std::io::Error::last_os_error()));
            }
        }
        Ok(name)
    }
}

impl Drop for PendingLayer {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Writes and fsyncs a file (before it is renamed into place).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = File::create(path).map_err(io("create", path))?;
    f.write_all(bytes).map_err(io("write", path))?;
    f.sync_all().map_err(io("sync", path))
}

/// `syncfs` of the filesystem holding `dir`: the layer's files are on disk before its
/// rename makes it visible.
fn sync_tree(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        // SAFETY: syncfs on an fd we own.
        unsafe { libc::syncfs(f.as_raw_fd()) };
    }
}
