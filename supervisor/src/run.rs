//! `kennel run`: the tini use case. One command as the child of kennel, every signal
//! forwarded to it, every orphan reaped, the command's exit code passed on. Synchronous on
//! purpose: no runtime, no threads, nothing that can stall the reaping.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::reaper;

/// Exit codes of `kennel run` itself (the command's own code otherwise).
pub const EXIT_CANNOT_START: i32 = 125;
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
pub const EXIT_NOT_FOUND: i32 = 127;

/// Run `argv` and return the code kennel must exit with.
pub fn run(argv: &[String], signal_group: bool) -> i32 {
    let Some((prog, args)) = argv.split_first() else {
        eprintln!("kennel run: no command given; usage: kennel run [-g] [--] CMD [ARGS...]");
        return EXIT_CANNOT_START;
    };
    if nix::unistd::getpid().as_raw() != 1 {
        if let Err(e) = reaper::become_subreaper() {
            tracing::warn!("cannot become a child subreaper ({e}); orphans go to the host's init");
        }
    }
    let all = block_all_signals();
    // std resets the signal mask and SIGPIPE in the child before exec.
    let child = match Command::new(prog).args(args).process_group(0).spawn() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => EXIT_NOT_FOUND,
                std::io::ErrorKind::PermissionDenied => EXIT_NOT_EXECUTABLE,
                _ => EXIT_CANNOT_START,
            };
            eprintln!("kennel run: cannot run {prog}: {e}");
            return code;
        }
    };
    let pid = child.id() as libc::pid_t;
    drop(child); // the reaper below collects it
    give_terminal_to(pid);
    let target = if signal_group { -pid } else { pid };
    loop {
        let sig = wait_signal(&all);
        if sig == libc::SIGCHLD {
            let mut code = None;
            for (p, status) in reaper::reap_all() {
                if p == pid {
                    code = Some(status.as_code());
                }
            }
            if let Some(code) = code {
                // Collect what ended alongside; the rest of a pid namespace dies with us.
                reaper::reap_all();
                return code;
            }
            continue;
        }
        // SAFETY: kill(2) with a pid and a signal number touches no memory.
        unsafe {
            libc::kill(target, sig);
        }
    }
}

fn block_all_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t) -> libc::c_int {
    loop {
        // SAFETY: sigwaitinfo reads the set and writes into a local siginfo.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::sigwaitinfo(set, &mut info)
        };
        if sig > 0 {
            return sig;
        }
    }
}

/// If stdin is our controlling terminal, make the child's process group its foreground,
/// so that Ctrl-C reaches the command once rather than through kennel too.
fn give_terminal_to(pgid: libc::pid_t) {
    // SAFETY: isatty/tcsetpgrp on fd 0; failure just means no terminal to hand over.
    // SIGTTOU is blocked, so tcsetpgrp from the background is allowed.
    unsafe {
        if libc::isatty(0) == 1 {
            libc::tcsetpgrp(0, pgid);
        }
    }
}
