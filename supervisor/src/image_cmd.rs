//! `kennel image ...`, `kennel layer ...` and `kennel commit`: the layer and image store
//! commands. They work on the state directory directly, without a daemon, except a commit
//! of a running unit, which asks the daemon to freeze the unit while its writable layer is
//! read. The directories are the running daemon's when one answers ([`Dirs::resolve`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kennel_image::import::{ImportOptions, Progress};
use kennel_image::unpack::UnpackOptions;
use kennel_image::{inventory, ImageError, Store};
use kennel_units::{ImageRef, Layer};

use crate::cli::ClientArgs;
use crate::commands::{same_dir, EXIT_FAILED, EXIT_OK};
use crate::control::client::{Client, ClientError};
use crate::control::protocol::{ReplyBody, RequestBody};

/// Where the store is, and where the unit files are (their layers count as in use).
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// State directory (layers in STATE/layers, images in STATE/images). Default: the
    /// running daemon's, else /var/lib/kennel. Another than the running daemon's is refused.
    #[arg(long, env = "KENNEL_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Directory of unit files: the layers and images they name are in use. Default: the
    /// running daemon's, else /etc/kennel/units. Another than the daemon's is refused.
    #[arg(long)]
    pub units: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The directories a store command works on.
pub struct Dirs {
    pub state_dir: PathBuf,
    pub units: PathBuf,
}

impl Dirs {
    /// The running daemon's directories when one answers on `--socket` (a directory given
    /// that is not the daemon's is refused: its units, its layers in use, would be another
    /// kennel's); else those given, or the defaults.
    pub fn resolve(a: &StoreArgs) -> Result<Dirs, i32> {
        let given = Dirs {
            state_dir: a
                .state_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            units: a
                .units
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_UNITS)),
        };
        let asked = Client::connect(&a.client.socket).and_then(|mut c| c.call(RequestBody::Paths));
        let (state_dir, units) = match asked {
            Ok(ReplyBody::Paths {
                state_dir, units, ..
            }) => (PathBuf::from(state_dir), PathBuf::from(units)),
            // No daemon, or one that may not be asked: the directories as given.
            Err(ClientError::NoDaemon { .. } | ClientError::Denied { .. }) => return Ok(given),
            Ok(_) => return Err(fail("kennel sent an unexpected reply to paths")),
            Err(e) => return Err(fail(e)),
        };
        let socket = a.client.socket.display();
        for (flag, mine, theirs) in [
            (
                "--state-dir (or KENNEL_STATE_DIR)",
                &a.state_dir,
                &state_dir,
            ),
            ("--units", &a.units, &units),
        ] {
            if let Some(mine) = mine {
                if !same_dir(mine, theirs) {
                    return Err(fail(format!(
                        "{flag} {} is not the directory of the kennel on {socket}, which uses \
                         {}; leave {flag} out, or point --socket at the kennel that uses it",
                        mine.display(),
                        theirs.display()
                    )));
                }
            }
        }
        Ok(Dirs { state_dir, units })
    }
}

/// The store when no daemon says otherwise (`kennel up`'s default).
const DEFAULT_STATE_DIR: &str = "/var/lib/kennel";
/// The unit directory when no daemon says otherwise (`kennel up`'s default).
const DEFAULT_UNITS: &str = "/etc/kennel/units";

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    pub cmd: ImageCmd,
}

#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// Import an OCI image layout (directory or tar) or a docker-archive tar.
    Import(ImageImportArgs),
    /// Write an image as an OCI image layout tar.
    Export(ImageExportArgs),
    /// List images: name, tag, layers, size.
    Ls(StoreArgs),
    /// Remove image records (their layers stay until `kennel layer gc`).
    Rm(ImageRmArgs),
}

#[derive(Debug, Args)]
pub struct ImageImportArgs {
    /// The image: an OCI layout directory or tar, or a docker-archive tar.
    pub path: PathBuf,
    /// NAME:TAG to save it as (default: the name the archive carries).
    #[arg(long)]
    pub name: Option<String>,
    /// Clear setuid and setgid bits of every file.
    #[arg(long)]
    pub no_setuid: bool,
    /// Create device nodes found in layers instead of refusing them.
    #[arg(long)]
    pub allow_devices: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ImageExportArgs {
    /// NAME:TAG.
    pub image: String,
    /// The tar to write.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ImageRmArgs {
    /// NAME:TAG of each image to remove.
    #[arg(required = true)]
    pub images: Vec<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct LayerArgs {
    #[command(subcommand)]
    pub cmd: LayerCmd,
}

#[derive(Debug, Subcommand)]
pub enum LayerCmd {
    /// Import a plain root filesystem (a directory or a tar) as one layer named NAME.
    Import(LayerImportArgs),
    /// Write a layer as a tar (whiteouts as .wh. files).
    Export(LayerExportArgs),
    /// List layers: name, digest, size, users.
    Ls(StoreArgs),
    /// Remove the digest layers no image, name or unit uses.
    Gc(StoreArgs),
}

#[derive(Debug, Args)]
pub struct LayerImportArgs {
    /// A directory or a tar (gzip and zstd are recognized).
    pub path: PathBuf,
    /// The layer's name in STATE/layers.
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct LayerExportArgs {
    /// The layer: a name or sha256-<hex>.
    pub layer: String,
    /// The tar to write.
    #[arg(short, long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The unit whose writable layer is saved.
    pub unit: String,
    /// NAME[:TAG] of the new image (TAG defaults to latest).
    pub image: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Prints `kennel: ERROR` and returns the failure code.
pub fn fail(e: impl std::fmt::Display) -> i32 {
    eprintln!("kennel: {e}");
    EXIT_FAILED
}

/// The store of the daemon's (or the given) state directory, with the directories.
fn store(a: &StoreArgs) -> Result<(Store, Dirs), i32> {
    let dirs = Dirs::resolve(a)?;
    let store = Store::open(&dirs.state_dir).map_err(fail)?;
    Ok((store, dirs))
}

pub fn parse_ref(s: &str) -> Result<ImageRef, i32> {
    ImageRef::parse(s).map_err(fail)
}

/// The layers the unit files of `units` use: (unit, layer names).
fn unit_users(store: &Store, units: &Path) -> Vec<(String, Vec<String>)> {
    if !units.is_dir() {
        return Vec::new();
    }
    let Ok(set) = kennel_units::load_paths(&[units.to_path_buf()]) else {
        eprintln!(
            "kennel: warning: unit files in {} are invalid; their layers are not counted",
            units.display()
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for u in set.iter() {
        let Some(c) = &u.container else { continue };
        let mut layers: Vec<String> = c
            .rootfs
            .iter()
            .filter_map(|l| match l {
                Layer::Named(n) => Some(n.clone()),
                Layer::Path(_) => None,
            })
            .collect();
        if let Some(img) = c.image.as_ref().and_then(|r| store.image(r).ok()) {
            layers.extend(img.layers);
        }
        out.push((u.name.clone(), layers));
    }
    out
}

/// A terminal progress bar for imports: bytes, and the layer being read.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, bytes: u64, layers: usize) {
        self.0.set_length(bytes);
        self.0.set_message(format!("{layers} layers"));
    }
    fn layer(&self, index: usize, diff_id: &str, present: bool) {
        let short = diff_id.get(7..19).unwrap_or(diff_id);
        let what = if present { "present" } else { "unpacking" };
        self.0
            .set_message(format!("layer {} {short} {what}", index + 1));
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
}

fn bar() -> Bar {
    if !std::io::stderr().is_terminal() {
        return Bar(ProgressBar::hidden());
    }
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Bar(pb)
}

pub fn image(a: ImageArgs) -> i32 {
    let r = match a.cmd {
        ImageCmd::Import(a) => import(a),
        ImageCmd::Export(a) => (|| {
            let (s, _) = store(&a.store)?;
            let r = parse_ref(&a.image)?;
            kennel_image::export::export_image(&s, &r, &a.output).map_err(fail)?;
            eprintln!("kennel: exported {r} to {}", a.output.display());
            Ok(EXIT_OK)
        })(),
        ImageCmd::Ls(a) => (|| {
            let (s, _) = store(&a)?;
            let mut rows = vec![[
                "NAME".to_string(),
                "TAG".into(),
                "LAYERS".into(),
                "SIZE".into(),
            ]];
            for img in s.images().map_err(fail)? {
                let size: u64 = img
                    .layers
                    .iter()
                    .filter_map(|l| s.meta(l).map(|m| m.size))
                    .sum();
                rows.push([img.name, img.tag, img.layers.len().to_string(), human(size)]);
            }
            print!("{}", table(&rows));
            Ok(EXIT_OK)
        })(),
        ImageCmd::Rm(a) => (|| {
            let (s, _) = store(&a.store)?;
            let mut code = EXIT_OK;
            for i in &a.images {
                let r = parse_ref(i)?;
                match s.remove_image(&r) {
                    Ok(()) => println!("removed {r}"),
                    Err(e) => code = fail(e),
                }
            }
            Ok(code)
        })(),
    };
    r.unwrap_or_else(|c| c)
}

fn import(a: ImageImportArgs) -> Result<i32, i32> {
    let (s, _) = store(&a.store)?;
    let opts = ImportOptions {
        name: a.name.as_deref().map(parse_ref).transpose()?,
        unpack: UnpackOptions {
            strip_setuid: a.no_setuid,
            allow_devices: a.allow_devices,
        },
    };
    let bar = bar();
    let result = kennel_image::import::import(&s, &a.path, &opts, &bar);
    bar.0.finish_and_clear();
    let img = result.map_err(fail)?;
    println!("{}:{} {} layers", img.name, img.tag, img.layers.len());
    Ok(EXIT_OK)
}

pub fn layer(a: LayerArgs) -> i32 {
    let r = match a.cmd {
        LayerCmd::Import(a) => (|| {
            let (s, _) = store(&a.store)?;
            let d = layer_import(&s, &a.path, &a.name).map_err(fail)?;
            println!("{} {d}", a.name);
            Ok(EXIT_OK)
        })(),
        LayerCmd::Export(a) => (|| {
            let (s, _) = store(&a.store)?;
            let d = kennel_image::export::export_layer(&s, &a.layer, &a.output).map_err(fail)?;
            println!("{d}");
            Ok(EXIT_OK)
        })(),
        LayerCmd::Ls(a) => (|| {
            let (s, dirs) = store(&a)?;
            let units = unit_users(&s, &dirs.units);
            let mut rows = vec![[
                "NAME".to_string(),
                "DIGEST".into(),
                "SIZE".into(),
                "USERS".into(),
            ]];
            for r in inventory::list(&s, &units).map_err(fail)? {
                let digest = r
                    .digest
                    .as_deref()
                    .map_or("-".into(), |d| d.get(..19).unwrap_or(d).to_string());
                let users = match &r.target {
                    Some(t) => format!("-> {t}"),
                    None if r.users.is_empty() => "-".into(),
                    None => r.users.join(", "),
                };
                let size = if r.target.is_some() {
                    "-".into()
                } else {
                    human(r.size)
                };
                rows.push([r.name, digest, size, users]);
            }
            print!("{}", table(&rows));
            Ok(EXIT_OK)
        })(),
        LayerCmd::Gc(a) => (|| {
            let (s, dirs) = store(&a)?;
            let units = unit_users(&s, &dirs.units);
            let removed = inventory::gc(&s, &units).map_err(fail)?;
            for r in &removed {
                println!("removed {r}");
            }
            eprintln!("kennel: {} layers removed", removed.len());
            Ok(EXIT_OK)
        })(),
    };
    r.unwrap_or_else(|c| c)
}

/// A directory or a tar as one layer, named `name`.
fn layer_import(s: &Store, path: &Path, name: &str) -> Result<kennel_image::Digest, ImageError> {
    let _lock = s.lock(false)?;
    let opts = UnpackOptions::default();
    let pending = if path.is_dir() {
        // Through a pipe: the directory is packed (overlay whiteouts as .wh.) while unpacked.
        let (r, w) = std::io::pipe().map_err(|e| ImageError::Io {
            op: "pipe",
            path: path.into(),
            source: e,
        })?;
        let dir = path.to_path_buf();
        let packer = std::thread::spawn(move || {
            kennel_image::pack::pack(
                &dir,
                std::io::BufWriter::with_capacity(1 << 20, w),
                &Default::default(),
            )
            .and_then(|w| {
                w.into_inner().map(drop).map_err(|e| ImageError::Io {
                    op: "write",
                    path: dir,
                    source: e.into_error(),
                })
            })
        });
        let pending = s.unpack_layer(std::io::BufReader::with_capacity(1 << 20, r), &opts);
        packer
            .join()
            .map_err(|_| ImageError::Refused("the packing thread panicked".into()))??;
        pending?
    } else {
        let f = std::fs::File::open(path).map_err(|e| ImageError::Io {
            op: "open",
            path: path.into(),
            source: e,
        })?;
        let (_, tar) = kennel_image::source::decompress(f).map_err(|e| ImageError::Io {
            op: "read",
            path: path.into(),
            source: e,
        })?;
        s.unpack_layer(tar, &opts)?
    };
    let d = pending.diff_id.clone();
    pending.commit()?;
    s.name_layer(name, &d)?;
    Ok(d)
}

/// `12.3M`.
pub fn human(n: u64) -> String {
    let f = n as f64;
    match n {
        0..1024 => format!("{n}B"),
        1024..1048576 => format!("{:.1}K", f / 1024.0),
        1048576..1073741824 => format!("{:.1}M", f / 1048576.0),
        _ => format!("{:.1}G", f / 1073741824.0),
    }
}

fn table(rows: &[[String; 4]]) -> String {
    let mut w = [0; 4];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let line = format!(
            "{:<a$}  {:<b$}  {:<c$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            a = w[0],
            b = w[1],
            c = w[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
