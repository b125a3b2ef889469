//! An fstab entry's options split as mount(8) splits them: the flags mount(2) takes
//! (`nosuid`, `noatime`, `ro`, ...), the data string the file system reads (`size=64M`,
//! `errors=remount-ro`), and the options only mount(8) reads (`user`, `_netdev`, `comment=`),
//! which kennel names as ignored. Also the swap options (`pri=`, `discard`). Pure.

use nix::mount::MsFlags;

/// What one entry's options become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOpts {
    pub flags: MsFlags,
    /// Comma-joined, for the file system (`None` when empty).
    pub data: Option<String>,
    /// Options mount(2) has no use for, said on the console.
    pub ignored: Vec<String>,
}

/// Options mount(8) reads and the kernel would refuse (fstab(5), mount(8)).
fn userspace_only(opt: &str) -> bool {
    matches!(
        opt,
        "user" | "nouser" | "users" | "owner" | "group" | "_netdev" | "sw" | "noauto" | "auto"
    ) || opt.starts_with("comment=")
        || opt.starts_with("x-")
        || opt.starts_with("helper=")
}

/// The flag an option sets (`true`) or clears (`false`).
fn flag(opt: &str) -> Option<(MsFlags, bool)> {
    Some(match opt {
        "ro" => (MsFlags::MS_RDONLY, true),
        "rw" => (MsFlags::MS_RDONLY, false),
        "nosuid" => (MsFlags::MS_NOSUID, true),
        "suid" => (MsFlags::MS_NOSUID, false),
        "nodev" => (MsFlags::MS_NODEV, true),
        "dev" => (MsFlags::MS_NODEV, false),
        "noexec" => (MsFlags::MS_NOEXEC, true),
        "exec" => (MsFlags::MS_NOEXEC, false),
        "sync" => (MsFlags::MS_SYNCHRONOUS, true),
        "async" => (MsFlags::MS_SYNCHRONOUS, false),
        "dirsync" => (MsFlags::MS_DIRSYNC, true),
        "mand" => (MsFlags::MS_MANDLOCK, true),
        "nomand" => (MsFlags::MS_MANDLOCK, false),
        "noatime" => (MsFlags::MS_NOATIME, true),
        "atime" => (MsFlags::MS_NOATIME, false),
        "nodiratime" => (MsFlags::MS_NODIRATIME, true),
        "diratime" => (MsFlags::MS_NODIRATIME, false),
        "relatime" => (MsFlags::MS_RELATIME, true),
        "norelatime" => (MsFlags::MS_RELATIME, false),
        "strictatime" => (MsFlags::MS_STRICTATIME, true),
        "lazytime" => (MsFlags::MS_LAZYTIME, true),
        "nolazytime" => (MsFlags::MS_LAZYTIME, false),
        "silent" => (MsFlags::MS_SILENT, true),
        "loud" => (MsFlags::MS_SILENT, false),
        _ => return None,
    })
}

/// Split `options` (as [`super::fstab::Entry::options`] keeps them) with the entry's
/// `ro`/`rw`.
pub fn split(options: &[String], read_only: Option<bool>) -> MountOpts {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut ignored = Vec::new();
    for opt in options {
        if let Some((f, set)) = flag(opt) {
            flags.set(f, set);
        } else if userspace_only(opt) {
            ignored.push(opt.clone());
        } else {
            data.push(opt.as_str());
        }
    }
    if let Some(ro) = read_only {
        flags.set(MsFlags::MS_RDONLY, ro);
    }
    MountOpts {
        flags,
        data: (!data.is_empty()).then(|| data.join(",")),
        ignored,
    }
}

/// swapon(2)'s flags from a swap entry's options (`pri=N`, `discard`); the others are
/// returned as ignored.
pub fn swap_flags(options: &[String]) -> (libc::c_int, Vec<String>) {
    const PREFER: libc::c_int = 0x8000;
    const PRIO_MASK: libc::c_int = 0x7fff;
    const DISCARD: libc::c_int = 0x10000;
    let mut flags = 0;
    let mut ignored = Vec::new();
    for opt in options {
        if let Some(p) = opt.strip_prefix("pri=").and_then(|p| p.parse::<u16>().ok()) {
            flags |= PREFER | (libc::c_int::from(p) & PRIO_MASK);
        } else if opt == "discard" || opt.starts_with("discard=") {
            flags |= DISCARD;
        } else if opt != "sw" && opt != "defaults" {
            ignored.push(opt.clone());
        }
    }
    (flags, ignored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_data_and_userspace_options_are_told_apart() {
        let o = split(
            &s(&[
                "size=64M",
                "mode=1777",
                "noatime",
                "nosuid",
                "user",
                "_netdev",
            ]),
            None,
        );
        assert_eq!(o.flags, MsFlags::MS_NOATIME | MsFlags::MS_NOSUID);
        assert_eq!(o.data.as_deref(), Some("size=64M,mode=1777"));
        assert_eq!(o.ignored, ["user", "_netdev"]);
        let o = split(&s(&["errors=remount-ro"]), Some(true));
        assert_eq!(o.flags, MsFlags::MS_RDONLY);
        assert_eq!(o.data.as_deref(), Some("errors=remount-ro"));
        // A later option undoes an earlier one, as mount(8) reads them.
        let o = split(&s(&["noexec", "exec"]), Some(false));
        assert_eq!(o.flags, MsFlags::empty());
        assert_eq!(o.data, None);
    }

    #[test]
    fn swap_priority_and_discard() {
        assert_eq!(swap_flags(&s(&["sw"])), (0, vec![]));
        assert_eq!(
            swap_flags(&s(&["pri=5", "discard"])).0,
            0x8000 | 5 | 0x10000
        );
        assert_eq!(swap_flags(&s(&["noatime"])).1, ["noatime"]);
    }
}
