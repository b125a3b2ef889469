//! Without usable cgroups (mounted read-only, as Docker, podman and Kubernetes give them to
//! a container by default): units run without a cgroup of their own after one warning,
//! `[resources]` units fail saying what to give the container, and the end of a run still
//! kills what it left behind (its session, its group, what kennel adopted from it).

use crate::harness::Sandbox;

#[test]
fn read_only_cgroups_warn_once_run_units_and_refuse_resources_with_the_remedy() {
    let s = Sandbox::new();
    s.read_only_cgroups();
    s.unit("web", "[service]\ncommand = [\"/bin/sleep\", \"1000\"]\n");
    s.unit("db", "[service]\ncommand = [\"/bin/sleep\", \"1001\"]\n");
    s.unit(
        "limited",
        "[service]\ncommand = [\"/bin/sleep\", \"1002\"]\n[restart]\npolicy = \"no\"\n\
         [resources]\nmemory_max = \"64M\"\n",
    );
    s.up();
    s.wait_state("web", "up");
    s.wait_state("db", "up");
    s.wait_state("limited", "failed");
    let detail = s.status("limited")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        detail.contains("[resources] needs cgroups")
            && detail.contains("is mounted read-only")
            && detail.contains("--privileged"),
        "{detail}"
    );
    let out = s.daemon_output();
    let warnings = out
        .lines()
        .filter(|l| l.contains("cgroups unavailable"))
        .count();
    assert_eq!(warnings, 1, "{out}");
    assert!(!out.contains("read-only file system"), "{out}");
}

#[test]
fn without_cgroups_the_end_of_a_run_kills_what_it_left_behind() {
    let s = Sandbox::new();
    s.read_only_cgroups();
    // A daemon that left the unit's session and process group (setsid) and so is adopted by
    // kennel when its parent ends, and a child that stayed in the group.
    s.script_unit(
        "forker",
        "setsid /bin/sleep 100031 &\n/bin/sleep 100032 &\nexec /bin/sleep 1000",
        "",
    );
    s.up();
    s.wait_state("forker", "up");
    let ours = |arg: &'static str| {
        move |p: &i32| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c == format!("/bin/sleep\0{arg}\0").as_bytes())
        }
    };
    s.wait_for("both children to run", || {
        let pids = s.namespace_pids();
        pids.iter().any(ours("100031")) && pids.iter().any(ours("100032"))
    });
    s.ok(&["stop", "forker"]);
    s.wait_for(
        "the setsid'd child and the group's child to be gone",
        || {
            let pids = s.namespace_pids();
            !pids.iter().any(ours("100031")) && !pids.iter().any(ours("100032"))
        },
    );
    let out = s.daemon_output();
    assert!(
        out.contains("process(es) its run left behind (no cgroup)"),
        "{out}"
    );
}
