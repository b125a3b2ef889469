//! Without cgroups (none mounted, or read-only as a container runtime gives them), what a
//! unit's run leaves behind when its main process ends: found in `/proc` and killed, as the
//! unit's cgroup would have been killed whole.
//!
//! A process belongs to the run of `main` (a unit's main process, which kennel started as a
//! session and process group leader) when it is still in that session or process group, or
//! when it left both (`setsid`, a double fork) and was re-parented to kennel, the subreaper
//! (or PID 1), carrying the unit's `KENNEL_UNIT` in its environment. A process that left
//! the session *and* changed its environment *and* is not kennel's child escapes: only a
//! cgroup holds every process for sure (docs/containers.md says so).

use std::fs;

use kennel_core::Pid;

/// What `/proc/PID/stat` says of a process's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Family {
    ppid: Pid,
    pgrp: Pid,
    session: Pid,
}

/// The parent, process group and session in a `/proc/PID/stat` text (after the command
/// name in parentheses, which may itself hold spaces and parentheses).
fn family(stat: &str) -> Option<Family> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let mut num = || fields.next()?.parse::<Pid>().ok();
    Some(Family {
        ppid: num()?,
        pgrp: num()?,
        session: num()?,
    })
}

/// Whether a process of this `family` and environment (`/proc/PID/environ`) is part of the
/// run of `unit` whose main process was `main`; `me` is kennel's pid.
fn belongs(
    family: Family,
    environ: impl FnOnce() -> Vec<u8>,
    main: Pid,
    unit: &str,
    me: Pid,
) -> bool {
    if family.session == main || family.pgrp == main {
        return true;
    }
    if family.ppid != me {
        return false;
    }
    let marker = format!("KENNEL_UNIT={unit}");
    environ()
        .split(|b| *b == 0)
        .any(|var| var == marker.as_bytes())
}

/// SIGKILL every process left of the run of `unit` whose main process `main` ended; returns
/// how many were sent it.
pub fn kill(main: Pid, unit: &str) -> usize {
    let me = std::process::id() as Pid;
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<Pid>().ok())
        else {
            continue;
        };
        if pid == me || pid == main {
            continue;
        }
        let Some(fam) = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .as_deref()
            .and_then(family)
        else {
            continue;
        };
        let environ = || fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        // SAFETY: kill(2) with integers; ESRCH (gone meanwhile) is fine.
        if belongs(fam, environ, main, unit, me) && unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
            killed += 1;
        }
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_is_read_after_the_last_parenthesis() {
        let stat = "4242 (my (odd) name) S 1 4242 4240 0 -1 4194560 100";
        assert_eq!(
            family(stat),
            Some(Family {
                ppid: 1,
                pgrp: 4242,
                session: 4240
            })
        );
        assert_eq!(family("garbage"), None);
    }

    #[test]
    fn session_group_or_adopted_with_the_unit_marker() {
        let f = |ppid, pgrp, session| Family {
            ppid,
            pgrp,
            session,
        };
        let env = |e: &'static [u8]| move || e.to_vec();
        let none = env(b"");
        // In the session or the group of main (100): the run's, whoever the parent.
        assert!(belongs(f(7, 300, 100), none, 100, "web", 1));
        assert!(belongs(f(7, 100, 300), env(b""), 100, "web", 1));
        // Left both, adopted by kennel (1), with the unit's marker: the run's.
        assert!(belongs(
            f(1, 300, 300),
            env(b"A=b\0KENNEL_UNIT=web\0"),
            100,
            "web",
            1
        ));
        // Another unit's marker, a prefix of it, or not kennel's child: not this run's.
        assert!(!belongs(
            f(1, 300, 300),
            env(b"KENNEL_UNIT=web2\0"),
            100,
            "web",
            1
        ));
        assert!(!belongs(
            f(1, 300, 300),
            env(b"KENNEL_UNIT=db\0"),
            100,
            "web",
            1
        ));
        assert!(!belongs(
            f(9, 300, 300),
            env(b"KENNEL_UNIT=web\0"),
            100,
            "web",
            1
        ));
    }
}
