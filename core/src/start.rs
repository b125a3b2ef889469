//! The start of a unit's process (or of a process joining a running unit) as a plan: one
//! pure function, [`plan`], decides everything about it from what is started, what the
//! daemon knows of the unit's previous run and what the host offers, and the shell carries
//! the [`StartPlan`] out. No I/O, no clock: the table tests in `core/tests/start_plan.rs`
//! pin each situation.
//!
//! What it decides, and who carries each decision out:
//!
//! - **how the helper is launched** ([`Launch`], in order of preference): forked by the
//!   spawn zygote (`clone3(CLONE_PARENT)`, right into the unit's cgroup and into a new pid
//!   namespace where it can), cloned by the daemon right into an idle cgroup
//!   (`clone3(CLONE_INTO_CGROUP | CLONE_VFORK)` then an exec of kennel), or exec'd
//!   (`/proc/self/exe __helper`). The daemon's launcher tries each in turn; the helper is
//!   told which one made it;
//! - **when the v1 hierarchies are joined** ([`V1Join`]): on hosts with v1 hierarchies a
//!   container's are made by the daemon while its helper makes the namespaces, and joined
//!   right after the `unshare` (pipelined);
//! - for a container ([`ContainerPlan`]): **who is PID 1** ([`Pid1`]), **the writable
//!   layer** ([`Writable`]), **the overlay** ([`Overlay`]: a new one, or the one the
//!   previous run handed back), whether the built overlay is **offered** back for the
//!   next start, and **the cgroup file system it sees** ([`CgroupFs`]: none, or its
//!   delegated subtree as cgroup2 or as the host's v1 hierarchies);
//! - **what the daemon does with the overlay it holds** ([`HeldOverlay`]) and whether it
//!   **holds the run's mount namespace** until the run ends (its teardown off the reply
//!   path).
//!
//! What only the helper can see on disk (is the writable layer blank, does the init layer
//! already hold this start's files) stays the helper's to check: the plan says what it may
//! keep, the helper keeps it when the disk agrees.

use std::collections::BTreeSet;

use kennel_units::{CgroupAccess, Container, Namespace};
use serde::{Deserialize, Serialize};

/// What the machine offers, as the shell found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub cgroups: CgroupLayout,
    /// A spawn zygote is running: helpers are forked from it (`clone3` with `CLONE_PARENT`)
    /// instead of exec'd.
    pub zygote: bool,
    /// `clone3` with `CLONE_INTO_CGROUP` (Linux 5.7) has not been refused.
    pub clone_into_cgroup: bool,
}

/// The cgroup file systems kennel uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupLayout {
    /// None it can use: units run without a cgroup of their own.
    None,
    /// Pure v2: one directory per unit.
    V2,
    /// v1 hierarchies only.
    V1,
    /// v1 controllers beside a unified (v2) tree without them.
    Hybrid,
}

impl CgroupLayout {
    /// Whether a unit's cgroup has a unified (v2) directory, which a process can be
    /// started right inside.
    pub fn unified(self) -> bool {
        matches!(self, CgroupLayout::V2 | CgroupLayout::Hybrid)
    }

    /// Whether a unit's cgroup has v1 directories to make and join.
    pub fn v1(self) -> bool {
        matches!(self, CgroupLayout::V1 | CgroupLayout::Hybrid)
    }
}

/// What is being started.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    /// A unit's own process.
    Unit {
        /// Its `[container]`, if it has one.
        container: Option<&'a Container>,
        /// What this start's overlay would be made of (options, each layer's real path,
        /// device and inode), where its layers are the store's digest layers, which nothing
        /// changes in place; None for plain directories (a kept overlay would show a layer
        /// changed since half as it was).
        overlay_key: Option<&'a str>,
        /// Its new cgroup is idle: empty and not frozen.
        cgroup_idle: bool,
    },
    /// `kennel exec` into a running unit: forked right into its cgroup where it can be.
    Exec,
    /// A readiness or health command of a running unit: joins its cgroup itself.
    Probe,
}

/// What the daemon knows of the unit's previous run.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreviousRun<'a> {
    /// Its cgroup was emptied and removed: none of its processes is left to write into
    /// the writable layer. Never known without cgroups.
    pub processes_gone: bool,
    /// Its mount namespace is still being torn down: its overlay may still hold the
    /// writable layer.
    pub teardown_pending: bool,
    /// The key of the overlay it handed back, which the daemon holds.
    pub held_overlay: Option<&'a str>,
}

/// Everything decided about one start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartPlan {
    /// How the helper is made, in order of preference: the launcher tries each until one
    /// works (a zygote that died, a `clone3` the kernel refuses moves to the next).
    pub launch: Vec<Launch>,
    /// When the unit's v1 hierarchies are made and joined.
    pub v1: V1Join,
    /// For a container: PID 1, layers, overlay.
    pub container: Option<ContainerPlan>,
    /// The overlay the daemon holds from the previous run.
    pub held_overlay: HeldOverlay,
    /// Hold the container's mount namespace from the service's exec until the run ends,
    /// and tear it down after the turn's replies (off the reply path).
    pub hold_mount_ns: bool,
}

/// One way to make the helper process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Launch {
    /// Forked by the zygote, the daemon's child by `CLONE_PARENT`: right into the unit's
    /// unified cgroup (`into_cgroup`, `CLONE_INTO_CGROUP`), right into a new pid namespace
    /// as its PID 1 (`pid_ns`, `CLONE_NEWPID`), given the zygote's spare network namespace
    /// if one is ready (`spare_net`).
    Zygote {
        into_cgroup: bool,
        pid_ns: bool,
        spare_net: bool,
    },
    /// Cloned by the daemon right into the unit's idle unified cgroup (`clone3` with
    /// `CLONE_INTO_CGROUP | CLONE_VM | CLONE_VFORK`, the daemon's thread held until the
    /// child execs kennel's helper role): only into an idle cgroup, which cannot hold the
    /// daemon up.
    CloneIntoCgroup,
    /// `/proc/self/exe __helper`: the helper joins every cgroup file itself.
    Exec,
}

impl Launch {
    /// The helper starts in the unit's unified cgroup and does not join it.
    pub fn born_in_cgroup(self) -> bool {
        matches!(
            self,
            Launch::Zygote {
                into_cgroup: true,
                ..
            } | Launch::CloneIntoCgroup
        )
    }

    /// The helper starts as PID 1 of a new pid namespace.
    pub fn pid_ns(self) -> bool {
        matches!(self, Launch::Zygote { pid_ns: true, .. })
    }

    /// The zygote is asked for its spare network namespace.
    pub fn spare_net(self) -> bool {
        matches!(
            self,
            Launch::Zygote {
                spare_net: true,
                ..
            }
        )
    }
}

/// When a unit's v1 hierarchies (v1 and hybrid hosts) are made and joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum V1Join {
    /// There are none (pure v2, no cgroups).
    #[default]
    None,
    /// They exist before the helper is launched; it joins them first of all.
    First,
    /// The daemon makes them while the container's helper makes its namespaces; the helper
    /// joins them right after its `unshare`, once EOF on its channel says they exist (or a
    /// failure there says why not), and only then creates its cgroup namespace.
    AfterUnshare,
}

/// The container's part of a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerPlan {
    pub pid1: Pid1,
    pub writable: Writable,
    pub overlay: Overlay,
    /// Once the rootfs is built, hand the daemon a detached clone of the overlay for the
    /// next start (store layers, no user namespace, no writable layer to keep).
    pub offer_overlay: bool,
    /// What is mounted at `/sys/fs/cgroup` inside.
    #[serde(default)]
    pub cgroup_fs: CgroupFs,
}

/// The cgroup file system a container sees at `/sys/fs/cgroup` (`[container] cgroup`).
///
/// With one, the unit's processes live in the child `payload` of the unit's cgroup (the
/// daemon makes it and the helper joins it, daemon/cgroup.rs), the helper creates the
/// cgroup namespace there, and each mount, made inside that namespace, has `payload` as
/// its root: the container sees its own subtree, writable, and never the unit's
/// directory, whose files hold its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupFs {
    /// None (`cgroup = "none"`, or no cgroups on the host): sysfs's empty directory.
    #[default]
    None,
    /// Pure v2: cgroup2 at `/sys/fs/cgroup`, the controllers enabled for it in the unit's
    /// `cgroup.subtree_control`.
    Unified,
    /// v1 or hybrid: a tmpfs at `/sys/fs/cgroup` (read-only once filled) with each of the
    /// unit's hierarchies at `/sys/fs/cgroup/CONTROLLERS` (`name=systemd` at `systemd`),
    /// and the unified tree at `/sys/fs/cgroup/unified` on hybrid hosts.
    Hierarchies,
}

impl Default for ContainerPlan {
    /// The plan that keeps and offers nothing: a new writable layer and overlay, no pid
    /// namespace. What a container spec holds until the daemon sets the start's plan.
    fn default() -> Self {
        ContainerPlan {
            pid1: Pid1::NoPidNamespace,
            writable: Writable::New,
            overlay: Overlay::New,
            offer_overlay: false,
            cgroup_fs: CgroupFs::None,
        }
    }
}

/// Who is PID 1 of the container's pid namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pid1 {
    /// The container has no pid namespace of its own.
    NoPidNamespace,
    /// kennel's tiny init, with the service as its child. `service_early`: the init forks
    /// the service before it builds the rootfs (no user namespace), and the service
    /// confines itself meanwhile, waiting to be let go.
    Init { service_early: bool },
    /// The service itself (`init = false`).
    Service,
}

/// The writable layer of a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Writable {
    /// `read_only`: none; the overlay is mounted read-only.
    None,
    /// `persist`: the layer the last run left, as it is (a new one if a non-persistent
    /// run left it).
    Persist,
    /// The layer the previous run left, if it left it blank; else a new one.
    KeepIfBlank,
    /// A new one: a process of the previous run may still write into the old one.
    New,
}

/// The overlay a start mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlay {
    /// A new overlay of the layers.
    New,
    /// The one the previous run handed back, passed with the spec: mounted as it is when
    /// its writable layer is blank (or it has none) and the init layer holds this start's
    /// files; else declined, and a new overlay on a new writable layer.
    Held,
}

/// What the daemon does with the overlay the previous run handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldOverlay {
    /// It holds none.
    None,
    /// Passed to this start's helper ([`Overlay::Held`]).
    Pass,
    /// Let go (unmounted off the start's path): made of other layers, or the previous run
    /// is not known to be gone.
    Release,
}

/// Decides a start. Pure: the same inputs always give the same plan.
pub fn plan(start: Start<'_>, previous: PreviousRun<'_>, host: Host) -> StartPlan {
    match start {
        Start::Unit {
            container,
            overlay_key,
            cgroup_idle,
        } => unit_plan(container, overlay_key, cgroup_idle, previous, host),
        Start::Exec => join_plan(host, host.cgroups.unified()),
        Start::Probe => join_plan(host, false),
    }
}

/// A unit's own start.
fn unit_plan(
    container: Option<&Container>,
    overlay_key: Option<&str>,
    cgroup_idle: bool,
    previous: PreviousRun<'_>,
    host: Host,
) -> StartPlan {
    let ns: BTreeSet<Namespace> = container.map(|c| c.namespaces.clone()).unwrap_or_default();
    let user_ns = ns.contains(&Namespace::User);
    // Without a user namespace, the zygote can make the pid namespace (the helper forked
    // into it as its init) and hand over a ready network namespace; with one, the helper
    // creates the others from outside as their owner.
    let pid_ns = ns.contains(&Namespace::Pid) && !user_ns;
    let spare_net = ns.contains(&Namespace::Net) && !user_ns;
    let into = host.cgroups.unified() && cgroup_idle && host.clone_into_cgroup;
    let launch = launch_order(host, into, pid_ns, spare_net, into);

    let v1 = match (host.cgroups.v1(), container.is_some()) {
        (false, _) => V1Join::None,
        (true, true) => V1Join::AfterUnshare,
        (true, false) => V1Join::First,
    };

    let Some(c) = container else {
        let held_overlay = match previous.held_overlay {
            Some(_) => HeldOverlay::Release,
            None => HeldOverlay::None,
        };
        return StartPlan {
            launch,
            v1,
            container: None,
            held_overlay,
            hold_mount_ns: false,
        };
    };

    let pid1 = match (ns.contains(&Namespace::Pid), c.init) {
        (false, _) => Pid1::NoPidNamespace,
        (true, true) => Pid1::Init {
            service_early: !user_ns,
        },
        (true, false) => Pid1::Service,
    };
    // Offered back only where a next start can mount it: layers never changed in place,
    // no user namespace (the layers are mounted idmapped in the helper's own namespace),
    // no writable layer that must carry over (`persist`).
    let offer_overlay = overlay_key.is_some() && !user_ns && (c.read_only || !c.persist);
    // The overlay held from the previous run: passed when it is made of what this start's
    // would be and that run's processes are all gone (a mount namespace of it still being
    // torn down does not matter: the kept overlay outlives it).
    let held_overlay = match previous.held_overlay {
        None => HeldOverlay::None,
        Some(k) if offer_overlay && previous.processes_gone && Some(k) == overlay_key => {
            HeldOverlay::Pass
        }
        Some(_) => HeldOverlay::Release,
    };
    let overlay = match held_overlay {
        HeldOverlay::Pass => Overlay::Held,
        _ => Overlay::New,
    };
    let writable = if c.read_only {
        Writable::None
    } else if c.persist {
        Writable::Persist
    } else {
        match held_overlay {
            HeldOverlay::Pass => Writable::KeepIfBlank,
            // The released overlay still holds the old writable layer (overlayfs marks it
            // in use).
            HeldOverlay::Release => Writable::New,
            HeldOverlay::None if previous.processes_gone && !previous.teardown_pending => {
                Writable::KeepIfBlank
            }
            HeldOverlay::None => Writable::New,
        }
    };
    // The container's own subtree, as the host's layout has it; nothing to delegate
    // without cgroups (such a unit does not get this far: its cgroup cannot be made).
    let cgroup_fs = match (c.cgroup, host.cgroups) {
        (CgroupAccess::None, _) | (_, CgroupLayout::None) => CgroupFs::None,
        (CgroupAccess::Delegate, CgroupLayout::V2) => CgroupFs::Unified,
        (CgroupAccess::Delegate, CgroupLayout::V1 | CgroupLayout::Hybrid) => CgroupFs::Hierarchies,
    };
    StartPlan {
        launch,
        v1,
        container: Some(ContainerPlan {
            pid1,
            writable,
            overlay,
            offer_overlay,
            cgroup_fs,
        }),
        held_overlay,
        hold_mount_ns: true,
    }
}

/// A process joining a running unit: never cloned by the daemon itself (a frozen or
/// throttled unit would hold its thread until the child execs); forked by the zygote,
/// which does not wait, right into the unit's cgroup when `into`.
fn join_plan(host: Host, into: bool) -> StartPlan {
    let into = into && host.clone_into_cgroup;
    StartPlan {
        launch: launch_order(host, into, false, false, false),
        v1: if host.cgroups.v1() {
            V1Join::First
        } else {
            V1Join::None
        },
        container: None,
        held_overlay: HeldOverlay::None,
        hold_mount_ns: false,
    }
}

/// The launch attempts, best first: the zygote (into the cgroup, then without it where the
/// kernel refuses that), the daemon's own clone into an idle cgroup (`clone_ok`), exec.
fn launch_order(
    host: Host,
    into: bool,
    pid_ns: bool,
    spare_net: bool,
    clone_ok: bool,
) -> Vec<Launch> {
    let mut order = Vec::new();
    let zygote = |into_cgroup| Launch::Zygote {
        into_cgroup,
        pid_ns,
        spare_net,
    };
    if host.zygote && into {
        order.push(zygote(true));
    }
    if clone_ok {
        order.push(Launch::CloneIntoCgroup);
    }
    if host.zygote {
        order.push(zygote(false));
    }
    order.push(Launch::Exec);
    order
}
