//! `/etc/fstab` read into typed entries (fstab(5)): the source (a path or `UUID=`, `LABEL=`,
//! `PARTUUID=`, `PARTLABEL=`), the mount point, the type, the options kennel acts on
//! (`noauto`, `nofail`, `bind`, `ro`/`rw`, `x-systemd.requires=`) apart from those passed to
//! the file system, and the fsck pass. Parsing only: no I/O but the caller's read.

use std::fmt;

use crate::octal::unescape;

/// Where an entry's file system comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path (`/dev/vda2`, `/srv/data` for a bind mount) or a pseudo name (`tmpfs`, `proc`).
    Path(String),
    Uuid(String),
    Label(String),
    PartUuid(String),
    PartLabel(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Path(p) => write!(f, "{p}"),
            Source::Uuid(v) => write!(f, "UUID={v}"),
            Source::Label(v) => write!(f, "LABEL={v}"),
            Source::PartUuid(v) => write!(f, "PARTUUID={v}"),
            Source::PartLabel(v) => write!(f, "PARTLABEL={v}"),
        }
    }
}

/// One line of fstab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The line number (from 1), for messages.
    pub line: usize,
    pub source: Source,
    /// The mount point, or `none`/`swap` for swap.
    pub target: String,
    /// The file system type (`ext4`, `tmpfs`, `swap`, `none` for a bind mount, `auto`).
    pub fstype: String,
    /// Not mounted at boot.
    pub noauto: bool,
    /// A failure to mount it is not an emergency.
    pub nofail: bool,
    /// A bind mount (`bind` or `rbind`; `recursive` for the latter).
    pub bind: Option<Bind>,
    /// `ro` (true) or `rw` (false) when given; the last one wins.
    pub read_only: Option<bool>,
    /// Mount points (`x-systemd.requires-mounts-for=`) and units (`x-systemd.requires=`)
    /// this entry needs first.
    pub requires: Vec<String>,
    /// Every other option, in order, for the file system (`size=64M`, `noatime`, ...);
    /// `defaults` and the `x-*` options are left out.
    pub options: Vec<String>,
    /// `x-systemd.device-timeout=`: how long to wait for the device to appear.
    pub device_timeout: Option<std::time::Duration>,
    /// The `x-systemd.*` options kennel does not act on (said on the console).
    pub unread: Vec<String>,
    /// fsck's pass: 0 no check, 1 the root, 2 the rest.
    pub pass: u8,
}

impl Entry {
    /// A swap area (type `swap`).
    pub fn is_swap(&self) -> bool {
        self.fstype == "swap"
    }
}

/// A bind mount's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    Plain,
    Recursive,
}

/// A line fstab(5) does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("/etc/fstab:{line}: {what}")]
pub struct FstabError {
    pub line: usize,
    pub what: String,
}

/// The entries of an fstab text, or every line that is wrong.
pub fn parse(text: &str) -> Result<Vec<Entry>, Vec<FstabError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        match entry(line, content) {
            Ok(e) => entries.push(e),
            Err(what) => errors.push(FstabError { line, what }),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

fn entry(line: usize, content: &str) -> Result<Entry, String> {
    let fields: Vec<&str> = content.split_whitespace().collect();
    if fields.len() < 3 {
        return Err(format!(
            "{} field(s), at least 3 needed (source, mount point, type)",
            fields.len()
        ));
    }
    if fields.len() > 6 {
        return Err(format!(
            "{} fields, at most 6 (source, mount point, type, options, dump, pass)",
            fields.len()
        ));
    }
    let source = source(&unescape(fields[0]))?;
    let target = unescape(fields[1]);
    let fstype = unescape(fields[2]);
    if fstype != "swap" && target != "none" && !target.starts_with('/') {
        return Err(format!("mount point {target:?} is not an absolute path"));
    }
    let mut e = Entry {
        line,
        source,
        target,
        fstype,
        noauto: false,
        nofail: false,
        bind: None,
        read_only: None,
        requires: Vec::new(),
        options: Vec::new(),
        device_timeout: None,
        unread: Vec::new(),
        pass: 0,
    };
    for opt in fields.get(3).map_or("defaults", |o| o).split(',') {
        match opt {
            "" | "defaults" | "auto" => {}
            "noauto" => e.noauto = true,
            "nofail" => e.nofail = true,
            "bind" => e.bind = Some(Bind::Plain),
            "rbind" => e.bind = Some(Bind::Recursive),
            "ro" => e.read_only = Some(true),
            "rw" => e.read_only = Some(false),
            _ => {
                if let Some(v) = opt
                    .strip_prefix("x-systemd.requires-mounts-for=")
                    .or_else(|| opt.strip_prefix("x-systemd.requires="))
                {
                    e.requires.push(unescape(v));
                } else if let Some(v) = opt.strip_prefix("x-systemd.device-timeout=") {
                    e.device_timeout = Some(timeout(v)?);
                } else if opt.starts_with("x-systemd.") {
                    e.unread.push(opt.to_string());
                } else if !opt.starts_with("x-") {
                    e.options.push(opt.to_string());
                }
            }
        }
    }
    if let Some(dump) = fields.get(4) {
        dump.parse::<u8>()
            .map_err(|_| format!("dump field {dump:?} is not a number"))?;
    }
    if let Some(pass) = fields.get(5) {
        e.pass = pass
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 2)
            .ok_or_else(|| format!("pass field {pass:?} is not 0, 1 or 2"))?;
    }
    Ok(e)
}

/// A systemd time span as fstab gives it: `5`, `5s`, `500ms`, `2min`, `0` (no wait).
fn timeout(v: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("x-systemd.device-timeout={v}: not a time (e.g. 5s, 500ms, 2min)");
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let ms = match unit.trim() {
        "" | "s" | "sec" => n.saturating_mul(1000),
        "ms" | "msec" => n,
        "m" | "min" => n.saturating_mul(60_000),
        _ => return Err(bad()),
    };
    Ok(std::time::Duration::from_millis(ms))
}

fn source(s: &str) -> Result<Source, String> {
    let tagged = |tag: &str, v: &str, f: fn(String) -> Source| {
        if v.is_empty() {
            Err(format!("{tag}= with nothing after it"))
        } else {
            Ok(f(v.trim_matches('"').to_string()))
        }
    };
    if let Some(v) = s.strip_prefix("UUID=") {
        tagged("UUID", v, Source::Uuid)
    } else if let Some(v) = s.strip_prefix("LABEL=") {
        tagged("LABEL", v, Source::Label)
    } else if let Some(v) = s.strip_prefix("PARTUUID=") {
        tagged("PARTUUID", v, Source::PartUuid)
    } else if let Some(v) = s.strip_prefix("PARTLABEL=") {
        tagged("PARTLABEL", v, Source::PartLabel)
    } else {
        Ok(Source::Path(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "\
# /etc/fstab: static file system information.
UUID=0a1b-2c3d  /               ext4    errors=remount-ro 0       1
LABEL=data      /srv/data       ext4    defaults,nofail,x-systemd.device-timeout=5s 0 2
PARTUUID=77-02  /boot           vfat    umask=0077      0       1
tmpfs           /tmp            tmpfs   size=64M,mode=1777,noatime 0 0
/srv/data/www   /var/www        none    bind,ro,x-systemd.requires-mounts-for=/srv/data,x-systemd.automount 0 0
/swapfile       none            swap    sw      0       0
/dev/vdc        /mnt/usb        auto    noauto,user 0 0
/srv/My\\040Files /mnt/files    none    rbind
";

    #[test]
    fn a_debian_fstab_reads_as_typed_entries() {
        let e = parse(DEBIAN).expect("valid");
        assert_eq!(e.len(), 8);
        assert_eq!(e[0].source, Source::Uuid("0a1b-2c3d".into()));
        assert_eq!((e[0].target.as_str(), e[0].pass, e[0].line), ("/", 1, 2));
        assert_eq!(e[0].options, ["errors=remount-ro"]);
        assert_eq!(e[1].source, Source::Label("data".into()));
        assert!(e[1].nofail && e[1].options.is_empty(), "{:?}", e[1]);
        assert_eq!(e[1].device_timeout, Some(std::time::Duration::from_secs(5)));
        assert_eq!(e[2].source.to_string(), "PARTUUID=77-02");
        assert_eq!(e[3].options, ["size=64M", "mode=1777", "noatime"]);
        assert_eq!(e[4].bind, Some(Bind::Plain));
        assert_eq!(e[4].read_only, Some(true));
        assert_eq!(e[4].requires, ["/srv/data"]);
        assert_eq!(e[4].unread, ["x-systemd.automount"]);
        assert!(e[5].is_swap());
        assert!(e[6].noauto);
        assert_eq!(e[6].options, ["user"]);
        assert_eq!(e[7].source, Source::Path("/srv/My Files".into()));
        assert_eq!(e[7].bind, Some(Bind::Recursive));
        assert_eq!(e[7].pass, 0);
    }

    #[test]
    fn every_wrong_line_is_named() {
        let text = "/dev/a /a\n/dev/b /b ext4 defaults 0 7\nUUID= /c ext4\n/dev/d d ext4\n/a /b c d 0 0 x\n";
        let errs = parse(text).expect_err("invalid");
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "/etc/fstab:1: 2 field(s), at least 3 needed (source, mount point, type)",
                "/etc/fstab:2: pass field \"7\" is not 0, 1 or 2",
                "/etc/fstab:3: UUID= with nothing after it",
                "/etc/fstab:4: mount point \"d\" is not an absolute path",
                "/etc/fstab:5: 7 fields, at most 6 (source, mount point, type, options, dump, pass)",
            ]
        );
    }
}
