//! Short human texts: durations (via `kennel_units`) and exit statuses.

use std::time::Duration;

use crate::api::ExitStatus;

/// A duration the way unit files write it: `0s`, `400ms`, `1.5s`, `10s`, `2m3s`.
pub(crate) fn duration(d: Duration) -> String {
    kennel_units::format_duration(d)
}

/// The conventional name of a signal, `SIGTERM`, or `signal 99`.
pub(crate) fn signal_name(n: i32) -> String {
    let name = kennel_units::signal_name(n);
    if name.starts_with("SIG") {
        name
    } else {
        format!("signal {n}")
    }
}

/// Status detail for a failure: `exited 3`, `killed by SIGKILL`.
pub(crate) fn exit_detail(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(c) => format!("exited {c}"),
        ExitStatus::Signal(s) => format!("killed by {}", signal_name(s)),
    }
}

/// Notice wording: `exited with code 3`, `killed by SIGKILL`.
pub(crate) fn exit_phrase(status: ExitStatus) -> String {
    match status {
        ExitStatus::Code(c) => format!("exited with code {c}"),
        ExitStatus::Signal(s) => format!("killed by {}", signal_name(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(exit_detail(ExitStatus::Code(3)), "exited 3");
        assert_eq!(exit_detail(ExitStatus::Signal(9)), "killed by SIGKILL");
        assert_eq!(exit_phrase(ExitStatus::Code(0)), "exited with code 0");
        assert_eq!(exit_phrase(ExitStatus::Signal(99)), "killed by signal 99");
        assert_eq!(duration(Duration::from_millis(400)), "400ms");
    }
}
