//! The root file system at boot: the kernel or the initramfs mounted it, read-only when
//! the command line said `ro` (the usual way, so that it can be checked). If fstab (or,
//! without a line for `/` there, the command line's `rw`) wants it writable: check it with
//! its pass number, then remount it with fstab's options.

use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

use super::fsmount::{self, Emergency};
use super::fstab::Entry;
use super::{blockdev, console, fsck, mountopts};

/// What the root should become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// It is as wanted: nothing to do, and why.
    Leave(String),
    /// Check it (with fsck) first, then remount it with these options.
    Remount {
        check: bool,
        options: Vec<String>,
        read_only: bool,
    },
}

/// Decide from whether the root is read-only now, fstab's line for `/` and the command
/// line's `rw` (`ro` only says how the kernel mounts it first). Pure.
pub fn plan(read_only_now: bool, entry: Option<&Entry>, cmdline_rw: bool) -> Plan {
    if !read_only_now {
        return Plan::Leave(
            "/ is read-write already (rw on the kernel command line): not checked by fsck".into(),
        );
    }
    match entry {
        Some(e) if e.read_only == Some(true) => {
            Plan::Leave("/ stays read-only (ro in /etc/fstab)".into())
        }
        Some(e) => Plan::Remount {
            check: e.pass > 0,
            options: e.options.clone(),
            read_only: false,
        },
        None if cmdline_rw => Plan::Remount {
            check: true,
            options: Vec::new(),
            read_only: false,
        },
        None => Plan::Leave(
            "/ stays read-only: no line for / in /etc/fstab and no rw on the kernel command line"
                .into(),
        ),
    }
}

/// The root's file system type, from mountinfo.
fn root_type() -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .rfind(|l| l.split_whitespace().nth(4) == Some("/"))
        .and_then(|l| l.split(" - ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
}

/// Carry out [`plan`] for this machine's root. An fsck that needs a person is an emergency.
pub fn prepare(
    entry: Option<&Entry>,
    cmdline_rw: bool,
    policy: fsck::Policy,
) -> Result<(), Emergency> {
    let read_only_now = statvfs("/").is_ok_and(|s| s.flags().contains(FsFlags::ST_RDONLY));
    if !read_only_now && entry.is_none() {
        return Ok(()); // an initramfs as the root, or `rw` without fstab: nothing to say
    }
    let (check, options, read_only) = match plan(read_only_now, entry, cmdline_rw) {
        Plan::Leave(why) => {
            console::line(&why);
            return Ok(());
        }
        Plan::Remount {
            check,
            options,
            read_only,
        } => (check, options, read_only),
    };
    let line = entry.map_or(0, |e| e.line);
    if check {
        match blockdev::device_of(Path::new("/")) {
            Some(dev) => {
                fsmount::checked(policy, &dev.display().to_string(), root_type().as_deref())
                    .map_err(|what| Emergency { line, what })?
            }
            None => console::line("fsck /: no block device under / (not checked)"),
        }
    }
    let opts = mountopts::split(&options, Some(read_only));
    let flags = MsFlags::MS_REMOUNT | opts.flags;
    mount(None::<&str>, "/", None::<&str>, flags, opts.data.as_deref()).map_err(|e| Emergency {
        line,
        what: format!("remount / read-write: {}", e.desc()),
    })?;
    console::line("remounted / read-write");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::fstab::parse;
    use super::*;

    #[test]
    fn the_root_is_checked_and_made_writable_as_fstab_says() {
        let e = parse("UUID=r / ext4 errors=remount-ro 0 1\n").expect("valid");
        assert_eq!(
            plan(true, e.first(), false),
            Plan::Remount {
                check: true,
                options: vec!["errors=remount-ro".into()],
                read_only: false
            }
        );
        // Pass 0: no check.
        let e = parse("/dev/vda / ext4 defaults 0 0\n").expect("valid");
        assert!(matches!(
            plan(true, e.first(), false),
            Plan::Remount { check: false, .. }
        ));
        // fstab says ro: left.
        let e = parse("/dev/vda / ext4 ro 0 1\n").expect("valid");
        assert!(
            matches!(plan(true, e.first(), true), Plan::Leave(w) if w.contains("ro in /etc/fstab"))
        );
        // Writable already (`rw`): a mounted writable file system is not checked.
        assert!(
            matches!(plan(false, e.first(), true), Plan::Leave(w) if w.contains("not checked"))
        );
        // No line for /: the command line decides.
        assert!(matches!(
            plan(true, None, true),
            Plan::Remount { check: true, .. }
        ));
        assert!(matches!(plan(true, None, false), Plan::Leave(w) if w.contains("no line for /")));
    }
}
