//! The signals kennel catches as a daemon (and as PID 1), turned into [`Input::Signal`].
//! A PID 1 without a handler ignores a signal silently, so every catchable signal that
//! could be sent to kennel is listed here and documented in `docs/signals.md`.

use futures_util::StreamExt;
use signal_hook_tokio::Signals;
use tokio::sync::mpsc;

use super::Input;

/// Every signal the daemon handles.
pub fn handled() -> Vec<i32> {
    use libc::*;
    let mut v = vec![
        SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGPWR, SIGWINCH, SIGTSTP,
        SIGTTIN, SIGTTOU, SIGALRM, SIGVTALRM, SIGPROF, SIGURG, SIGIO, SIGXCPU, SIGXFSZ, SIGSTKFLT,
        SIGPIPE, SIGTRAP, SIGSYS,
    ];
    // Real-time signals (systemd uses SIGRTMIN+3..+5 for halt/poweroff/reboot).
    v.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    v
}

/// Install the handlers now (before any child exists, so no SIGCHLD is missed) and return
/// the task body that forwards them.
pub fn install(
    tx: mpsc::UnboundedSender<Input>,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    let mut signals = Signals::new(handled())?;
    Ok(async move {
        while let Some(sig) = signals.next().await {
            if tx.send(Input::Signal(sig)).is_err() {
                return;
            }
        }
    })
}
