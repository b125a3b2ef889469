//! Finding the device behind an fstab source (`UUID=`, `LABEL=`, `PARTUUID=`,
//! `PARTLABEL=`, `/dev/...`), waiting a bounded time for it to appear: udev's
//! `/dev/disk/by-*` links when udev runs, else the distribution's own prober (`blkid` from
//! util-linux, or busybox's `findfs`); and the device a mounted file system lives on.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::fstab::Source;

/// How long a device may take to appear when fstab does not say
/// (`x-systemd.device-timeout=`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// udev's link directory and blkid's tag for a tagged source.
fn tag(source: &Source) -> Option<(&'static str, &'static str, &str)> {
    match source {
        Source::Path(_) => None,
        Source::Uuid(v) => Some(("by-uuid", "UUID", v)),
        Source::Label(v) => Some(("by-label", "LABEL", v)),
        Source::PartUuid(v) => Some(("by-partuuid", "PARTUUID", v)),
        Source::PartLabel(v) => Some(("by-partlabel", "PARTLABEL", v)),
    }
}

fn program(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// One look for a tagged source's device.
fn probe(dir: &str, key: &str, value: &str) -> Result<Option<PathBuf>, String> {
    let link = Path::new("/dev/disk").join(dir).join(value);
    if let Ok(p) = std::fs::canonicalize(&link) {
        return Ok(Some(p));
    }
    let spec = format!("{key}={value}");
    let mut cmd = if let Some(blkid) = program("blkid") {
        // No cache: a device made since the last look must be found.
        let mut c = Command::new(blkid);
        c.args(["-c", "/dev/null", "-o", "device", "-t", &spec]);
        c
    } else if let Some(findfs) = program("findfs") {
        let mut c = Command::new(findfs);
        c.arg(&spec);
        c
    } else {
        return Err(format!(
            "{spec}: no /dev/disk/{dir} (udev) and neither blkid (util-linux) nor findfs (busybox) is installed to find it"
        ));
    };
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("run blkid for {spec}: {e}"))?;
    let dev = String::from_utf8_lossy(&out.stdout);
    Ok(dev.lines().next().map(|l| PathBuf::from(l.trim())))
}

/// The device (or, for a bind mount or a pseudo file system, the path or name as written)
/// of `source`, waiting up to `timeout` for a device to appear.
pub fn resolve(source: &Source, timeout: Duration) -> Result<PathBuf, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = match (source, tag(source)) {
            (Source::Path(p), _) if !p.starts_with("/dev/") => return Ok(PathBuf::from(p)),
            (Source::Path(p), _) => Path::new(p).exists().then(|| PathBuf::from(p)),
            (_, Some((dir, key, value))) => probe(dir, key, value)?,
            (_, None) => None,
        };
        if let Some(p) = found {
            return Ok(p);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no device {source} appeared within {:.1}s",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether `path` is a block device.
pub fn is_block(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

/// The block device the file system at `path` lives on (`/dev/vda`), from its `st_dev`
/// and sysfs; `None` for a file system without one (tmpfs, an overlay).
pub fn device_of(path: &Path) -> Option<PathBuf> {
    let dev = std::fs::metadata(path).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let uevent = std::fs::read_to_string(format!("/sys/dev/block/{major}:{minor}/uevent")).ok()?;
    let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    let p = Path::new("/dev").join(name);
    p.exists().then_some(p)
}
