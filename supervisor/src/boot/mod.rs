//! kennel as the init of a machine (`/sbin/init`, or `kennel boot`): early mounts, the
//! root checked and made writable, /etc/fstab and swap, the hostname, machine-id, sysctls,
//! loopback, kernel modules, a getty on the console, then the supervisor on
//! `/etc/kennel/units`; at the end an ordered power-off; and if anything goes wrong,
//! emergency mode instead of death.

mod blockdev;
mod cmdline;
pub mod console;
pub mod emergency;
mod fsck;
pub mod fsmount;
mod fsorder;
mod fstab;
mod getty;
mod modules;
mod mountopts;
mod mounts;
pub mod net;
pub mod power;
mod rootfs;
mod setup;
mod udev;

use std::path::{Path, PathBuf};

pub use cmdline::Cmdline;

use crate::daemon;
use power::PowerAction;

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

    for w in &cmd.unknown {
        console::line(&format!(
            "kernel command line: {w}: unknown value, the default is used"
        ));
    }
    // In a container (kennel as /sbin/init of a podman or Docker image) the host owns the
    // disks, swap, sysctls and the clock: none of that is touched, even when privileged.
    let machine = crate::container_runtime();
    if let Some(rt) = &machine {
        console::line(&format!(
            "in a {rt} container: fsck, /etc/fstab, swap, sysctls, the clock and the random seed are the host's; left alone"
        ));
    }
    let machine = machine.is_none();
    let fstab = if machine { read_fstab() } else { Vec::new() };
    if machine {
        setup::clock();
        let root_entry = fstab.iter().find(|e| e.target == "/");
        if let Err(e) = rootfs::prepare(root_entry, cmd.rw, cmd.fsck) {
            emergency::run(&e.to_string());
        }
    }

    set_hostname(&cmd);
    setup::machine_id();
    if let Err(e) = crate::spawn::helper::container::loopback_up() {
        console::line(&format!("bring up lo: {e}"));
    }
    // Ctrl-Alt-Del sends SIGINT to init rather than rebooting at once.
    if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
        console::line(&format!("disable Ctrl-Alt-Del: {e}"));
    }
    let cfg = match modules::BootConfig::read(Path::new("/etc/kennel/boot.toml")) {
        Ok(cfg) => cfg,
        Err(e) => {
            console::line(&format!("boot.toml: {e}"));
            modules::BootConfig::default()
        }
    };
    let mut wanted = cfg.modules.clone();
    for m in cmd
        .modules_load
        .iter()
        .cloned()
        .chain(setup::modules_to_load(Path::new("/")))
    {
        if !wanted.contains(&m) {
            wanted.push(m);
        }
    }
    for l in modules::load(&wanted) {
        console::line(&l);
    }
    if machine {
        // The network before the mounts (which may need it) and the units; in a container
        // the runtime made it. DHCP clients keep running for renewals, children of PID 1
        // (reaped, stopped at power-off).
        net::up(&cmd);
        setup::sysctl();
        if let Err(e) = fsmount::mount_all(&fstab, cmd.fsck) {
            emergency::run(&e.to_string());
        }
        setup::clean_tmp();
        setup::random_seed(true);
    }

    let units = cmd
        .units
        .clone()
        .unwrap_or_else(|| PathBuf::from("/etc/kennel/units"));
    let mut generated_units = Vec::new();
    if cfg.udev {
        let (dir, line) = udev::generate(&units);
        if let Some(l) = line {
            console::line(&l);
        }
        generated_units.extend(dir);
    }
    if cfg.getty {
        let (dir, lines) = getty::generate(&units);
        for l in lines {
            console::line(&l);
        }
        generated_units.extend(dir);
    }
    generated_units.dedup();

    let opts = daemon::Options {
        units,
        networks: PathBuf::from("/etc/kennel/networks"),
        generated_units,
        state_dir: PathBuf::from("/var/lib/kennel"),
        log_dir: PathBuf::from("/var/log/kennel"),
        socket: PathBuf::from("/run/kennel/kennel.sock"),
        cgroup_parent: None,
        socket_group: None,
        cni_conf_dir: PathBuf::from(crate::net::cni::DEFAULT_CONF_DIR),
        cni_path: crate::net::cni::DEFAULT_PLUGIN_DIRS
            .iter()
            .map(PathBuf::from)
            .collect(),
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

/// /etc/fstab's entries; a file with wrong lines is an emergency naming them (mounting
/// the rest would leave the machine half set up without anyone knowing).
fn read_fstab() -> Vec<fstab::Entry> {
    let text = match std::fs::read_to_string("/etc/fstab") {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            console::line(&format!("/etc/fstab: {e}; nothing mounted from it"));
            return Vec::new();
        }
    };
    match fstab::parse(&text) {
        Ok(entries) => entries,
        Err(errors) => {
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            emergency::run(&all.join("; "))
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
