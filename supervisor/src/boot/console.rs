//! Whole lines on the console, unbuffered, before anything can be lost to a power-off; and
//! the time since boot that stamps kennel's log lines as init, as the kernel stamps its own.

use std::io::Write;

/// Write `kennel: TEXT\n` to stderr (the console, for init) in one write.
pub fn line(text: &str) {
    let msg = format!("kennel: {text}\n");
    let _ = std::io::stderr().lock().write_all(msg.as_bytes());
}

/// Log lines' time as the kernel's `[    2.345678]`: `CLOCK_BOOTTIME`, the clock of the
/// kernel's own stamps and of `/proc/uptime`, so that kennel's boot steps (`kennel.log=debug`)
/// line up with `dmesg`. The wall clock means little this early (the RTC may not be read yet).
pub struct SinceBoot;

impl tracing_subscriber::fmt::time::FormatTime for SinceBoot {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime(2) writes into the timespec it is given, nothing else.
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
        write!(w, "[{:5}.{:06}]", ts.tv_sec, ts.tv_nsec / 1000)
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::fmt::{format::Writer, time::FormatTime};

    fn uptime() -> f64 {
        let text = std::fs::read_to_string("/proc/uptime").unwrap();
        text.split_whitespace().next().unwrap().parse().unwrap()
    }

    #[test]
    fn since_boot_is_the_kernels_clock() {
        let before = uptime();
        let mut s = String::new();
        super::SinceBoot
            .format_time(&mut Writer::new(&mut s))
            .unwrap();
        let after = uptime();
        // `[    2.345678]`, like the kernel's stamps.
        let inner = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'));
        let inner = inner.unwrap_or_else(|| panic!("{s:?}"));
        assert_eq!(
            inner.split_once('.').map(|(_, f)| f.len()),
            Some(6),
            "{s:?}"
        );
        let stamp: f64 = inner.trim().parse().unwrap();
        // /proc/uptime is the same clock, in hundredths.
        assert!(
            before <= stamp && stamp < after + 0.01,
            "{before} <= {stamp} < {after}"
        );
    }
}
