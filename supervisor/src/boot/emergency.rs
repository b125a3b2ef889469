//! Emergency mode: what PID 1 does when supervising failed (a panic, a fatal error).
//! Exiting would panic the kernel, so it stays: it keeps reaping, offers `/bin/sh` on the
//! console, and still powers off, reboots or halts on the usual signals (which
//! `kennel poweroff` sends when no daemon answers).

use std::os::unix::process::CommandExt;
use std::process::Command;

use super::console;
use super::power::{self, PowerAction};
use crate::reaper;
use crate::spawn::init;

/// Never returns.
pub fn run(reason: &str) -> ! {
    let set = init::block_all_signals();
    console::line(&format!("EMERGENCY: {reason}"));
    console::line(
        "EMERGENCY: still reaping; a shell is on the console if /bin/sh exists; \
         `kennel poweroff` (or SIGTERM/SIGPWR to PID 1) powers off, SIGINT reboots",
    );
    let mut shell = start_shell();
    let mut started = std::time::Instant::now();
    let mut quick_exits = 0;
    loop {
        let sig = init::wait_signal(&set);
        match power_signal(sig) {
            Some(action) => power::finish(action),
            None if sig == libc::SIGCHLD => {
                for (pid, _) in reaper::reap_all() {
                    if Some(pid) == shell {
                        // A shell that ends at once (no terminal) is not restarted forever.
                        if started.elapsed() < std::time::Duration::from_secs(2) {
                            quick_exits += 1;
                        }
                        if quick_exits >= 3 {
                            console::line("EMERGENCY: the shell keeps ending; not restarting it");
                            shell = None;
                            continue;
                        }
                        console::line("EMERGENCY: the shell ended; starting another");
                        std::thread::sleep(std::time::Duration::from_secs(1));
                        shell = start_shell();
                        started = std::time::Instant::now();
                    }
                }
            }
            None => {}
        }
    }
}

/// The power action a signal asks of a machine's init.
pub fn power_signal(sig: i32) -> Option<PowerAction> {
    let rt = libc::SIGRTMIN();
    match sig {
        s if s == libc::SIGTERM || s == libc::SIGPWR || s == rt + 4 => Some(PowerAction::Poweroff),
        s if s == libc::SIGINT || s == rt + 5 => Some(PowerAction::Reboot),
        s if s == rt + 3 => Some(PowerAction::Halt),
        _ => None,
    }
}

fn start_shell() -> Option<i32> {
    if !std::path::Path::new("/bin/sh").exists() {
        return None;
    }
    let mut shell = Command::new("/bin/sh");
    shell.env("PATH", crate::spawn::env::DEFAULT_PATH);
    // Every disposition at its default and an empty mask, as every process kennel starts.
    // SAFETY: the closure runs between fork and exec and makes only system calls.
    unsafe {
        shell.pre_exec(|| {
            crate::spawn::helper::reset_signals();
            Ok(())
        });
    }
    match shell.spawn() {
        Ok(c) => Some(c.id() as i32),
        Err(e) => {
            console::line(&format!("EMERGENCY: cannot start /bin/sh: {e}"));
            None
        }
    }
}
