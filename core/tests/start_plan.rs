//! The start plan, one row per situation: what is started, what the daemon knows of the
//! previous run, what the host offers -> the exact plan.

use kennel_core::start::{
    plan, CgroupFs, CgroupLayout, ContainerPlan, HeldOverlay, Host, Launch, Overlay, Pid1,
    PreviousRun, Start, StartPlan, V1Join, Writable,
};
use kennel_units::container::{Container, Layer};
use kennel_units::{CgroupAccess, Namespace, Network};

const KEY: &str = "lowerdir=/s/init:/s/layers/sha256-aa;ro=false;volatile=true";

fn host(cgroups: CgroupLayout) -> Host {
    Host {
        cgroups,
        zygote: true,
        clone_into_cgroup: true,
    }
}

const V2: Host = Host {
    cgroups: CgroupLayout::V2,
    zygote: true,
    clone_into_cgroup: true,
};

fn web() -> Container {
    Container::new(vec![Layer::Named("busybox".into())], "web")
}

/// A unit's own start.
fn unit<'a>(c: Option<&'a Container>, key: Option<&'a str>) -> Start<'a> {
    Start::Unit {
        container: c,
        overlay_key: key,
        cgroup_idle: true,
    }
}

const FIRST: PreviousRun<'static> = PreviousRun {
    processes_gone: false,
    teardown_pending: false,
    held_overlay: None,
};

/// What the daemon knows after a run that ended cleanly and handed its overlay back.
fn gone_with(held: Option<&str>) -> PreviousRun<'_> {
    PreviousRun {
        processes_gone: true,
        teardown_pending: false,
        held_overlay: held,
    }
}

fn zygote(into_cgroup: bool, pid_ns: bool, spare_net: bool) -> Launch {
    Launch::Zygote {
        into_cgroup,
        pid_ns,
        spare_net,
    }
}

/// The launch order of a container with pid and net namespaces of its own (no user
/// namespace) into an idle cgroup, on a host with a zygote and clone3.
fn container_launch() -> Vec<Launch> {
    vec![
        zygote(true, true, true),
        Launch::CloneIntoCgroup,
        zygote(false, true, true),
        Launch::Exec,
    ]
}

fn ctr(pid1: Pid1, writable: Writable, overlay: Overlay, offer: bool) -> Option<ContainerPlan> {
    Some(ContainerPlan {
        pid1,
        writable,
        overlay,
        offer_overlay: offer,
        cgroup_fs: CgroupFs::None,
    })
}

const INIT_EARLY: Pid1 = Pid1::Init {
    service_early: true,
};

#[test]
fn container_starts() {
    let plain = web();
    let persist = Container {
        persist: true,
        ..web()
    };
    let read_only = Container {
        read_only: true,
        ..web()
    };
    let user = Container {
        namespaces: Namespace::defaults()
            .into_iter()
            .chain([Namespace::User])
            .collect(),
        ..web()
    };
    let no_init = Container {
        init: false,
        ..web()
    };
    let no_pid = Container {
        init: false,
        namespaces: [Namespace::Mount, Namespace::Net].into_iter().collect(),
        ..web()
    };
    let host_net = Container {
        network: Network::Host,
        namespaces: [Namespace::Pid, Namespace::Mount].into_iter().collect(),
        ..web()
    };
    let other = "lowerdir=/s/init:/s/layers/sha256-bb;ro=false;volatile=true";

    type Row<'a> = (&'a str, Start<'a>, PreviousRun<'a>, Host, StartPlan);
    let rows: Vec<Row> = vec![
        (
            "first start, store layers",
            unit(Some(&plain), Some(KEY)),
            FIRST,
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, true),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "restart with the overlay kept",
            unit(Some(&plain), Some(KEY)),
            gone_with(Some(KEY)),
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::KeepIfBlank, Overlay::Held, true),
                held_overlay: HeldOverlay::Pass,
                hold_mount_ns: true,
            },
        ),
        (
            "restart with the overlay kept, its mount namespace still torn down",
            unit(Some(&plain), Some(KEY)),
            PreviousRun {
                teardown_pending: true,
                ..gone_with(Some(KEY))
            },
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::KeepIfBlank, Overlay::Held, true),
                held_overlay: HeldOverlay::Pass,
                hold_mount_ns: true,
            },
        ),
        (
            "restart after the unit file changed its layers",
            unit(Some(&plain), Some(other)),
            gone_with(Some(KEY)),
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, true),
                held_overlay: HeldOverlay::Release,
                hold_mount_ns: true,
            },
        ),
        (
            "restart while a process of the previous run may be left (a kill timed out)",
            unit(Some(&plain), Some(KEY)),
            PreviousRun {
                processes_gone: false,
                ..gone_with(Some(KEY))
            },
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, true),
                held_overlay: HeldOverlay::Release,
                hold_mount_ns: true,
            },
        ),
        (
            "restart on plain directory layers: no overlay kept, the writable layer may be",
            unit(Some(&plain), None),
            gone_with(None),
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::KeepIfBlank, Overlay::New, false),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "restart on plain directories while the last mount namespace is torn down",
            unit(Some(&plain), None),
            PreviousRun {
                teardown_pending: true,
                ..gone_with(None)
            },
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, false),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "persist: the writable layer carries over, no overlay offered",
            unit(Some(&persist), Some(KEY)),
            gone_with(None),
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::Persist, Overlay::New, false),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "read_only, restarted with its overlay",
            unit(Some(&read_only), Some(KEY)),
            gone_with(Some(KEY)),
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::None, Overlay::Held, true),
                held_overlay: HeldOverlay::Pass,
                hold_mount_ns: true,
            },
        ),
        (
            "user namespace: the helper makes the namespaces, the init forks the service late",
            unit(Some(&user), Some(KEY)),
            gone_with(None),
            V2,
            StartPlan {
                launch: vec![
                    zygote(true, false, false),
                    Launch::CloneIntoCgroup,
                    zygote(false, false, false),
                    Launch::Exec,
                ],
                v1: V1Join::None,
                container: ctr(
                    Pid1::Init {
                        service_early: false,
                    },
                    Writable::KeepIfBlank,
                    Overlay::New,
                    false,
                ),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "init = false: the service is PID 1",
            unit(Some(&no_init), None),
            FIRST,
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: ctr(Pid1::Service, Writable::New, Overlay::New, false),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "no pid namespace",
            unit(Some(&no_pid), None),
            FIRST,
            V2,
            StartPlan {
                launch: vec![
                    zygote(true, false, true),
                    Launch::CloneIntoCgroup,
                    zygote(false, false, true),
                    Launch::Exec,
                ],
                v1: V1Join::None,
                container: ctr(Pid1::NoPidNamespace, Writable::New, Overlay::New, false),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "network = host: no spare network namespace",
            unit(Some(&host_net), None),
            FIRST,
            V2,
            StartPlan {
                launch: vec![
                    zygote(true, true, false),
                    Launch::CloneIntoCgroup,
                    zygote(false, true, false),
                    Launch::Exec,
                ],
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, false),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "hybrid host: the v1 hierarchies are joined after the unshare (pipelined)",
            unit(Some(&plain), Some(KEY)),
            FIRST,
            host(CgroupLayout::Hybrid),
            StartPlan {
                launch: container_launch(),
                v1: V1Join::AfterUnshare,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, true),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "v1 host without a unified tree: nothing to be born into",
            unit(Some(&plain), Some(KEY)),
            FIRST,
            host(CgroupLayout::V1),
            StartPlan {
                launch: vec![zygote(false, true, true), Launch::Exec],
                v1: V1Join::AfterUnshare,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, true),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "no cgroups: no run is ever known gone, so no layer is kept",
            unit(Some(&plain), Some(KEY)),
            FIRST,
            host(CgroupLayout::None),
            StartPlan {
                launch: vec![zygote(false, true, true), Launch::Exec],
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, true),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "no clone3 (zygote retired, clone refused): exec",
            unit(Some(&plain), Some(KEY)),
            FIRST,
            Host {
                zygote: false,
                clone_into_cgroup: false,
                ..V2
            },
            StartPlan {
                launch: vec![Launch::Exec],
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, true),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "no zygote, clone3 into the cgroup still works",
            unit(Some(&plain), Some(KEY)),
            FIRST,
            Host {
                zygote: false,
                ..V2
            },
            StartPlan {
                launch: vec![Launch::CloneIntoCgroup, Launch::Exec],
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, true),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "frozen (not idle) cgroup: never started inside it",
            Start::Unit {
                container: Some(&plain),
                overlay_key: Some(KEY),
                cgroup_idle: false,
            },
            FIRST,
            V2,
            StartPlan {
                launch: vec![zygote(false, true, true), Launch::Exec],
                v1: V1Join::None,
                container: ctr(INIT_EARLY, Writable::New, Overlay::New, true),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
    ];
    for (what, start, previous, host, want) in rows {
        assert_eq!(plan(start, previous, host), want, "{what}");
    }
}

/// `cgroup = "delegate"`: the container's subtree is mounted as the host has it; the rest
/// of the plan is a container's like any other.
#[test]
fn delegated_cgroup_subtree() {
    let delegate = Container {
        cgroup: CgroupAccess::Delegate,
        ..web()
    };
    let with = |cgroup_fs| {
        ctr(INIT_EARLY, Writable::New, Overlay::New, true).map(|c| ContainerPlan { cgroup_fs, ..c })
    };
    type Row<'a> = (&'a str, Host, StartPlan);
    let rows: Vec<Row> = vec![
        (
            "v2: cgroup2 at /sys/fs/cgroup",
            V2,
            StartPlan {
                launch: container_launch(),
                v1: V1Join::None,
                container: with(CgroupFs::Unified),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "hybrid: each hierarchy (and the unified tree) under a tmpfs",
            host(CgroupLayout::Hybrid),
            StartPlan {
                launch: container_launch(),
                v1: V1Join::AfterUnshare,
                container: with(CgroupFs::Hierarchies),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "v1 only: each hierarchy under a tmpfs",
            host(CgroupLayout::V1),
            StartPlan {
                launch: vec![zygote(false, true, true), Launch::Exec],
                v1: V1Join::AfterUnshare,
                container: with(CgroupFs::Hierarchies),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
        (
            "no cgroups: nothing to delegate",
            host(CgroupLayout::None),
            StartPlan {
                launch: vec![zygote(false, true, true), Launch::Exec],
                v1: V1Join::None,
                container: with(CgroupFs::None),
                held_overlay: HeldOverlay::None,
                hold_mount_ns: true,
            },
        ),
    ];
    for (what, host, want) in rows {
        let start = unit(Some(&delegate), Some(KEY));
        assert_eq!(plan(start, FIRST, host), want, "{what}");
    }
}

#[test]
fn plain_services_exec_and_probes() {
    type Row<'a> = (&'a str, Start<'a>, PreviousRun<'a>, Host, StartPlan);
    let rows: Vec<Row> = vec![
        (
            "a plain service on v2",
            unit(None, None),
            FIRST,
            V2,
            StartPlan {
                launch: vec![
                    zygote(true, false, false),
                    Launch::CloneIntoCgroup,
                    zygote(false, false, false),
                    Launch::Exec,
                ],
                v1: V1Join::None,
                container: None,
                held_overlay: HeldOverlay::None,
                hold_mount_ns: false,
            },
        ),
        (
            "a plain service on hybrid: v1 first, nothing to pipeline",
            unit(None, None),
            FIRST,
            host(CgroupLayout::Hybrid),
            StartPlan {
                launch: vec![
                    zygote(true, false, false),
                    Launch::CloneIntoCgroup,
                    zygote(false, false, false),
                    Launch::Exec,
                ],
                v1: V1Join::First,
                container: None,
                held_overlay: HeldOverlay::None,
                hold_mount_ns: false,
            },
        ),
        (
            "a unit that was a container: its held overlay is let go",
            unit(None, None),
            gone_with(Some(KEY)),
            V2,
            StartPlan {
                launch: vec![
                    zygote(true, false, false),
                    Launch::CloneIntoCgroup,
                    zygote(false, false, false),
                    Launch::Exec,
                ],
                v1: V1Join::None,
                container: None,
                held_overlay: HeldOverlay::Release,
                hold_mount_ns: false,
            },
        ),
        (
            "exec: forked into the unit's cgroup by the zygote, never cloned by the daemon",
            Start::Exec,
            FIRST,
            host(CgroupLayout::Hybrid),
            StartPlan {
                launch: vec![
                    zygote(true, false, false),
                    zygote(false, false, false),
                    Launch::Exec,
                ],
                v1: V1Join::First,
                container: None,
                held_overlay: HeldOverlay::None,
                hold_mount_ns: false,
            },
        ),
        (
            "exec without a zygote: exec'd, joins from outside (the unit may be frozen)",
            Start::Exec,
            FIRST,
            Host {
                zygote: false,
                ..V2
            },
            StartPlan {
                launch: vec![Launch::Exec],
                v1: V1Join::None,
                container: None,
                held_overlay: HeldOverlay::None,
                hold_mount_ns: false,
            },
        ),
        (
            "probe: joins the cgroup itself",
            Start::Probe,
            FIRST,
            V2,
            StartPlan {
                launch: vec![zygote(false, false, false), Launch::Exec],
                v1: V1Join::None,
                container: None,
                held_overlay: HeldOverlay::None,
                hold_mount_ns: false,
            },
        ),
    ];
    for (what, start, previous, host, want) in rows {
        assert_eq!(plan(start, previous, host), want, "{what}");
    }
}

#[test]
fn launch_says_what_the_helper_was_given() {
    assert!(zygote(true, false, false).born_in_cgroup());
    assert!(Launch::CloneIntoCgroup.born_in_cgroup());
    assert!(!zygote(false, true, true).born_in_cgroup());
    assert!(!Launch::Exec.born_in_cgroup());
    assert!(zygote(false, true, false).pid_ns());
    assert!(!Launch::Exec.pid_ns());
    assert!(zygote(false, false, true).spare_net());
    assert!(!Launch::CloneIntoCgroup.spare_net());
}
