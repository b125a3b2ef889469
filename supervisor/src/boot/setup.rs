//! Early system setup that units expect, once the root is writable: the clock from the RTC
//! when nobody set it, `/etc/machine-id` made once, sysctl files applied, modules-load.d's
//! modules, the random seed carried across boots, `/tmp` emptied unless it is a tmpfs.
//! Each step says on the console what it did or why it could not; none stops the boot.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::console;

/// The directories of a `*.d` configuration, the first winning for a file name (as
/// systemd and procps read them).
const CONF_DIRS: &[&str] = &["/etc", "/run", "/usr/local/lib", "/usr/lib", "/lib"];

/// The files of `NAME.d` in the directories of [`CONF_DIRS`] under `root`, by file name
/// (a name in an earlier directory hides the later ones).
pub fn conf_files(root: &Path, name: &str) -> Vec<PathBuf> {
    let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in CONF_DIRS {
        let d = root.join(dir.trim_start_matches('/')).join(name);
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if file.ends_with(".conf") {
                by_name.entry(file).or_insert_with(|| e.path());
            }
        }
    }
    by_name.into_values().collect()
}

/// One `key = value` of a sysctl file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    /// Relative to `/proc/sys` (`vm/swappiness`).
    pub path: String,
    pub value: String,
    /// A leading `-`: a failure is not reported.
    pub quiet: bool,
    /// `FILE:LINE`, for messages.
    pub at: String,
}

/// sysctl.d(5): `key = value` lines, `#` and `;` comments; dots separate the key's parts
/// unless it has slashes. The lines that are wrong are returned apart.
pub fn parse_sysctl(file: &str, text: &str) -> (Vec<Sysctl>, Vec<String>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        let at = format!("{file}:{}", i + 1);
        let Some((k, v)) = l.split_once('=') else {
            bad.push(format!("{at}: no `=` in {l:?}"));
            continue;
        };
        let (quiet, k) = match k.trim().strip_prefix('-') {
            Some(k) => (true, k.trim()),
            None => (false, k.trim()),
        };
        if k.is_empty() || k.contains('*') || k.contains("..") {
            bad.push(format!("{at}: key {k:?} is not supported"));
            continue;
        }
        // The first separator tells: `/` keeps dots (`eth0.1`); with `.`, a `/` stands
        // for a dot in a name (`net.ipv4.conf.eth0/1.x` is `.../eth0.1/x`).
        let k = k.trim_start_matches('/');
        let path = if k.find(['.', '/']).is_some_and(|i| k.as_bytes()[i] == b'/') {
            k.to_string()
        } else {
            k.chars()
                .map(|c| match c {
                    '.' => '/',
                    '/' => '.',
                    c => c,
                })
                .collect()
        };
        out.push(Sysctl {
            path,
            value: v.trim().to_string(),
            quiet,
            at,
        });
    }
    (out, bad)
}

/// Apply `/etc/sysctl.d` (and the other directories) then `/etc/sysctl.conf`.
pub fn sysctl() {
    let mut files = conf_files(Path::new("/"), "sysctl.d");
    let conf = PathBuf::from("/etc/sysctl.conf");
    let already = files
        .iter()
        .any(|f| std::fs::canonicalize(f).ok() == std::fs::canonicalize(&conf).ok());
    if conf.exists() && !already {
        files.push(conf);
    }
    let mut applied = 0;
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let (settings, bad) = parse_sysctl(&f.display().to_string(), &text);
        for b in bad {
            console::line(&format!("sysctl {b}"));
        }
        for s in settings {
            match std::fs::write(Path::new("/proc/sys").join(&s.path), &s.value) {
                Ok(()) => applied += 1,
                Err(e) if !s.quiet => {
                    console::line(&format!("sysctl {}: {} = {}: {e}", s.at, s.path, s.value))
                }
                Err(_) => {}
            }
        }
    }
    if applied > 0 {
        console::line(&format!("sysctl: {applied} setting(s) applied"));
    }
}

/// The module names of `modules-load.d` and Debian's `/etc/modules` (one per line, `#`
/// and `;` comments).
pub fn modules_to_load(root: &Path) -> Vec<String> {
    let mut files = conf_files(root, "modules-load.d");
    files.push(root.join("etc/modules"));
    let mut names = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            if let Some(name) = l.split_whitespace().next() {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
}

/// Random bytes from the kernel (not blocking: at boot the pool may not be ready, and
/// what is read is mixed, not trusted alone).
fn random(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    // SAFETY: buf is n writable bytes.
    let got = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), n, libc::GRND_INSECURE) };
    if got != n as isize {
        if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
            let _ = f.read_exact(&mut buf);
        }
    }
    buf
}

/// `/etc/machine-id`: 32 hex digits, made once when the file is missing, empty or
/// `uninitialized` (a read-only root gets one in /run, bind-mounted over it).
pub fn machine_id() {
    let path = Path::new("/etc/machine-id");
    let now = std::fs::read_to_string(path).unwrap_or_default();
    let now = now.trim();
    if now.len() == 32 && now.bytes().all(|b| b.is_ascii_hexdigit()) {
        return;
    }
    let mut id: String = random(16).iter().map(|b| format!("{b:02x}")).collect();
    id.push('\n');
    match std::fs::write(path, &id) {
        Ok(()) => console::line(&format!("machine-id {} (new)", id.trim())),
        Err(e) => {
            let run = Path::new("/run/machine-id");
            let bound = std::fs::write(run, &id).is_ok()
                && path.exists()
                && nix::mount::mount(
                    Some(run),
                    path,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .is_ok();
            if bound {
                console::line(&format!(
                    "machine-id {} (for this boot only: {}: {e})",
                    id.trim(),
                    path.display()
                ));
            } else {
                console::line(&format!("machine-id: cannot write {}: {e}", path.display()));
            }
        }
    }
}

/// Where the random seed is kept between boots.
pub const SEED: &str = "/var/lib/kennel/random-seed";

/// At boot: mix the saved seed into the kernel's pool, then replace it at once (a seed is
/// never used twice, even if the machine crashes). At power-off: save a fresh one.
pub fn random_seed(at_boot: bool) {
    let path = Path::new(SEED);
    if at_boot {
        if let Ok(old) = std::fs::read(path) {
            if let Ok(mut u) = std::fs::OpenOptions::new().write(true).open("/dev/urandom") {
                let _ = u.write_all(&old);
            }
        }
    }
    let _ = std::fs::create_dir_all("/var/lib/kennel");
    let write = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(&random(512)).and_then(|()| f.sync_all()));
    if let Err(e) = write {
        console::line(&format!("random seed {SEED}: {e}"));
    }
}

/// The earliest time this build can run at: a clock before it was never set.
const CLOCK_FLOOR: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

/// `struct rtc_time` (the first nine fields of `struct tm`).
#[repr(C)]
#[derive(Default)]
struct RtcTime {
    sec: libc::c_int,
    min: libc::c_int,
    hour: libc::c_int,
    mday: libc::c_int,
    mon: libc::c_int,
    year: libc::c_int,
    wday: libc::c_int,
    yday: libc::c_int,
    isdst: libc::c_int,
}

/// `RTC_RD_TIME`: `_IOR('p', 0x09, struct rtc_time)`.
/// (`libc::Ioctl` is a `c_ulong` on glibc, a `c_int` on musl: the same bits.)
#[allow(clippy::unnecessary_cast)]
const RTC_RD_TIME: libc::Ioctl = 0x8024_7009_u32 as libc::Ioctl;

/// Set the clock from the RTC (read as UTC) if it is before [`CLOCK_FLOOR`]: a kernel
/// without `RTC_HCTOSYS` leaves it at 1970.
pub fn clock() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if now >= CLOCK_FLOOR {
        return;
    }
    let Ok(rtc) = std::fs::File::open("/dev/rtc0") else {
        console::line("clock: not set, and no /dev/rtc0 to read it from");
        return;
    };
    let mut t = RtcTime::default();
    use std::os::fd::AsRawFd;
    // SAFETY: RTC_RD_TIME fills a struct rtc_time, which `t` is.
    if unsafe { libc::ioctl(rtc.as_raw_fd(), RTC_RD_TIME, &mut t as *mut RtcTime) } != 0 {
        console::line(&format!(
            "clock: read /dev/rtc0: {}",
            std::io::Error::last_os_error()
        ));
        return;
    }
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    (tm.tm_sec, tm.tm_min, tm.tm_hour) = (t.sec, t.min, t.hour);
    (tm.tm_mday, tm.tm_mon, tm.tm_year) = (t.mday, t.mon, t.year);
    // SAFETY: a filled struct tm.
    let secs = unsafe { libc::timegm(&mut tm) };
    let ts = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } == 0 {
        console::line(&format!("clock set from the RTC ({secs} s since 1970)"));
    } else {
        console::line(&format!(
            "clock: set from the RTC: {}",
            std::io::Error::last_os_error()
        ));
    }
}

/// Empty `/tmp` unless it is a mount of its own (a tmpfs starts empty), staying on its
/// file system: a mount below it is not entered.
pub fn clean_tmp() {
    let tmp = Path::new("/tmp");
    if super::fsmount::is_mount_point("/tmp") {
        return;
    }
    let Ok(meta) = std::fs::symlink_metadata(tmp) else {
        return;
    };
    let mut removed = 0;
    let mut failed = Vec::new();
    empty_dir(tmp, meta.dev(), &mut removed, &mut failed);
    if removed > 0 {
        console::line(&format!("/tmp: {removed} entr(ies) removed"));
    }
    for f in failed.iter().take(5) {
        console::line(&format!("/tmp: {f}"));
    }
}

fn empty_dir(dir: &Path, dev: u64, removed: &mut usize, failed: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if m.dev() != dev {
            continue;
        }
        let r = if m.is_dir() {
            empty_dir(&p, dev, removed, failed);
            std::fs::remove_dir(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match r {
            Ok(()) => *removed += 1,
            Err(err) => failed.push(format!("remove {}: {err}", p.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_lines() {
        let (s, bad) = parse_sysctl(
            "f.conf",
            "# c\n; c\nvm.swappiness = 13\n-net.ipv4.conf.eth0/1.x=1\nkernel/yama/ptrace_scope=1\nnot a line\nnet.*.x = 1\n",
        );
        assert_eq!(
            s.iter()
                .map(|x| (x.path.as_str(), x.value.as_str(), x.quiet))
                .collect::<Vec<_>>(),
            [
                ("vm/swappiness", "13", false),
                ("net/ipv4/conf/eth0.1/x", "1", true),
                ("kernel/yama/ptrace_scope", "1", false)
            ]
        );
        assert_eq!(s[0].at, "f.conf:3");
        assert_eq!(
            bad,
            [
                "f.conf:6: no `=` in \"not a line\"",
                "f.conf:7: key \"net.*.x\" is not supported"
            ]
        );
    }

    #[test]
    fn conf_dirs_earlier_hide_later_and_modules_are_listed_once() {
        let root = tempfile::tempdir().expect("tempdir");
        let w = |p: &str, t: &str| {
            let p = root.path().join(p);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, t).expect("write");
        };
        w("usr/lib/modules-load.d/a.conf", "hidden\n");
        w("etc/modules-load.d/a.conf", "# c\nloop\n");
        w("usr/lib/modules-load.d/b.conf", "overlay\nloop\n");
        w("etc/modules", "; debian\nbr_netfilter\n");
        assert_eq!(
            modules_to_load(root.path()),
            ["loop", "overlay", "br_netfilter"]
        );
    }
}
