//! The daemon's bookkeeping of container runs, apart from supervision: each run's mount
//! namespace held until it ends, the overlay each unit's last run handed back, the
//! teardowns under way, the security settings each run started with, and the `kennel
//! exec` sessions. The owner asks it what the start plan needs to know
//! ([`ContainerRuns::held_key`], [`ContainerRuns::teardown_pending`]) and tells it what
//! happened (a start, a launch, an exit).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kennel_core::start::HeldOverlay;
use kennel_core::{ExitStatus, Pid};

use crate::spawn::spec::SecuritySpec;

/// What a container's helper handed back once it reached exec (or failed), and what the
/// start plan said to hold.
pub struct Handed {
    /// The overlay its init handed back, with the key of what it is made of.
    pub overlay: Option<(String, OwnedFd)>,
    /// The start plan's: hold the run's mount namespace until it ends.
    pub hold_mount_ns: bool,
    /// The init's note of how the service ended (`spawn::init::exit_note`).
    pub exit_note: Option<OwnedFd>,
}

#[derive(Default)]
pub struct ContainerRuns {
    /// The mount namespace of each container unit's current run, by the run's pid, held
    /// open from its exec until its end: see [`ContainerRuns::launched`].
    mounts: HashMap<Pid, (String, OwnedFd)>,
    /// Mount namespaces of runs that ended, and overlays no start will use, to let go once
    /// the turn's replies are out ([`ContainerRuns::tear_down_released`]).
    released: Vec<(String, OwnedFd)>,
    /// Per container unit, the overlay its last run handed back (a detached clone of its
    /// `/`), with the key of what it is made of: the start plan passes it to the next
    /// start when it can (`HeldOverlay`).
    overlays: HashMap<String, (String, OwnedFd)>,
    /// Per unit, how many mount namespaces of its ended runs are still being torn down.
    teardowns: HashMap<String, Arc<AtomicUsize>>,
    /// The security settings each container unit's current process started with (exec
    /// and probes join under the same).
    security: HashMap<String, SecuritySpec>,
    /// Per run (its pid), the note its container's init leaves of how the service ended:
    /// read at the run's exit (`spawn::init::noted`).
    exit_notes: HashMap<Pid, OwnedFd>,
    /// `kennel exec` sessions: helper pid -> unit (their exits go through the probe pids).
    sessions: HashMap<Pid, String>,
}

impl ContainerRuns {
    /// Before a new start of `unit`: lets go of its earlier runs' mount namespaces still
    /// held. Whether one is still being torn down (its overlay may still hold the writable
    /// layer: the plan then has the new run make a new one, unless it mounts the kept
    /// overlay itself; never waited for here, a hung unmount must not hold the daemon) is
    /// [`ContainerRuns::teardown_pending`].
    pub fn before_start(&mut self, unit: &str) {
        self.mounts.retain(|_, (u, _)| u != unit);
        self.released.retain(|(u, _)| u != unit);
    }

    /// Whether a mount namespace of an earlier run of `unit` is still being torn down.
    pub fn teardown_pending(&self, unit: &str) -> bool {
        self.teardowns
            .get(unit)
            .is_some_and(|n| n.load(Ordering::Relaxed) > 0)
    }

    /// The key of the overlay `unit`'s last run handed back, if one is held.
    pub fn held_key(&self, unit: &str) -> Option<&str> {
        self.overlays.get(unit).map(|(k, _)| k.as_str())
    }

    /// Carries out the start plan's decision on `unit`'s held overlay: returns it to pass
    /// to the helper, or lets it go.
    pub fn held_overlay(&mut self, unit: &str, decision: HeldOverlay) -> Option<OwnedFd> {
        match decision {
            HeldOverlay::None => None,
            HeldOverlay::Pass => self.overlays.remove(unit).map(|(_, fd)| fd),
            HeldOverlay::Release => {
                if let Some((_, fd)) = self.overlays.remove(unit) {
                    self.released.push((unit.to_string(), fd));
                }
                None
            }
        }
    }

    /// `unit`'s helper `pid` reached exec (`ok`) or failed, and handed back an overlay (with
    /// its key) and an exit note if it did. With `hold_mount_ns` (the plan's), the run's
    /// mount namespace is
    /// held from now until the run ends: when a container's last process exits, the
    /// kernel unmounts its whole tree and waits for an RCU grace period in that exit,
    /// before its parent hears of it, which would delay the reply to `kennel start` of a
    /// oneshot (docs/performance.md). Held here, the namespace outlives the processes and
    /// goes once the turn's replies are written, or before the unit's next start at the
    /// latest. Best effort: a helper already gone leaves nothing to hold.
    pub fn launched(&mut self, unit: &str, pid: Pid, ok: bool, handed: Handed) {
        let Handed {
            overlay,
            hold_mount_ns,
            exit_note,
        } = handed;
        if let (true, Some(note)) = (ok, exit_note) {
            self.exit_notes.insert(pid, note);
        }
        if let Some((key, fd)) = overlay {
            // For the next start; one it replaces, or that came with a failure, goes like
            // an ended run's mounts.
            let replaced = match ok {
                true => self.overlays.insert(unit.to_string(), (key, fd)),
                false => Some((key, fd)),
            };
            if let Some((_, old)) = replaced {
                self.released.push((unit.to_string(), old));
            }
        }
        if ok && hold_mount_ns {
            if let Ok(f) = std::fs::File::open(format!("/proc/{pid}/ns/mnt")) {
                self.mounts
                    .insert(pid, (unit.to_string(), OwnedFd::from(f)));
            }
        }
    }

    /// Process `pid` ended with `status`: its run's mount namespace, if held, goes with the
    /// turn. Returns the status as its init noted it: killed by the signal that ended the
    /// service, where the init exited 128+N for it.
    pub fn exited(&mut self, pid: Pid, status: ExitStatus) -> ExitStatus {
        if let Some(held) = self.mounts.remove(&pid) {
            self.released.push(held);
        }
        match self.exit_notes.remove(&pid) {
            Some(note) => crate::spawn::init::noted(status, &note),
            None => status,
        }
    }

    /// The overlays of units that no longer exist (`exists` says which do) go with the
    /// mounts of ended runs. A reload removes a stopped unit at once and a running one
    /// once it has ended: called after a command and after an exit.
    pub fn sweep(&mut self, exists: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self
            .overlays
            .keys()
            .filter(|u| !exists(u.as_str()))
            .cloned()
            .collect();
        for unit in gone {
            if let Some((_, fd)) = self.overlays.remove(&unit) {
                self.released.push((unit, fd));
            }
        }
    }

    /// Whether [`ContainerRuns::tear_down_released`] has work.
    pub fn has_released(&self) -> bool {
        !self.released.is_empty()
    }

    /// Lets go of the mount namespaces of ended runs and of overlays no start will use,
    /// on the blocking pool (the kernel unmounts the tree in the closing thread).
    pub fn tear_down_released(&mut self) {
        for (unit, ns) in self.released.drain(..) {
            let running = self.teardowns.entry(unit).or_default().clone();
            running.fetch_add(1, Ordering::Relaxed);
            tokio::task::spawn_blocking(move || {
                drop(ns);
                running.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }

    /// At the daemon's end: everything held goes now (as a machine's init, the state file
    /// system is unmounted next, which their overlays would keep busy).
    pub fn clear(&mut self) {
        self.mounts.clear();
        self.overlays.clear();
        self.released.clear();
    }

    /// Records the security settings `unit`'s process starts with.
    pub fn record_security(&mut self, unit: &str, security: SecuritySpec) {
        self.security.insert(unit.to_string(), security);
    }

    /// The security settings `unit`'s current process started with.
    pub fn security(&self, unit: &str) -> Option<&SecuritySpec> {
        self.security.get(unit)
    }

    /// An exec session's helper `pid` in `unit` started.
    pub fn exec_started(&mut self, pid: Pid, unit: &str) {
        self.sessions.insert(pid, unit.to_string());
    }

    /// Process `pid` was reaped: if it was an exec session's helper, the session ended.
    pub fn session_ended(&mut self, pid: Pid) {
        self.sessions.remove(&pid);
    }

    /// The exec sessions: helper pid -> unit.
    pub fn sessions(&self) -> &HashMap<Pid, String> {
        &self.sessions
    }
}
