//! kennel as the init of a machine (`/sbin/init`, or `kennel boot`): early mounts, the
//! hostname, loopback, kernel modules, then the supervisor on `/etc/kennel/units`; at the
//! end an ordered power-off; and if anything goes wrong, emergency mode instead of death.

mod cmdline;
pub mod console;
pub mod emergency;
mod fstab;
mod modules;
mod mounts;
pub mod power;

use std::path::{Path, PathBuf};

pub use cmdline::Cmdline;

use crate::daemon;
use power::PowerAction;

/// What kennel says of /etc/fstab: it reads it, but does not mount its entries yet, and says
/// which (a user must not believe /tmp or swap are set up when they are not). The root's
/// line is left out: the kernel or the initramfs mounted it.
fn fstab_notice(text: Option<&str>) -> Vec<String> {
    let Some(text) = text else {
        return Vec::new();
    };
    match fstab::parse(text) {
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
        Ok(entries) => {
            let wanted: Vec<String> = entries
                .iter()
                .filter(|e| e.target != "/" && !e.noauto)
                .map(|e| {
                    if e.is_swap() {
                        format!("swap {}", e.source)
                    } else {
                        format!("{} ({})", e.target, e.fstype)
                    }
                })
                .collect();
            if wanted.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "/etc/fstab: not mounted, kennel does not mount fstab entries yet: {}",
                    wanted.join(", ")
                )]
            }
        }
    }
}

/// Boot the machine and run it until power-off. Never returns (PID 1 must not exit).
pub fn main() -> ! {
    if nix::unistd::getpid().as_raw() != 1 {
        eprintln!("kennel boot: must run as PID 1 (the kernel's init); use `kennel up` otherwise");
        std::process::exit(1);
    }
    console::line(&format!("kennel {} booting", env!("CARGO_PKG_VERSION")));
    for l in mounts::early() {
        console::line(&l);
    }
    let cmd = Cmdline::read();
    let level = cmd.log.clone().unwrap_or_else(|| "info".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_timer(console::SinceBoot)
        .with_writer(std::io::stderr)
        .try_init();

    set_hostname(&cmd);
    if let Err(e) = crate::spawn::helper::container::loopback_up() {
        console::line(&format!("bring up lo: {e}"));
    }
    // Ctrl-Alt-Del sends SIGINT to init rather than rebooting at once.
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        console::line(&format!("disable Ctrl-Alt-Del: {e}"));
    }
    match modules::BootConfig::read(Path::new("/etc/kennel/boot.toml")) {
        Ok(cfg) => {
            for l in modules::load(&cfg.modules) {
                console::line(&l);
            }
        }
        Err(e) => console::line(&format!("boot.toml: {e}")),
    }
    for l in fstab_notice(std::fs::read_to_string("/etc/fstab").ok().as_deref()) {
        console::line(&l);
    }

    let opts = daemon::Options {
        units: cmd
            .units
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/kennel/units")),
        state_dir: PathBuf::from("/var/lib/kennel"),
        log_dir: PathBuf::from("/var/log/kennel"),
        socket: PathBuf::from("/run/kennel/kennel.sock"),
        cgroup_parent: None,
        socket_group: None,
        echo: true,
        boot: true,
        test_panic: cmd.test_panic,
        ending: kennel_core::Ending::default(),
    };
    tracing::debug!("early setup done, supervising {}", opts.units.display());
    let run = std::panic::catch_unwind(move || daemon::up(opts));
    match run {
        Ok(Ok(outcome)) => power::finish(outcome.power.unwrap_or(PowerAction::Poweroff)),
        Ok(Err(e)) => emergency::run(&format!("kennel could not supervise: {e}")),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            emergency::run(&format!("kennel panicked: {what}"))
        }
    }
}

fn set_hostname(cmd: &Cmdline) {
    let name = cmd.hostname.clone().or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    });
    if let Some(name) = name {
        match nix::unistd::sethostname(&name) {
            Ok(()) => console::line(&format!("hostname {name}")),
            Err(e) => console::line(&format!("sethostname {name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fstab_notice;

    #[test]
    fn fstab_entries_kennel_does_not_mount_are_named() {
        assert!(fstab_notice(None).is_empty());
        assert!(fstab_notice(Some("UUID=1 / ext4 defaults 0 1\n")).is_empty());
        assert_eq!(
            fstab_notice(Some(
                "UUID=1 / ext4 defaults 0 1\ntmpfs /tmp tmpfs size=1M 0 0\n/swapfile none swap sw\n/dev/x /mnt auto noauto\n"
            )),
            ["/etc/fstab: not mounted, kennel does not mount fstab entries yet: /tmp (tmpfs), swap /swapfile"]
        );
        assert_eq!(
            fstab_notice(Some("/dev/a /a\n")),
            ["/etc/fstab:1: 2 field(s), at least 3 needed (source, mount point, type)"]
        );
    }
}
