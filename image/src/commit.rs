//! `kennel commit`: a container's writable layer (`STATE/containers/UNIT/upper`) as a new
//! layer on top of the layers the container was started on, saved as an image. The init
//! layer's files (`/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`) are left out;
//! overlay whiteouts in the upper directory stay deletions.
//!
//! Two steps, so that a running unit is frozen only while its upper directory is read:
//! [`snapshot`] (the upper directory -> a tar file), then [`finish`].

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use kennel_units::ImageRef;
use serde_json::json;

use crate::digest::Digest;
use crate::error::{io, ImageError, Result};
use crate::export::goarch;
use crate::pack::{pack, PackOptions};
use crate::runtime::ContainerRecord;
use crate::store::{temp_name, Image, Store};
use crate::unpack::UnpackOptions;

/// Files of the init layer, never committed.
pub const INIT_FILES: [&str; 3] = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];

/// A container's writable layer, copied as a tar; the file is removed on drop.
pub struct Snapshot {
    tar: PathBuf,
    record: ContainerRecord,
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.tar);
    }
}

/// Copies `DIR/upper` (DIR = `STATE/containers/UNIT`) into a tar next to it.
pub fn snapshot(container_dir: &Path) -> Result<Snapshot> {
    let record = ContainerRecord::read(container_dir).map_err(|_| {
        ImageError::Refused(format!(
            "{} has no record of the layers the unit was started on: start the unit (with [container]) first",
            container_dir.display()
        ))
    })?;
    let upper = container_dir.join("upper");
    if !upper.is_dir() {
        return Err(ImageError::Refused(format!(
            "{} does not exist: the unit has no writable layer (read_only, or never started)",
            upper.display()
        )));
    }
    let tar = container_dir.join(format!(".commit-{}.tar", temp_name("")));
    let snap = Snapshot { tar, record };
    let f = File::create(&snap.tar).map_err(io("create", &snap.tar))?;
    let opts = PackOptions {
        exclude: INIT_FILES.iter().map(PathBuf::from).collect(),
    };
    let w = pack(&upper, std::io::BufWriter::with_capacity(1 << 20, f), &opts)?;
    w.into_inner()
        .map_err(|e| io("write", &snap.tar)(e.into_error()))?;
    Ok(snap)
}

/// The digest layer for a layer directory the container used: itself when it is a
/// digest layer of the store (or a name for one), else a copy imported into the store.
fn base_layer(store: &Store, dir: &Path) -> Result<String> {
    if dir.parent() == Some(store.layer_path("").as_path()) {
        let name = dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = store.resolve_name(&name);
        if Digest::from_dir_name(&target).is_some() && store.layer_path(&target).is_dir() {
            return Ok(target);
        }
    }
    let tmp = store.layer_path(&temp_name(".tmp-pack-"));
    let f = File::create(&tmp).map_err(io("create", &tmp))?;
    let result = (|| {
        let w = pack(dir, std::io::BufWriter::new(f), &PackOptions::default())?;
        w.into_inner()
            .map_err(|e| io("write", &tmp)(e.into_error()))?;
        let r = File::open(&tmp).map_err(io("open", &tmp))?;
        store
            .unpack_layer(
                std::io::BufReader::new(r),
                &UnpackOptions {
                    allow_devices: true,
                    ..Default::default()
                },
            )?
            .commit()
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// Makes the snapshot a layer and saves the image `r`: the container's layers, then it.
pub fn finish(store: &Store, snap: Snapshot, r: &ImageRef) -> Result<Image> {
    let _lock = store.lock(false)?;
    let mut layers = Vec::new();
    for dir in &snap.record.layers {
        layers.push(base_layer(store, dir)?);
    }
    let f = File::open(&snap.tar).map_err(io("open", &snap.tar))?;
    let opts = UnpackOptions {
        allow_devices: true,
        ..Default::default()
    };
    layers.push(
        store
            .unpack_layer(std::io::BufReader::new(f), &opts)?
            .commit()?,
    );
    let diff_ids: Vec<String> = layers
        .iter()
        .filter_map(|l| Digest::from_dir_name(l).map(|d| d.to_string()))
        .collect();
    let mut config = snap
        .record
        .config
        .clone()
        .unwrap_or_else(|| json!({"architecture": goarch(), "os": "linux", "config": {}}));
    config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    let created = humantime_now();
    config["created"] = json!(created);
    let mut history = config["history"].as_array().cloned().unwrap_or_default();
    history.push(json!({"created": created, "created_by": "kennel commit"}));
    config["history"] = json!(history);
    let image = Image {
        name: r.name.clone(),
        tag: r.tag.clone(),
        layers,
        config,
    };
    store.save_image(&image)?;
    Ok(image)
}

/// Now as RFC 3339 UTC (`2024-05-01T12:00:00Z`).
fn humantime_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
