//! The end of a machine: everything still running is stopped, filesystems are synced and
//! unmounted, and the kernel is asked to power off, reboot or halt.

use std::time::{Duration, Instant};

use nix::sys::reboot::{reboot, RebootMode};

pub use crate::control::protocol::PowerAction;

use super::console;
use crate::reaper;

/// Whether a process other than kennel is left. `kill(-1, 0)` cannot tell: it also
/// counts kernel threads, so the user processes are found in /proc (a kernel thread has
/// no executable).
fn any_left() -> bool {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let name = e.file_name();
        let Some(pid) = name.to_str() else {
            return false;
        };
        pid.bytes().all(|b| b.is_ascii_digit())
            && pid != "1"
            && pid != me
            && std::fs::read_link(e.path().join("exe")).is_ok()
    })
}

/// TERM every process left, wait (bounded), KILL the rest, sync, unmount, `reboot(2)`.
/// Every step is said on the console. Never returns.
pub fn finish(action: PowerAction) -> ! {
    console::line("sending SIGTERM to every remaining process");
    // SAFETY: kill(-1) from PID 1 signals every other process.
    unsafe {
        libc::kill(-1, libc::SIGTERM);
        libc::kill(-1, libc::SIGCONT);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        reaper::reap_all();
        if !any_left() {
            break;
        }
        if Instant::now() > deadline {
            console::line("sending SIGKILL to every remaining process");
            // SAFETY: as above.
            unsafe {
                libc::kill(-1, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(100));
            reaper::reap_all();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // In a container, swap and the seed are the host's (see boot::main).
    let machine = crate::container_runtime().is_none();
    if machine {
        super::setup::random_seed(false);
    }
    console::line("syncing filesystems");
    nix::unistd::sync();
    if machine {
        for l in super::fsmount::swap_off_all() {
            console::line(&l);
        }
    }
    for l in super::mounts::unmount_all() {
        console::line(&l);
    }
    nix::unistd::sync();
    let (word, mode) = match action {
        PowerAction::Poweroff => ("powering off", RebootMode::RB_POWER_OFF),
        PowerAction::Reboot => ("rebooting", RebootMode::RB_AUTOBOOT),
        PowerAction::Halt => ("halting", RebootMode::RB_HALT_SYSTEM),
    };
    console::line(word);
    let err = match reboot(mode) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // Not permitted (not a real init): nothing else to do but stay, reaping.
    console::line(&format!("reboot(2) failed: {err}; staying up"));
    super::emergency::run(&format!("{word} failed: {err}"))
}
