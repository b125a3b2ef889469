//! `kennel image export` (an OCI image layout as one tar, its layers uncompressed tars
//! with `.wh.` whiteouts, which `umoci` and `skopeo` read) and `kennel layer export` (one
//! layer tar). Outputs are written to a temporary name and renamed when complete.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use kennel_units::ImageRef;
use serde_json::json;

use crate::digest::{Digest, HashWriter};
use crate::error::{io, ImageError, Result};
use crate::pack::{pack, PackOptions};
use crate::store::{temp_name, Store};

const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// A temporary file next to `out`, removed on drop unless persisted.
struct TempOut(PathBuf);

impl TempOut {
    fn beside(out: &Path, what: &str) -> TempOut {
        let name = out
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        TempOut(out.with_file_name(format!(".{name}.{}", temp_name(what))))
    }
    fn persist(self, out: &Path) -> Result<()> {
        fs::rename(&self.0, out).map_err(io("rename to", out))?;
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for TempOut {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Packs the layer directory `dir` into `file`; its digest and size.
fn pack_to(dir: &Path, file: &Path, opts: &PackOptions) -> Result<(Digest, u64)> {
    let f = File::create(file).map_err(io("create", file))?;
    let w = pack(
        dir,
        HashWriter::new(BufWriter::with_capacity(1 << 20, f)),
        opts,
    )?;
    let (digest, size, mut inner) = w.finish();
    inner.flush().map_err(io("write", file))?;
    Ok((digest, size))
}

/// `kennel layer export NAME -o FILE`: the layer as a tar; returns its digest.
pub fn export_layer(store: &Store, name: &str, out: &Path) -> Result<Digest> {
    let dir = store.layer_path(name);
    if name.starts_with('.') || !dir.is_dir() {
        return Err(ImageError::LayerNotFound(name.to_string()));
    }
    let tmp = TempOut::beside(out, "tmp-");
    let (digest, _) = pack_to(&dir, &tmp.0, &PackOptions::default())?;
    tmp.persist(out)?;
    Ok(digest)
}

/// `kennel image export NAME:TAG -o FILE`: the image as an OCI image layout tar, the
/// layout's one image tagged TAG (`org.opencontainers.image.ref.name`).
pub fn export_image(store: &Store, r: &ImageRef, out: &Path) -> Result<()> {
    let img = store.image(r)?;
    let tmp = TempOut::beside(out, "tmp-");
    let file = File::create(&tmp.0).map_err(io("create", &tmp.0))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    let werr = |e| io("write", tmp.0.clone())(e);
    append(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(werr)?;
    for d in ["blobs", "blobs/sha256"] {
        let mut h = plain_header();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        tar.append_data(&mut h, d, std::io::empty()).map_err(werr)?;
    }
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for l in &img.layers {
        let layer_tmp = TempOut::beside(out, "layer-");
        let (digest, size) = pack_to(&store.layer_path(l), &layer_tmp.0, &PackOptions::default())?;
        let mut h = plain_header();
        h.set_mode(0o644);
        h.set_size(size);
        let f = File::open(&layer_tmp.0).map_err(io("open", &layer_tmp.0))?;
        tar.append_data(&mut h, format!("blobs/sha256/{}", digest.hex()), f)
            .map_err(werr)?;
        layers.push(json!({"mediaType": LAYER_TYPE, "digest": digest.as_str(), "size": size}));
        diff_ids.push(digest.to_string());
    }
    // The config, with the diff_ids of the tars just written.
    let mut config = img.config.clone();
    if !config.is_object() {
        config = json!({});
    }
    config["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    for (k, v) in [("architecture", goarch()), ("os", "linux")] {
        if config.get(k).and_then(|x| x.as_str()).is_none() {
            config[k] = json!(v);
        }
    }
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let config_digest = Digest::of(&config);
    blob(&mut tar, &config).map_err(werr)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": config_digest.as_str(), "size": config.len()},
        "layers": layers,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    // What we write, oci-spec must read.
    oci_spec::image::ImageManifest::from_reader(&manifest[..])
        .map_err(|e| ImageError::Refused(format!("internal: invalid manifest: {e}")))?;
    blob(&mut tar, &manifest).map_err(werr)?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST_TYPE,
            "digest": Digest::of(&manifest).as_str(),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": img.tag},
        }],
    });
    append(
        &mut tar,
        "index.json",
        &serde_json::to_vec(&index).unwrap_or_default(),
    )
    .map_err(werr)?;
    let mut w = tar.into_inner().map_err(werr)?;
    w.flush().map_err(werr)?;
    w.get_ref().sync_all().map_err(werr)?;
    drop(w);
    tmp.persist(out)
}

/// A header owned by root, dated 0.
fn plain_header() -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut h = plain_header();
    h.set_mode(0o644);
    h.set_size(bytes.len() as u64);
    tar.append_data(&mut h, path, bytes)
}

fn blob<W: Write>(tar: &mut tar::Builder<W>, bytes: &[u8]) -> std::io::Result<()> {
    append(
        tar,
        &format!("blobs/sha256/{}", Digest::of(bytes).hex()),
        bytes,
    )
}

/// The architecture as OCI (Go) names it.
pub fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}
