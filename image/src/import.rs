//! `kennel image import`: an OCI image layout (directory or tar) or a docker-archive tar
//! into the store. Every blob is checked against its digest (manifest, config, and each
//! layer's compressed blob and uncompressed diff_id); a layer already in the store (same
//! diff_id) is not unpacked again.

use std::io::Read;
use std::path::Path;

use kennel_units::ImageRef;
use oci_spec::image::{ImageIndex, ImageManifest, MediaType};

use crate::digest::{Digest, HashReader};
use crate::error::{ImageError, Result};
use crate::source::{decompress, Source};
use crate::store::{Image, Store};
use crate::unpack::UnpackOptions;

/// Import options.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// `--name`: the image's `NAME:TAG` (and which image of a multi-image input).
    pub name: Option<ImageRef>,
    pub unpack: UnpackOptions,
}

/// Reports an import's progress (the CLI draws a bar).
pub trait Progress {
    /// The blob bytes and layers to read.
    fn start(&self, _bytes: u64, _layers: usize) {}
    /// Layer `index` (0-based) starts; `present`: it is in the store already.
    fn layer(&self, _index: usize, _diff_id: &str, _present: bool) {}
    /// `n` more blob bytes were read (or skipped).
    fn advance(&self, _n: u64) {}
}

/// No progress reports.
pub struct Silent;
impl Progress for Silent {}

/// One layer to read: its blob, and the blob's digest when the format gives one.
struct LayerBlob {
    path: String,
    digest: Option<Digest>,
    size: u64,
}

/// What the format-specific part finds: the config, the layers, a default name.
struct Plan {
    config: Vec<u8>,
    layers: Vec<LayerBlob>,
    default_name: Option<ImageRef>,
}

/// Imports the image at `path` into `store`.
pub fn import(
    store: &Store,
    path: &Path,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<Image> {
    let src = Source::open(path)?;
    let plan = if src.exists("oci-layout") && src.exists("index.json") {
        oci_plan(&src, opts.name.as_ref())?
    } else if src.exists("manifest.json") {
        docker_plan(&src, opts.name.as_ref())?
    } else {
        return Err(format_err(
            path,
            "neither an OCI image layout (oci-layout, index.json) nor a docker-archive (manifest.json)",
        ));
    };
    let name = opts
        .name
        .clone()
        .or(plan.default_name.clone())
        .ok_or_else(|| format_err(path, "the image has no name: give --name NAME:TAG"))?;
    // As a JSON value: oci-spec 0.7's ImageConfiguration wrongly requires `history`.
    let config: serde_json::Value =
        serde_json::from_slice(&plan.config).map_err(|source| ImageError::Json {
            what: format!("config of {}", path.display()),
            source,
        })?;
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d.as_str().map(String::from))
                .collect()
        })
        .ok_or_else(|| format_err(path, "the config has no rootfs.diff_ids"))?;
    if diff_ids.len() != plan.layers.len() {
        return Err(format_err(
            path,
            &format!(
                "the manifest has {} layers, the config {} diff_ids",
                plan.layers.len(),
                diff_ids.len()
            ),
        ));
    }
    let _lock = store.lock(false)?;
    progress.start(plan.layers.iter().map(|l| l.size).sum(), plan.layers.len());
    let mut names = Vec::new();
    for (i, (blob, diff_id)) in plan.layers.iter().zip(&diff_ids).enumerate() {
        let diff_id = Digest::parse(diff_id)
            .ok_or_else(|| format_err(path, &format!("invalid diff_id {diff_id:?}")))?;
        if store.has_layer(&diff_id) {
            progress.layer(i, diff_id.as_str(), true);
            progress.advance(blob.size);
            names.push(diff_id.dir_name());
            continue;
        }
        progress.layer(i, diff_id.as_str(), false);
        let mut raw = HashReader::new(Counting {
            inner: src.open_file(&blob.path)?,
            progress,
        });
        let pending = {
            let (_, tar) = decompress(&mut raw).map_err(|source| ImageError::Tar {
                what: blob.path.clone(),
                source,
            })?;
            store.unpack_layer(tar, &opts.unpack)?
        };
        let (blob_digest, _) = raw.finish().map_err(|source| ImageError::Tar {
            what: blob.path.clone(),
            source,
        })?;
        if let Some(expected) = &blob.digest {
            check(&format!("layer blob {}", blob.path), expected, &blob_digest)?;
        }
        check(
            &format!("layer {} (diff_id)", blob.path),
            &diff_id,
            &pending.diff_id,
        )?;
        names.push(pending.commit()?);
    }
    let image = Image {
        name: name.name.clone(),
        tag: name.tag.clone(),
        layers: names,
        config,
    };
    store.save_image(&image)?;
    Ok(image)
}

fn check(what: &str, expected: &Digest, actual: &Digest) -> Result<()> {
    if expected != actual {
        return Err(ImageError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

fn format_err(path: &Path, reason: &str) -> ImageError {
    ImageError::Format {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn blob_path(d: &str) -> Option<String> {
    Digest::parse(d).map(|d| format!("blobs/sha256/{}", d.hex()))
}

/// Reads a blob whole and checks its digest.
fn verified_blob(src: &Source, digest: &str, what: &str) -> Result<Vec<u8>> {
    let expected = Digest::parse(digest).ok_or_else(|| {
        format_err(
            src.path(),
            &format!("{what}: unsupported digest {digest:?}"),
        )
    })?;
    let bytes = src.read(&blob_path(digest).unwrap_or_default())?;
    check(what, &expected, &Digest::of(&bytes))?;
    Ok(bytes)
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn oci_plan(src: &Source, want: Option<&ImageRef>) -> Result<Plan> {
    let path = src.path();
    let index: ImageIndex =
        serde_json::from_slice(&src.read("index.json")?).map_err(|source| ImageError::Json {
            what: format!("{}: index.json", path.display()),
            source,
        })?;
    let refname = |d: &oci_spec::image::Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME).cloned())
    };
    let manifests = index.manifests();
    let chosen = match manifests.as_slice() {
        [] => return Err(format_err(path, "index.json lists no image")),
        [one] => one,
        many => {
            let found = want.and_then(|w| {
                many.iter()
                    .find(|d| refname(d).is_some_and(|r| r == w.tag || r == w.to_string()))
            });
            match found {
                Some(d) => d,
                None => {
                    let refs: Vec<String> = many.iter().filter_map(refname).collect();
                    return Err(format_err(
                        path,
                        &format!(
                            "it holds {} images ({}): choose one with --name NAME:TAG",
                            many.len(),
                            refs.join(", ")
                        ),
                    ));
                }
            }
        }
    };
    let default_name = refname(chosen).and_then(|r| {
        ImageRef::parse(&r)
            .ok()
            .filter(|_| r.contains(':'))
            .or_else(|| {
                let stem = path
                    .file_name()?
                    .to_string_lossy()
                    .trim_end_matches(".tar")
                    .to_string();
                ImageRef::parse(&format!("{stem}:{r}")).ok()
            })
    });
    let mut desc = chosen.clone();
    // An image index (multi-platform): take this machine's platform.
    for _ in 0..4 {
        if *desc.media_type() != MediaType::ImageIndex {
            break;
        }
        let bytes = verified_blob(src, desc.digest().as_ref(), "image index")?;
        let nested: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
                what: "image index".into(),
                source,
            })?;
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        desc = nested
            .manifests()
            .iter()
            .find(|d| {
                d.platform().as_ref().is_some_and(|p| {
                    p.os().to_string() == "linux" && p.architecture().to_string() == arch
                })
            })
            .cloned()
            .ok_or_else(|| format_err(path, &format!("no linux/{arch} image in the index")))?;
    }
    let bytes = verified_blob(src, desc.digest().as_ref(), "manifest")?;
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
            what: "manifest".into(),
            source,
        })?;
    let config = verified_blob(src, manifest.config().digest().as_ref(), "config")?;
    let mut layers = Vec::new();
    for l in manifest.layers() {
        let d = l.digest().to_string();
        let blob =
            blob_path(&d).ok_or_else(|| format_err(path, &format!("unsupported digest {d:?}")))?;
        layers.push(LayerBlob {
            size: src.size(&blob)?,
            path: blob,
            digest: Digest::parse(&d),
        });
    }
    Ok(Plan {
        config,
        layers,
        default_name,
    })
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_plan(src: &Source, want: Option<&ImageRef>) -> Result<Plan> {
    let path = src.path();
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&src.read("manifest.json")?).map_err(|source| ImageError::Json {
            what: format!("{}: manifest.json", path.display()),
            source,
        })?;
    let tags = |e: &DockerEntry| e.repo_tags.clone().unwrap_or_default();
    let entry = match entries.as_slice() {
        [] => return Err(format_err(path, "manifest.json lists no image")),
        [one] => one,
        many => many
            .iter()
            .find(|e| {
                want.is_some_and(|w| {
                    tags(e)
                        .iter()
                        .any(|t| ImageRef::parse(t).ok().as_ref() == Some(w))
                })
            })
            .ok_or_else(|| {
                format_err(
                    path,
                    "it holds several images: choose one with --name NAME:TAG",
                )
            })?,
    };
    let config = src.read(&entry.config)?;
    // `<hex>.json` (docker save) or `blobs/sha256/<hex>`: the name is the digest.
    let hex = entry
        .config
        .trim_end_matches(".json")
        .rsplit('/')
        .next()
        .unwrap_or_default();
    if let Some(expected) = Digest::parse(&format!("sha256:{hex}")) {
        check("config", &expected, &Digest::of(&config))?;
    }
    let mut layers = Vec::new();
    for l in &entry.layers {
        let digest = l
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::parse(&format!("sha256:{h}")));
        layers.push(LayerBlob {
            size: src.size(l)?,
            path: l.clone(),
            digest,
        });
    }
    Ok(Plan {
        config,
        layers,
        default_name: tags(entry).first().and_then(|t| {
            // Docker's implicit prefixes: `docker.io/library/web:1` is `web:1`.
            let short = ["docker.io/library/", "docker.io/", "localhost/"]
                .iter()
                .find_map(|p| t.strip_prefix(p))
                .unwrap_or(t);
            ImageRef::parse(short).ok()
        }),
    })
}

/// Counts the blob bytes read, for the progress bar.
struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
