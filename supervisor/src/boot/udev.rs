//! udev on a disk-booted machine: when the system has it, a `udev` unit (written at boot
//! into [`super::getty::GENERATED`], like the getty units) runs the daemon and counts as up
//! once the devices present at boot have been announced and handled (coldplug:
//! `udevadm trigger` then `udevadm settle`), so that modules are autoloaded and
//! `/dev/disk/by-*` is filled. Units that need devices say `after = ["udev"]`.

use std::path::{Path, PathBuf};

/// The udev daemon this system has, if any.
pub fn daemon(exists: impl Fn(&str) -> bool) -> Option<&'static str> {
    [
        "/lib/systemd/systemd-udevd",
        "/usr/lib/systemd/systemd-udevd",
        "/sbin/udevd",
        "/usr/sbin/udevd",
    ]
    .into_iter()
    .find(|p| exists(p))
}

/// The unit file running `daemon`.
pub fn unit(daemon: &str) -> String {
    format!(
        "# Made by kennel at boot: the udev daemon, up once the devices present at boot are\n\
         # handled (coldplug). To change it, copy this file to /etc/kennel/units/udev.toml;\n\
         # for none, set `udev = false` in /etc/kennel/boot.toml.\n\
         description = \"device manager (coldplug at boot)\"\n\n\
         [service]\n\
         command = [{daemon:?}]\n\n\
         [ready]\n\
         command = [\"/bin/sh\", \"-c\", \"udevadm trigger --type=subsystems --action=add && udevadm trigger --type=devices --action=add && udevadm settle --timeout=180\"]\n\
         timeout = \"200s\"\n"
    )
}

/// Write the `udev` unit if the system has udev and the unit directory has no `udev.toml`.
pub fn generate(units: &Path) -> (Option<PathBuf>, Option<String>) {
    if units.join("udev.toml").exists() {
        return (None, Some("udev: the unit directory's own".into()));
    }
    let Some(d) = daemon(|p| Path::new(p).exists()) else {
        return (None, None);
    };
    let dir = Path::new(super::getty::GENERATED);
    let write =
        std::fs::create_dir_all(dir).and_then(|()| std::fs::write(dir.join("udev.toml"), unit(d)));
    match write {
        Ok(()) => (Some(dir.to_path_buf()), Some(format!("udev: {d}"))),
        Err(e) => (None, Some(format!("udev: write {}: {e}", dir.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_udev_unit_is_valid_and_waits_for_coldplug() {
        assert_eq!(daemon(|_| false), None);
        let d = daemon(|p| p == "/sbin/udevd").expect("eudev");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("udev.toml"), unit(d)).expect("write");
        let set = kennel_units::load_dir(dir.path()).expect("a valid unit");
        let u = set.get("udev").expect("loaded");
        assert_eq!(u.service.command, ["/sbin/udevd"]);
        assert!(u.ready.is_some());
    }
}
