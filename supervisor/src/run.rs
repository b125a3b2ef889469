//! `kennel run`: the tini use case. One command as the child of kennel, every signal
//! forwarded to it, every orphan reaped, the command's exit code passed on. Synchronous on
//! purpose: no runtime, no threads, nothing that can stall the reaping.

use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::reaper;
use crate::spawn::init;

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
    let all = init::block_all_signals();
    // std resets SIGPIPE in the child before exec, but neither the signal mask (every
    // signal is blocked here: the command would never see a forwarded one) nor what kennel
    // found ignored (under `nohup`, SIGHUP): the command starts with every disposition at
    // its default and an empty mask, as every process kennel starts.
    let mut command = Command::new(prog);
    command.args(args).process_group(0);
    // SAFETY: the closure runs between fork and exec and makes only system calls
    // (sigprocmask, rt_sigaction), which are async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            crate::spawn::helper::reset_signals();
            Ok(())
        });
    }
    let child = match command.spawn() {
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
    drop(child); // the reaper in `supervise` collects it
    give_terminal_to(pid);
    let target = if signal_group { -pid } else { pid };
    init::supervise(pid, target, &all).as_code()
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
