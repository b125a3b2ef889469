//! Checking a file system before it is mounted writable, as `systemd-fsck` does: the
//! distribution's `fsck` (or `fsck.TYPE`) with the kernel command line's `fsck.mode=`
//! (`auto`, `force`, `skip`) and `fsck.repair=` (`preen`, `yes`, `no`), and fsck(8)'s exit
//! status read into what the boot does next.

use std::path::Path;
use std::process::Command;

/// How the kernel command line asks file systems to be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub mode: Mode,
    pub repair: Repair,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Check; the checker decides whether a clean file system needs a full pass.
    #[default]
    Auto,
    /// A full check even of a clean file system (`-f`).
    Force,
    /// No check at all.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Repair {
    /// Fix what is safe to fix without asking (`-a`).
    #[default]
    Preen,
    /// Fix everything (`-y`).
    Yes,
    /// Fix nothing (`-n`).
    No,
}

impl Policy {
    /// Read from the command line's words (`fsck.mode=`, `fsck.repair=`, and the older
    /// `fastboot` / `forcefsck`); an unknown value is kept at the default and returned.
    pub fn parse(cmdline: &str) -> (Policy, Vec<String>) {
        let mut p = Policy::default();
        let mut unknown = Vec::new();
        for word in cmdline.split_whitespace() {
            match word {
                "fastboot" => p.mode = Mode::Skip,
                "forcefsck" => p.mode = Mode::Force,
                "fsck.mode=auto" => p.mode = Mode::Auto,
                "fsck.mode=force" => p.mode = Mode::Force,
                "fsck.mode=skip" => p.mode = Mode::Skip,
                "fsck.repair=preen" => p.repair = Repair::Preen,
                "fsck.repair=yes" => p.repair = Repair::Yes,
                "fsck.repair=no" => p.repair = Repair::No,
                w if w.starts_with("fsck.mode=") || w.starts_with("fsck.repair=") => {
                    unknown.push(w.to_string())
                }
                _ => {}
            }
        }
        (p, unknown)
    }
}

/// What a check found, from fsck(8)'s exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not checked, and why (`fsck.mode=skip`, no checker installed).
    Skipped(String),
    Clean,
    /// Errors were found and fixed (exit 1).
    Corrected,
    /// Errors were fixed, and the system must reboot (exit 2: the root was changed while
    /// mounted).
    RebootNeeded,
    /// The check needs a person (exit 4 and above): the status and what it means.
    Failed(i32, &'static str),
}

/// fsck(8)'s exit status as a [`Verdict`].
pub fn verdict(code: i32) -> Verdict {
    match code {
        0 => Verdict::Clean,
        1 => Verdict::Corrected,
        2 | 3 => Verdict::RebootNeeded,
        c if c & 4 != 0 => Verdict::Failed(c, "file system errors left uncorrected"),
        c if c & 8 != 0 => Verdict::Failed(c, "operational error"),
        c if c & 16 != 0 => Verdict::Failed(c, "usage or syntax error"),
        c if c & 32 != 0 => Verdict::Failed(c, "cancelled by request"),
        c => Verdict::Failed(c, "shared-library error"),
    }
}

/// The checker's arguments for `device` (after the program's name).
pub fn args(policy: Policy, fstype: Option<&str>, device: &str, wrapper: bool) -> Vec<String> {
    let mut a = Vec::new();
    if wrapper {
        // fsck(8): no title line; the type, so that it need not probe.
        a.push("-T".to_string());
        if let Some(t) = fstype.filter(|t| *t != "auto") {
            a.push("-t".into());
            a.push(t.into());
        }
    }
    a.push(
        match policy.repair {
            Repair::Preen => "-a",
            Repair::Yes => "-y",
            Repair::No => "-n",
        }
        .into(),
    );
    if policy.mode == Mode::Force {
        a.push("-f".into());
    }
    a.push(device.into());
    a
}

fn find(name: &str) -> Option<std::path::PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

/// Check `device` (of type `fstype`), its output on the console.
pub fn check(policy: Policy, device: &str, fstype: Option<&str>) -> Verdict {
    if policy.mode == Mode::Skip {
        return Verdict::Skipped("fsck.mode=skip".into());
    }
    let typed = fstype
        .filter(|t| *t != "auto")
        .and_then(|t| find(&format!("fsck.{t}")));
    let (program, wrapper) = match (find("fsck"), typed) {
        (Some(p), _) => (p, true),
        (None, Some(p)) => (p, false),
        (None, None) => {
            return Verdict::Skipped(format!(
                "no checker installed (fsck, fsck.{})",
                fstype.unwrap_or("TYPE")
            ))
        }
    };
    let status = Command::new(&program)
        .args(args(policy, fstype, device, wrapper))
        .env("PATH", crate::spawn::env::DEFAULT_PATH)
        .status();
    match status {
        Ok(s) => match s.code() {
            Some(c) => verdict(c),
            None => Verdict::Failed(-1, "killed by a signal"),
        },
        Err(e) => Verdict::Skipped(format!("cannot run {}: {e}", program.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_sets_mode_and_repair() {
        assert_eq!(Policy::parse("ro quiet"), (Policy::default(), vec![]));
        let (p, bad) = Policy::parse("fsck.mode=force fsck.repair=yes fsck.mode=sometimes");
        assert_eq!((p.mode, p.repair), (Mode::Force, Repair::Yes));
        assert_eq!(bad, ["fsck.mode=sometimes"]);
        assert_eq!(Policy::parse("fastboot").0.mode, Mode::Skip);
    }

    #[test]
    fn arguments_follow_the_policy() {
        let p = Policy::default();
        assert_eq!(
            args(p, Some("ext4"), "/dev/vda", true),
            ["-T", "-t", "ext4", "-a", "/dev/vda"]
        );
        let p = Policy {
            mode: Mode::Force,
            repair: Repair::No,
        };
        assert_eq!(
            args(p, Some("auto"), "/dev/vdb", false),
            ["-n", "-f", "/dev/vdb"]
        );
    }

    #[test]
    fn exit_statuses() {
        assert_eq!(verdict(0), Verdict::Clean);
        assert_eq!(verdict(1), Verdict::Corrected);
        assert_eq!(verdict(2), Verdict::RebootNeeded);
        assert!(matches!(verdict(4), Verdict::Failed(4, m) if m.contains("uncorrected")));
        assert!(matches!(verdict(12), Verdict::Failed(12, m) if m.contains("uncorrected")));
        assert!(matches!(verdict(8), Verdict::Failed(8, m) if m.contains("operational")));
    }
}
