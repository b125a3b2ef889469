//! Mounting `/etc/fstab` at boot: every entry in order ([`super::fsorder`]), its device found
//! ([`super::blockdev`]) and checked first when it has a pass number ([`super::fsck`]); swap
//! turned on. A failure of an entry without `nofail` is an emergency naming its line. What
//! was done is recorded in `/run/kennel/mounts.json` for `kennel mounts`.

use std::ffi::CString;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use serde::{Deserialize, Serialize};

use super::fstab::{Bind, Entry};
use super::{blockdev, console, fsck, mountopts};

/// Where the records are kept (a tmpfs: gone at the next boot).
pub const RECORDS: &str = "/run/kennel/mounts.json";

/// What happened to one fstab line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub line: usize,
    /// As written (`UUID=...`).
    pub source: String,
    /// The device it was found to be, when it is one.
    pub device: Option<String>,
    /// The mount point (`swap` for swap).
    pub target: String,
    pub fstype: String,
    /// `mounted`, `swap on`, `already mounted`, `noauto`, `failed (nofail): WHY`, ...
    pub state: String,
}

/// A mount that failed and is not `nofail`: the boot cannot go on.
#[derive(Debug, thiserror::Error)]
#[error("/etc/fstab:{line}: {what}")]
pub struct Emergency {
    pub line: usize,
    pub what: String,
}

/// Whether `path` is a mount point now.
pub fn is_mount_point(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
        info.lines().any(|l| {
            l.split_whitespace()
                .nth(4)
                .is_some_and(|t| crate::octal::unescape(t) == path)
        })
    })
}

/// Mount every entry but the root's (done before, see [`super::rootfs`]) and `noauto` ones.
pub fn mount_all(entries: &[Entry], policy: fsck::Policy) -> Result<Vec<Record>, Emergency> {
    let order = super::fsorder::order(entries).map_err(|e| Emergency {
        line: e.line,
        what: e.what,
    })?;
    let mut records: Vec<Record> = entries
        .iter()
        .filter(|e| e.noauto)
        .map(|e| record(e, None, "noauto: not mounted at boot"))
        .collect();
    for i in order {
        let e = &entries[i];
        for opt in &e.unread {
            console::line(&format!(
                "/etc/fstab:{}: {opt} is not read by kennel; ignored",
                e.line
            ));
        }
        match one(e, policy) {
            Ok(r) => records.push(r),
            Err((device, what)) if e.nofail => {
                console::line(&format!("/etc/fstab:{}: {what} (nofail: going on)", e.line));
                records.push(record(e, device, &format!("failed (nofail): {what}")));
            }
            Err((_, what)) => {
                save(&records);
                return Err(Emergency { line: e.line, what });
            }
        }
    }
    records.sort_by_key(|r| r.line);
    save(&records);
    Ok(records)
}

fn record(e: &Entry, device: Option<String>, state: &str) -> Record {
    Record {
        line: e.line,
        source: e.source.to_string(),
        device,
        target: if e.is_swap() {
            "swap".into()
        } else {
            e.target.clone()
        },
        fstype: e.fstype.clone(),
        state: state.into(),
    }
}

fn save(records: &[Record]) {
    let _ = std::fs::create_dir_all("/run/kennel");
    if let Ok(json) = serde_json::to_vec_pretty(records) {
        if let Err(e) = std::fs::write(RECORDS, json) {
            console::line(&format!("write {RECORDS}: {e}"));
        }
    }
}

type Failure = (Option<String>, String);

/// `kennel mounts`: the records as a table, each with whether it is in place now. Returns
/// the exit code.
pub fn show(path: &Path) -> i32 {
    let records: Vec<Record> = match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("kennel mounts: {}: {e}", path.display());
                return 1;
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "kennel mounts: no {}: kennel did not boot this machine (`kennel boot` writes it when it mounts /etc/fstab)",
                path.display()
            );
            return 1;
        }
        Err(e) => {
            eprintln!("kennel mounts: {}: {e}", path.display());
            return 1;
        }
    };
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let mut rows = vec![[
        "LINE".to_string(),
        "TARGET".into(),
        "SOURCE".into(),
        "DEVICE".into(),
        "TYPE".into(),
        "NOW".into(),
        "AT BOOT".into(),
    ]];
    for r in &records {
        let now = if r.target == "swap" {
            let dev = r.device.as_deref().unwrap_or(&r.source);
            swaps
                .lines()
                .skip(1)
                .any(|l| l.split_whitespace().next() == Some(dev))
        } else {
            is_mount_point(&r.target)
        };
        rows.push([
            r.line.to_string(),
            r.target.clone(),
            r.source.clone(),
            r.device.clone().unwrap_or_else(|| "-".into()),
            r.fstype.clone(),
            if now { "in place" } else { "not in place" }.into(),
            r.state.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c == 6 {
                    v.clone()
                } else {
                    format!("{v:<w$}", w = widths[c])
                }
            })
            .collect();
        println!("{}", cells.join("  "));
    }
    0
}

/// Mount (or swap on) one entry.
fn one(e: &Entry, policy: fsck::Policy) -> Result<Record, Failure> {
    if !e.is_swap() && is_mount_point(&e.target) {
        return Ok(record(e, None, "already mounted"));
    }
    let timeout = e.device_timeout.unwrap_or(blockdev::DEFAULT_TIMEOUT);
    let source = blockdev::resolve(&e.source, timeout).map_err(|w| (None, w))?;
    let device = blockdev::is_block(&source).then(|| source.display().to_string());
    let fail = |what: String| (device.clone(), what);
    if e.pass > 0 {
        if let Some(dev) = &device {
            checked(policy, dev, Some(&e.fstype)).map_err(&fail)?;
        }
    }
    if e.is_swap() {
        swap_on(&source, &e.options).map_err(&fail)?;
        console::line(&format!("swap on {}", source.display()));
        return Ok(record(e, device, "swap on"));
    }
    let opts = mountopts::split(&e.options, e.read_only);
    if !opts.ignored.is_empty() {
        console::line(&format!(
            "/etc/fstab:{}: {} only mean something to mount(8); ignored",
            e.line,
            opts.ignored.join(",")
        ));
    }
    std::fs::create_dir_all(&e.target)
        .map_err(|err| fail(format!("create mount point {}: {err}", e.target)))?;
    let what = match e.bind {
        Some(kind) => bind(&source, &e.target, kind, opts.flags),
        None => fs(&source, e, opts.flags, opts.data.as_deref()),
    };
    what.map_err(&fail)?;
    console::line(&format!(
        "mounted {} on {} ({})",
        e.source,
        e.target,
        if e.bind.is_some() { "bind" } else { &e.fstype }
    ));
    Ok(record(e, device, "mounted"))
}

/// Check `device`; a verdict that must stop the boot is an error saying what to do.
pub fn checked(policy: fsck::Policy, device: &str, fstype: Option<&str>) -> Result<(), String> {
    match fsck::check(policy, device, fstype) {
        fsck::Verdict::Clean => console::line(&format!("fsck {device}: clean")),
        fsck::Verdict::Corrected => console::line(&format!("fsck {device}: errors corrected")),
        fsck::Verdict::Skipped(why) => console::line(&format!("fsck {device}: not checked: {why}")),
        fsck::Verdict::RebootNeeded => {
            console::line(&format!(
                "fsck {device}: errors corrected on a mounted file system; rebooting"
            ));
            super::power::finish(super::power::PowerAction::Reboot)
        }
        fsck::Verdict::Failed(code, meaning) => {
            return Err(format!(
                "fsck {device} failed (exit {code}: {meaning}); check it by hand in the emergency shell (`fsck {device}`), then `kennel reboot`"
            ))
        }
    }
    Ok(())
}

fn bind(source: &Path, target: &str, kind: Bind, flags: MsFlags) -> Result<(), String> {
    let mut f = MsFlags::MS_BIND;
    if kind == Bind::Recursive {
        f |= MsFlags::MS_REC;
    }
    mount(Some(source), target, None::<&str>, f, None::<&str>)
        .map_err(|e| format!("bind {} on {target}: {}", source.display(), e.desc()))?;
    // A bind mount takes its flags only from a remount of itself.
    if !flags.is_empty() {
        let f = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | flags;
        mount(None::<&str>, target, None::<&str>, f, None::<&str>)
            .map_err(|e| format!("remount bind {target} with its options: {}", e.desc()))?;
    }
    Ok(())
}

/// The file system types to try for `auto`: the kernel's, but those without a device.
fn auto_types() -> Vec<String> {
    std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("nodev"))
        .map(|l| l.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn fs(source: &Path, e: &Entry, flags: MsFlags, data: Option<&str>) -> Result<(), String> {
    let types = if e.fstype == "auto" {
        auto_types()
    } else {
        vec![e.fstype.clone()]
    };
    let mut last = None;
    for t in &types {
        match mount(
            Some(source),
            e.target.as_str(),
            Some(t.as_str()),
            flags,
            data,
        ) {
            Ok(()) => return Ok(()),
            Err(err) => last = Some(err),
        }
    }
    Err(format!(
        "mount {} ({}) on {}: {}",
        source.display(),
        e.fstype,
        e.target,
        last.map_or("no file system type to try".into(), |e| e
            .desc()
            .to_string())
    ))
}

fn swap_on(source: &Path, options: &[String]) -> Result<(), String> {
    let (flags, _ignored) = mountopts::swap_flags(options);
    let path = CString::new(source.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("{}: a NUL in the path", source.display()))?;
    // SAFETY: a valid C string and flags; swapon(2) reads them only.
    if unsafe { libc::swapon(path.as_ptr(), flags) } == 0 {
        return Ok(());
    }
    let err = nix::errno::Errno::last();
    if err == nix::errno::Errno::EBUSY {
        return Ok(()); // already on
    }
    Err(format!("swapon {}: {}", source.display(), err.desc()))
}

/// Turn every swap area off (`/proc/swaps`); the lines to say.
pub fn swap_off_all() -> Vec<String> {
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let mut lines = Vec::new();
    for l in swaps.lines().skip(1) {
        let Some(path) = l.split_whitespace().next() else {
            continue;
        };
        let path = crate::octal::unescape(path);
        let Ok(c) = CString::new(path.as_bytes()) else {
            continue;
        };
        // SAFETY: a valid C string.
        if unsafe { libc::swapoff(c.as_ptr()) } == 0 {
            lines.push(format!("swap off {path}"));
        } else {
            lines.push(format!(
                "swapoff {path}: {}",
                nix::errno::Errno::last().desc()
            ));
        }
    }
    lines
}
