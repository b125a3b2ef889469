//! The names kennel's own processes show in `ps`, inside and outside containers: the
//! command name (`comm`, `prctl(PR_SET_NAME)`) and the command line (the process's argv
//! area, rewritten in place), both set to one of the names below. Without this, every
//! helper, relay and container init is a fork of the zygote and shows as
//! `/proc/self/exe __zygote PID` (comm `exe`).

use std::sync::OnceLock;

/// The zygote, which forks every helper (docs/architecture.md).
pub const ZYGOTE: &str = "kennel-zygote";
/// A helper on its way to exec a service, an exec's command or a probe.
pub const HELPER: &str = "kennel-helper";
/// A container's init: PID 1 inside, it reaps and forwards signals to the service.
pub const INIT: &str = "kennel-init";
/// A helper that stays outside a pid namespace to relay signals to the process inside and
/// pass its exit code on (an exec into a container; a container with a user namespace).
pub const RELAY: &str = "kennel-relay";

/// Where this process's argv strings are (`arg_start`, `arg_end` of /proc/self/stat), once
/// [`locate`]d; inherited by every fork.
static ARGV: OnceLock<(usize, usize)> = OnceLock::new();

/// Finds this process's argv area, for [`set`]. Called once at the start of a role (the
/// zygote, an exec'd helper), while `/proc` is the host's; its forks share the area's
/// address. Without /proc, [`set`] sets the command name only.
pub fn locate() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // The fields after the command name, which may itself hold spaces and parentheses:
    // the third field is the first after the last ')'; arg_start and arg_end are the 48th
    // and 49th.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<usize>().ok());
    if let (Some(start), Some(end)) = (field(48), field(49)) {
        if start < end {
            let _ = ARGV.set((start, end));
        }
    }
}

/// Names this process `name` (at most 15 bytes show as `comm`; the command line holds as
/// much of it as the argv area does, and nothing else).
pub fn set(name: &str) {
    if let Ok(c) = std::ffi::CString::new(name) {
        // SAFETY: PR_SET_NAME reads a NUL-terminated string (truncated to 16 bytes).
        unsafe {
            libc::prctl(libc::PR_SET_NAME, c.as_ptr(), 0, 0, 0);
        }
    }
    let Some(&(start, end)) = ARGV.get() else {
        return;
    };
    let len = end - start;
    let n = name.len().min(len - 1);
    // SAFETY: [start, end) is this process's own argv area on its stack (the kernel's
    // record of it, read by `locate` in this process or the one it was forked from),
    // writable and never moved; the last byte stays NUL, so a reader of
    // /proc/PID/cmdline sees `name` and NUL padding.
    unsafe {
        let area = start as *mut u8;
        std::ptr::copy_nonoverlapping(name.as_ptr(), area, n);
        std::ptr::write_bytes(area.add(n), 0, len - n);
    }
}
